/**
 * The Redis engine's transport: topics as Redis pub/sub channels (names from RedisKeys, classic
 * or sharded pub/sub from PubSubMode), publications in deadline-checked batches (Publisher) on
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
import { Publisher } from './publisher.js'
import type { PubSubMode } from './pubsub.js'
import type { Topic, Transport } from '../parts.js'

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
