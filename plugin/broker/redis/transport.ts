/**
 * The Redis engine's transport: topics as Redis pub/sub channels (names from RedisKeys, classic
 * or sharded pub/sub from PubSubMode), publications in deadline-checked batches (`Publisher`, below) on
 * the publisher connection, subscriptions on the subscriber connection.
 *
 *   {<prefix>}:all              every node: broadcasts to all sockets
 *   {<prefix>}:node:<nodeId>    one node: sends to a session it holds
 *   <prefix>:ch:{<channel>}     nodes with a local subscriber of <channel>, and only while they have one
 *
 * ioredis' autoResubscribe is off: after a reconnect the core subscribes everything again from
 * the node's own record (EngineNode.restore). On a cluster, ioredis' sharded subscribers may
 * resubscribe some channels themselves after a failover; subscribing a channel twice is
 * harmless (Redis keeps one subscription per connection and channel).
 */
import { asCluster } from './client.js'
import type { RedisClock } from './clock.js'
import type { RedisKeys } from './keys.js'
import type { Link } from './link.js'
import type { PubSubMode } from './pubsub.js'
import type { Topic, Transport } from '../parts.js'
import { runScript } from './scripts.js'

/** Channels per SUBSCRIBE when subscribing many at once (after a reconnect). */
const chunkSize = 1000

export interface RedisTransportSettings {
  keys: RedisKeys
  pubsub: PubSubMode
  clock: RedisClock
  /** ms after a publication was made until which Redis may still publish it */
  budget: number
  /** ms the first subscription may take on a cluster (see subscribe) */
  startMs: number
  /** told once per publication that did not reach Redis */
  onDropped: () => void
  /**
   * told when a subscription failed: it begins an outage, whose recovery subscribes everything
   * again (on a cluster a SSUBSCRIBE may fail while ioredis replaces a shard's subscriber, with
   * every connection up)
   */
  onFailed: (err: unknown) => void
}

export class RedisTransport implements Transport {
  private readonly publisher: Publisher
  /** false until the first subscription went through */
  private started = false

  constructor (pub: Link, private readonly sub: Link, private readonly settings: RedisTransportSettings) {
    this.publisher = new Publisher(pub, settings.clock, settings.budget, settings.onDropped, settings.pubsub)
  }

  /** The pub/sub channel of a topic. */
  name (topic: Topic): string {
    const { keys } = this.settings
    switch (topic.kind) {
      case 'all': return keys.all
      case 'node': return keys.direct(topic.nodeId)
      case 'channel': return keys.channel(topic.channel)
    }
  }

  /** Not an async function: on the hot path, the publisher's promise is handed back as it is. */
  publish (topics: readonly Topic[], envelope: string): Promise<void> {
    // One copy per channel, so only nodes with subscribers get it; in one script call so the
    // copies reach each node back to back (the core keeps one per node).
    return this.publisher.publish(topics.map((topic) => this.name(topic)), envelope)
  }

  /** Sends the waiting batch now (a session route must not overtake it). */
  flush (): void {
    this.publisher.flush()
  }

