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
import type { Redis } from 'ioredis'
import { BrokerUnreachableError } from '../../errors.js'
import type { EngineNode, EngineParts } from '../parts.js'
import { connectMasters, onLostClusterNode, quit, ready } from './client.js'
import { RedisClock } from './clock.js'
import { Health } from './health.js'
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

  /** Whatever the cause; silent once `close()` began (closing the connections is no outage). */
  private readonly lost = (err: unknown): void => {
    if (!this.closed) this.health.lost(err)
  }

  private constructor (private readonly node: EngineNode, pub: Redis, sub: Redis, private readonly settings: EngineSettings) {
    this.health = new Health(node.log, node.nodeId)
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
      history: new RedisHistoryStore(this.pub, keys, pubsub),
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
      pub.disconnect()
      sub.disconnect()
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
      onLostClusterNode(link.client, (key) => this.lost(new Error(`redis connection ${link.name} lost cluster node ${key}`)))
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
    if (!this.health.up) {
      this.recover()
      return
    }
    this.health.reportDrops()
    this.transport.ping().catch(this.lost)
  }

  /**
   * Has the core subscribe and register everything again, then ends the outage. Runs when a
   * connection is (re)established and on every tick of an outage, whatever caused it.
   */
  private recover (): void {
    if (this.recovering || this.closed || !this.pub.ready || !this.sub.ready) return
    this.recovering = true
    const readies = this.readies
    connectMasters(this.pub.client, this.settings.commandTimeout).then(async () => await this.node.restore()).then((restored) => {
      if (readies === this.readies && this.pub.ready && this.sub.ready) this.health.back(restored)
    }, this.lost).finally(() => {
      this.recovering = false
      if (readies !== this.readies) this.recover()
    })
  }

  private async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    await Promise.all([quit(this.pub.client), quit(this.sub.client)])
  }
}
