/**
 * One node's link to Redis, and the parts the core composes from it: a publisher connection
 * (commands, scripts, the registry, history, presence) and a subscriber connection (pub/sub
 * only); on a Redis Cluster each is an ioredis `Cluster` (the subscriber one with sharded
 * subscribers: one connection per master). The parts: RedisTransport, RedisRegistry,
 * RedisHistoryStore, RedisPresenceStore.
 *
 * Nothing waits for Redis: calls reject at once while it is unreachable, give up after
 * `commandTimeout` while it hangs (the connection is then reset: Link), and are refused past a
 * bounded backlog; the plugin logs the rejection and goes on delivering locally. Publications
 * and sends carry a deadline that Redis enforces (RedisClock), so what was reported failed is
 * not delivered when Redis wakes up. When a connection is back, the node subscribes and
 * registers everything again from its own records (EngineNode.restore) before the outage ends.
 *
 * A tick (a third of `nodeTtl`) checks that both connections answer, and while an outage lasts,
 * retries the recovery; the core refreshes the registration on the same beat. On a cluster a
 * shard that fails over (a replica promoted) is such an outage: the lost connection to its
 * master begins it, and it ends once the node has subscribed and registered everything again.
 */
import { performance } from 'node:perf_hooks'
import type { Redis } from 'ioredis'
import { BrokerUnreachableError } from '../../errors.js'
import type { EngineNode, EngineParts } from '../parts.js'
import { ShardProbe, addressOf, asCluster, connectMasters, disconnect, onLostClusterNode, quit, ready, servedAgain } from './client.js'
import { RedisClock } from './clock.js'
import { Health, type Shard } from './health.js'
import { RedisHistoryStore } from './history-store.js'
import { RedisKeys } from './keys.js'
import { Link } from './link.js'
import { RedisPresenceStore } from './presence-store.js'
import type { PubSubMode } from './pubsub.js'
import { RedisRegistry } from './registry-store.js'
import { defineScripts } from './scripts.js'
import { RedisTransport } from './transport.js'

export interface EngineSettings {
  prefix: string
  nodeTtl: number
  commandTimeout: number
  /** classic pub/sub on one Redis, sharded on a cluster */
  pubsub: PubSubMode
}

/** A master a search found silent (see `locate`). */
interface Suspect {
  /** when its `commandTimeout` had passed: a search begun since confirms or clears it */
  ripeAt: number | undefined
  timer: NodeJS.Timeout
}

export class RedisEngine {
  private readonly health: Health
  private readonly pub: Link
  private readonly sub: Link
  private readonly transport: RedisTransport
  private readonly parts: EngineParts
  private timer: NodeJS.Timeout | undefined
  private recovering = false
  /** counts connections (re)established: a recovery that saw one more during its run starts over */
  private readies = 0
  private started = false
  private closed = false
  /** on a cluster: asks the masters which answer */
  private readonly probe: ShardProbe | undefined
  /** on a cluster: a search for the shards down is running, and whether another is wanted after it */
  private locating: { again: boolean, err: unknown, addresses: Set<string> } | undefined
  /**
   * on a cluster: masters a search found silent. Each ripens `commandTimeout` later (its timer
   * then starts a search); a search begun after that which finds it silent too begins its outage.
   */
  private readonly suspects = new Map<string, Suspect>()
  /** on a cluster: every master a search saw, by address, with the slots it served then */
  private readonly mastersSeen = new Map<string, Shard>()

  /**
   * Whatever the cause; silent once `close()` began (closing the connections is no outage).
   * On one Redis the outage is Redis'; on a cluster the masters are asked which one is down
   * (`address`: a cluster node whose connection was lost), and each gets its own outage.
   */
  private readonly lost = (err: unknown, address?: string): void => {
    if (this.closed) return
    if (this.probe === undefined) {
      this.health.lost({ address: addressOf(this.pub.client), ranges: [] }, err)
      return
    }
    this.health.shaken(err)
    this.locate(err, address)
  }