  /**
   * One SUBSCRIBE per slot on a cluster (a call must stay in one), in chunks, all at once. A
   * cluster client is ready before its sharded subscribers are all in place (ioredis 5 sets them
   * up as the slot map comes in), so on a cluster the first subscription is retried until
   * `startMs` have passed; later ones, and every one on one Redis, fail at once.
   */
  async subscribe (topics: readonly Topic[]): Promise<void> {
    const names = topics.map((topic) => this.name(topic))
    const deadline = Date.now() + this.settings.startMs
    for (;;) {
      try {
        await this.subscribeNames(names)
        this.started = true
        return
      } catch (err) {
        if (this.started || !this.settings.pubsub.sharded || Date.now() >= deadline) {
          this.settings.onFailed(err)
          throw err
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }

  private async subscribeNames (names: string[]): Promise<void> {
    const { pubsub } = this.settings
    const calls: Array<Promise<unknown>> = []
    for (const group of pubsub.bySlot(names, (name) => name)) {
      for (let i = 0; i < group.length; i += chunkSize) {
        const chunk = group.slice(i, i + chunkSize)
        calls.push(this.sub.run((redis) => pubsub.subscribe(redis, chunk)))
      }
    }
    await Promise.all(calls)
  }

  async unsubscribe (topics: readonly Topic[]): Promise<void> {
    const { pubsub } = this.settings
    const groups = pubsub.bySlot(topics.map((topic) => this.name(topic)), (name) => name)
    await Promise.all(groups.map(async (names) => await this.sub.run((redis) => pubsub.unsubscribe(redis, names))))
  }

  /**
   * Whether Redis still answers on the subscriber connection (a PING is allowed in subscriber
   * mode). On a cluster every master is asked: a hung shard would otherwise go unnoticed while
   * its channels are quiet.
   */
  async ping (): Promise<void> {
    await this.sub.run(async (redis) => {
      const cluster = asCluster(redis)
      if (cluster === undefined) await redis.ping()
      else await Promise.all(cluster.nodes('master').map(async (master) => await master.ping()))
    })
  }
}

// ---- publications on their way to Redis ----------------------------------------------------
//
// Publications on their way to Redis, in batches: everything published in one turn of the
// event loop (a burst of broadcasts, say) goes out as one script call (lua/publish-batch.lua)
// that checks the deadline once and publishes each envelope in order. The deadline check needs a script (see
// RedisClock), and a script call costs Redis far more than a PUBLISH; batching pays that once
// per turn instead of once per message, and saves a command per message on this side too.
//
// Order is kept: batches leave in the order they were filled, on one connection, and `flush()`
// sends what is waiting before any other command of the node (a `send`) overtakes it. On a
// cluster a script call must stay in one slot, so a batch is split into one call per slot (a
// publication to channels in several slots goes out in several calls); each slot's calls leave
// in order on its shard's connection, so the order per channel holds.

/** A batch is cut at this many publications or this many payload bytes, whichever comes first. */
const maxBatchCount = 500
const maxBatchBytes = 1024 * 1024

interface Waiting {
  channels: string[]
  payload: string
  /** calls carrying a part of it that have not answered yet (one per slot on a cluster) */
  parts: number
  failed: boolean
  resolve: () => void
  reject: (err: unknown) => void
}

/** The channels of one publication that go in one call. */
interface Part {
  publication: Waiting
  channels: string[]
}

export class LateError extends Error {
  constructor () {
    super('redis got the publication after its deadline: not delivered')
  }
}

export class Publisher {
  private waiting: Waiting[] = []
  private scheduled = false

  /**
   * @param link a connection where the scripts are defined (`defineScripts`)
   * @param budget ms after a publication was made until which Redis may still publish it
   * @param onFailed told once per publication that did not reach Redis
   */
  constructor (
    private readonly link: Link,
    private readonly clock: RedisClock,
    private readonly budget: number,
    private readonly onFailed: () => void,
    private readonly pubsub: PubSubMode
  ) {}

  /** Publishes `payload` to each of `channels` (Redis channel names); settles when Redis answered. */
  publish (channels: string[], payload: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ channels, payload, parts: 0, failed: false, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        process.nextTick(() => this.flush())
      }
    })
  }

  /** Sends everything waiting, in order, in batches. */
  flush (): void {
    this.scheduled = false
    const waiting = this.waiting
    this.waiting = []
    let start = 0
    let bytes = 0
    for (let i = 0; i < waiting.length; i++) {
      bytes += waiting[i].payload.length
      if (i + 1 === waiting.length || i + 1 - start >= maxBatchCount || bytes + waiting[i + 1].payload.length > maxBatchBytes) {
        this.send(waiting.slice(start, i + 1))
        start = i + 1
        bytes = 0
      }
    }
  }

  private send (batch: Waiting[]): void {
    const parts: Part[] = []
    for (const publication of batch) {
      for (const channels of this.pubsub.bySlot(publication.channels, (channel) => channel)) {
        parts.push({ publication, channels })
        publication.parts++
      }
      if (publication.parts === 0) publication.resolve() // no channel: nothing to publish
    }
    for (const group of this.pubsub.bySlot(parts, (part) => part.channels[0])) this.call(group)
  }

  /** One script call: parts whose channels are all in one slot. */
  private call (group: Part[]): void {
    let bytes = 0
    const args: Array<string | number> = [this.clock.deadline(this.budget), this.pubsub.publishCommand]
    for (const { publication, channels } of group) {
      args.push(channels.length, publication.payload, ...channels)
      bytes += publication.payload.length
    }
    this.link.run((redis) => runScript(redis, 'publishBatch', [group[0].channels[0]], args), bytes).then((result) => {
      if (result === 'late') this.fail(group, new LateError())
      else for (const { publication } of group) this.settle(publication)
    }, (err: unknown) => this.fail(group, err))
  }

  private settle (publication: Waiting): void {
    if (--publication.parts === 0 && !publication.failed) publication.resolve()
  }

  /** A publication fails (and counts as dropped) once, however many of its parts failed. */
  private fail (group: Part[], err: unknown): void {
    for (const { publication } of group) {
      publication.parts--
      if (publication.failed) continue
      publication.failed = true
      this.onFailed()
      publication.reject(err)
    }
  }
}
