/**
 * What the subscriber connection listens to: the node-wide channels, and one Redis channel per
 * app channel while this node has a local subscriber of it. The node's own record is the truth:
 * after a reconnect (ioredis' autoResubscribe is off) it subscribes everything again, channels
 * first joined while Redis was unreachable included.
 */
import type { Link } from './redis-link.js'

/** Channels per SUBSCRIBE when resubscribing after a reconnect. */
const chunkSize = 1000

export class Subscriptions {
  /** the app channels this node has local subscribers of, whatever Redis knows */
  readonly local = new Set<string>()
  /** every node: broadcasts to all sockets */
  readonly allChannel: string
  /** this node only: direct sends to a session it holds */
  readonly nodeChannel: string

  constructor (private readonly sub: Link, private readonly prefix: string, nodeId: string) {
    this.allChannel = `${prefix}:all`
    this.nodeChannel = `${prefix}:node:${nodeId}`
  }

  redisChannel (channel: string): string {
    return `${this.prefix}:ch:${channel}`
  }

  async add (channel: string): Promise<void> {
    this.local.add(channel)
    await this.sub.run((redis) => redis.subscribe(this.redisChannel(channel)))
  }

  async remove (channel: string): Promise<void> {
    this.local.delete(channel)
    await this.sub.run((redis) => redis.unsubscribe(this.redisChannel(channel)))
  }

  /** Subscribes everything the node needs: at start (node-wide channels only) and after a reconnect. */
  async subscribeAll (): Promise<void> {
    const names = [this.allChannel, this.nodeChannel, ...[...this.local].map((channel) => this.redisChannel(channel))]
    for (let i = 0; i < names.length; i += chunkSize) {
      const chunk = names.slice(i, i + chunkSize)
      await this.sub.run((redis) => redis.subscribe(...chunk))
    }
  }

  /** Whether the subscriber connection still answers (a PING is allowed in subscriber mode). */
  async ping (): Promise<void> {
    await this.sub.run((redis) => redis.ping())
  }
}
