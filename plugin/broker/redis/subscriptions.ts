/**
 * What the subscriber connection listens to: the node-wide channels, and one Redis channel per
 * app channel while this node has a local subscriber of it. The node's own record is the truth:
 * after a reconnect (ioredis' autoResubscribe is off) it subscribes everything again, channels
 * first joined while Redis was unreachable included. On a cluster, ioredis' sharded
 * subscribers may resubscribe some channels themselves after a failover; subscribing a channel
 * twice is harmless (Redis keeps one subscription per connection and channel).
 */
import { asCluster } from './client.js'
import type { Link } from './link.js'
import type { RedisKeys } from './keys.js'
import type { PubSubMode } from './pubsub.js'

/** Channels per SUBSCRIBE when resubscribing after a reconnect. */
const chunkSize = 1000

export class Subscriptions {
  /** the app channels this node has local subscribers of, whatever Redis knows */
  readonly local = new Set<string>()
  /** every node: broadcasts to all sockets */
  readonly allChannel: string
  /** this node only: direct sends to a session it holds */
  readonly nodeChannel: string

  /**
   * @param onFailed told when a subscription failed: it begins an outage, whose recovery
   *   subscribes everything again (on a cluster a SSUBSCRIBE may fail while ioredis replaces a
   *   shard's subscriber, with every connection up)
   */
  constructor (
    private readonly sub: Link,
    private readonly keys: RedisKeys,
    private readonly pubsub: PubSubMode,
    nodeId: string,
    private readonly onFailed: (err: unknown) => void
  ) {
    this.allChannel = keys.all
    this.nodeChannel = keys.direct(nodeId)
  }

  redisChannel (channel: string): string {
    return this.keys.channel(channel)
  }

  async add (channel: string): Promise<void> {
    this.local.add(channel)
    try {
      await this.sub.run((redis) => this.pubsub.subscribe(redis, [this.redisChannel(channel)]))
    } catch (err) {
      this.onFailed(err)
      throw err
    }
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

  /**
   * The first subscribeAll, at start. A cluster client is ready before its sharded subscribers
   * are all in place (ioredis 5 sets them up as the slot map comes in), so on a cluster a
   * failure is retried until `ms` have passed; on one Redis it fails at once.
   */
  async subscribeAllAtStart (ms: number): Promise<void> {
    const deadline = Date.now() + ms
    for (;;) {
      try {
        await this.subscribeAll()
        return
      } catch (err) {
        if (!this.pubsub.sharded || Date.now() >= deadline) throw err
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }

  /**
   * Whether Redis still answers (a PING is allowed in subscriber mode). On a cluster every
   * master is asked: a hung shard would otherwise go unnoticed while its channels are quiet.
   */
  async ping (): Promise<void> {
    await this.sub.run(async (redis) => {
      const cluster = asCluster(redis)
      if (cluster === undefined) await redis.ping()
      else await Promise.all(cluster.nodes('master').map(async (master) => await master.ping()))
    })
  }
}