  private constructor (private readonly node: EngineNode, pub: Redis, sub: Redis, private readonly settings: EngineSettings) {
    this.health = new Health(node.log, node.nodeId)
    const cluster = asCluster(pub)
    this.probe = cluster === undefined ? undefined : new ShardProbe(cluster, settings.commandTimeout)
    this.pub = new Link(pub, settings.commandTimeout, this.lost)
    this.sub = new Link(sub, settings.commandTimeout, this.lost)
    defineScripts(pub)
    // how long after a call Redis may still act on it: half the timeout, the other half is for the answer
    const budget = Math.max(Math.floor(settings.commandTimeout / 2), 1)
    const keys = new RedisKeys(settings.prefix)
    const clock = new RedisClock()
    const { pubsub } = settings
    const dropped = (): void => this.health.drop()
    this.transport = new RedisTransport(this.pub, this.sub, {
      keys,
      pubsub,
      clock,
      budget,
      startMs: settings.commandTimeout,
      onDropped: dropped,
      // a subscription that fails at startup fails the start instead
      onFailed: (err) => { if (this.started) this.lost(err) }
    })
    this.parts = {
      transport: this.transport,
      registry: new RedisRegistry(this.pub, { keys, pubsub, clock, nodeId: node.nodeId, ttl: settings.nodeTtl, budget, onLost: this.lost, onDropped: dropped }),
      history: new RedisHistoryStore(this.pub, keys, pubsub, clock, budget),
      presence: new RedisPresenceStore(this.pub, node.nodeId, keys, pubsub),
      start: () => this.start(),
      close: async () => await this.close()
    }
  }

  /** Waits for both connections (on a cluster, for every master) and hands out the node's parts. */
  static async open (node: EngineNode, pub: Redis, sub: Redis, settings: EngineSettings): Promise<EngineParts> {
    try {
      await Promise.all([ready(pub, settings.commandTimeout), ready(sub, settings.commandTimeout)])
      await connectMasters(pub, settings.commandTimeout)
    } catch (err) {
      disconnect(pub)
      disconnect(sub)
      throw new BrokerUnreachableError('redis', (err as Error).message, { cause: err })
    }
    return new RedisEngine(node, pub, sub, settings).parts
  }

  /** The node is set up: watch the connections. */
  private start (): void {
    this.started = true
    for (const link of [this.pub, this.sub]) {
      link.client.on('error', this.lost)
      // a Redis that went away closes the connection without an error; the retries error later
      link.client.on('close', () => this.lost(new Error(`redis connection ${link.name} closed`)))
      link.client.on('end', () => {
        if (!this.closed) this.node.log.error('channels: a redis connection ended for good; cross-node delivery is off until restart')
      })
      link.client.on('ready', () => {
        this.readies++
        this.recover()
      })
      // a cluster client lost its connection to a shard (a master failing over, say): its
      // channels are deaf until the node has subscribed again; the tick recovers
      onLostClusterNode(link.client, (key) => this.lost(new Error(`redis connection ${link.name} lost cluster node ${key}`), key))
    }
    this.sub.client.on(this.settings.pubsub.messageEvent, (_channel: string, text: string) => this.node.receive(text))
    this.timer = setInterval(() => this.tick(), Math.max(Math.floor(this.settings.nodeTtl / 3), 50))
    this.timer.unref()
  }

  /** Every third of the TTL: recover while down, else check both connections answer. */
  private tick (): void {
    if (this.closed) return
    this.pub.checkHandshake()
    this.sub.checkHandshake()
    if (this.health.needsRestore) {
      this.recover()
      return
    }
    this.health.reportDrops()
    this.transport.ping().catch(this.lost)
  }

