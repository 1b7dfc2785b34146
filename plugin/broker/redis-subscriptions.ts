/**
 * What the subscriber connection listens to: the node-wide channels, and one Redis channel per
 * app channel while this node has a local subscriber of it. The node's own record is the truth:
 * after a reconnect (ioredis' autoResubscribe is off) it subscribes everything again, channels
 * first joined while Redis was unreachable included. On a cluster, ioredis' sharded
 * subscribers may resubscribe some channels themselves after a failover; subscribing a channel
 * twice is harmless (Redis keeps one subscription per connection and channel).
 */
import type { Link } from './redis-link.js'
import type { RedisKeys } from './redis-keys.js'
import type { PubSubMode } from './redis-pubsub.js'

/** Channels per SUBSCRIBE when resubscribing after a reconnect. */
const chunkSize = 1000

export class Subscriptions {
  /** the app channels this node has local subscribers of, whatever Redis knows */
  readonly local = new Set<string>()
  /** every node: broadcasts to all sockets */
  readonly allChannel: string
  /** this node only: direct sends to a session it holds */
  readonly nodeChannel: string

  constructor (
    private readonly sub: Link,
    private readonly keys: RedisKeys,
    private readonly pubsub: PubSubMode,
    nodeId: string
  ) {
    this.allChannel = keys.all
    this.nodeChannel = keys.direct(nodeId)
  }

  redisChannel (channel: string): string {
    return this.keys.channel(channel)
  }

  async add (channel: string): Promise<void> {
    this.local.add(channel)
    await this.sub.run((redis) => this.pubsub.subscribe(redis, [this.redisChannel(channel)]))
  }

  async remove (channel: string): Promise<void> {
    this.local.delete(channel)
    await this.sub.run((redis) => this.pubsub.unsubscribe(redis, [this.redisChannel(channel)]))
  }

  /**
   * Subscribes everything the node needs: at start (node-wide channels only) and after a
   * reconnect. On a cluster one SSUBSCRIBE per slot (a call must stay in one), all at once.
   */
  async subscribeAll (): Promise<void> {
    const names = [this.allChannel, this.nodeChannel, ...[...this.local].map((channel) => this.redisChannel(channel))]
    const calls: Array<Promise<unknown>> = []
    for (const group of this.pubsub.bySlot(names, (name) => name)) {
      for (let i = 0; i < group.length; i += chunkSize) {
        const chunk = group.slice(i, i + chunkSize)
        calls.push(this.sub.run((redis) => this.pubsub.subscribe(redis, chunk)))
      }
    }
    await Promise.all(calls)
  }

  /** Whether the subscriber connection still answers (a PING is allowed in subscriber mode). */
  async ping (): Promise<void> {
    await this.sub.run((redis) => redis.ping())
  }
}