  /**
   * On a cluster: which masters do not answer; each begins an outage of its shard (once) when a
   * second search, begun `commandTimeout` or more after the first found it silent, finds it
   * silent too (while ioredis swaps its connections in a failover, a healthy master may miss
   * one PING, and so may any master while this process is starved of CPU). The searches that
   * other failures start in between, often many a second in an outage, confirm nothing: they
   * would find the first PING still waiting. The node `address` names begins one at once when
   * it is or was a master: its connection was lost, and what the node had on it is gone. A node
   * that never served a slot (a replica a client used for a moment while the slot map changed)
   * is no shard: the restore that follows any trouble is enough.
   * One search at a time; the causes that come meanwhile are looked at after it.
   */
  private locate (err: unknown, address: string | undefined): void {
    const probe = this.probe
    if (probe === undefined) return
    if (this.locating !== undefined) {
      this.locating.again = true
      this.locating.err = err
      if (address !== undefined) this.locating.addresses.add(address)
      return
    }
    const locating = { again: false, err, addresses: new Set(address === undefined ? [] : [address]) }
    this.locating = locating
    const began = performance.now()
    probe.run().then(({ shards, answering }) => {
      if (this.closed) return
      for (const shard of shards) this.mastersSeen.set(shard.address, shard)
      // a suspect that left the slot map (a dead master its replica replaced) is forgotten:
      // were it to come back one day, an old suspicion must not count
      for (const address of this.suspects.keys()) {
        if (!shards.some((shard) => shard.address === address)) this.clearSuspect(address)
      }
      for (const shard of shards) {
        const suspect = this.suspects.get(shard.address)
        if (answering.has(shard.address)) {
          this.clearSuspect(shard.address)
        } else if (this.health.down.some((outage) => outage.shard.address === shard.address)) {
          this.health.lost(shard, locating.err)
        } else if (suspect === undefined) {
          this.suspect(shard.address, locating.err)
        } else if (suspect.ripeAt !== undefined && began >= suspect.ripeAt) {
          // confirmed: the outage carries it from here
          this.clearSuspect(shard.address)
          this.health.lost(shard, locating.err)
        }
      }
      // a lost connection to a node that never served a slot (a replica a client briefly used
      // while the slot map changed) loses nothing of a shard: the restore after `shaken` is enough.
      // (The search's slot map is taken when the loss is told, before ioredis drops the node from
      // it: a master lost is among `shards`, or was in an earlier search's.)
      for (const address of locating.addresses) {
        const shard = this.mastersSeen.get(address)
        if (shard !== undefined) this.health.lost(shard, locating.err)
      }
    }, () => {}).finally(() => {
      this.locating = undefined
      if (locating.again && !this.closed) this.locate(locating.err, undefined)
    })
  }

  /** A master found silent: in `commandTimeout` it ripens, and a search asks it again. */
  private suspect (address: string, err: unknown): void {
    const suspect: Suspect = {
      ripeAt: undefined,
      timer: setTimeout(() => {
        suspect.ripeAt = performance.now()
        if (!this.closed) this.locate(err, undefined)
      }, this.settings.commandTimeout)
    }
    suspect.timer.unref()
    this.suspects.set(address, suspect)
  }

  private clearSuspect (address: string): void {
    clearTimeout(this.suspects.get(address)?.timer)
    this.suspects.delete(address)
  }

  /**
   * On a cluster: the outages whose shards answer again (every slot they had is served by a
   * master that answers); on one Redis, all of them (both connections are ready).
   */
  private async answering (): Promise<string[] | 'all'> {
    if (this.probe === undefined) return 'all'
    const { shards, answering } = await this.probe.run()
    return this.health.down.filter((outage) => servedAgain(outage.shard, shards, answering)).map((outage) => outage.shard.address)
  }

  /**
   * Has the core subscribe and register everything again, then ends the outages of the shards
   * that answered before it began. Runs when a connection is (re)established and on every tick
   * while an outage lasts (or a connection was shaken), whatever caused it.
   */
  private recover (): void {
    if (this.recovering || this.closed || !this.pub.ready || !this.sub.ready) return
    this.recovering = true
    const readies = this.readies
    connectMasters(this.pub.client, this.settings.commandTimeout).then(async () => {
      const answering = await this.answering()
      const restored = await this.node.restore()
      if (readies === this.readies && this.pub.ready && this.sub.ready) this.health.back(answering, restored)
    }).catch((err: unknown) => { this.lost(err) }).finally(() => {
      this.recovering = false
      if (readies !== this.readies) this.recover()
    })
  }

  private async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    for (const address of [...this.suspects.keys()]) this.clearSuspect(address)
    await Promise.all([quit(this.pub.client), quit(this.sub.client)])
  }
}
