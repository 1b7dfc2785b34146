/**
 * The one place where one Redis and a Redis Cluster differ in pub/sub. On one Redis the broker
 * uses classic PUBLISH/SUBSCRIBE (Redis 6 has nothing else); on a cluster, sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE, Redis ≥ 7): a message then travels only inside the shard that owns its
 * channel's slot, instead of over the cluster bus to every node, so channels spread over the
 * shards by their names (see RedisKeys).
 *
 * Scripts take the publish command as an argument (`redis.call(ARGV[n], …)`), so one script
 * serves both; on a cluster every name a call touches must be in one slot (`bySlot`).
 */
import type { Redis } from 'ioredis'
import { keySlot } from './slot.js'

export interface PubSubMode {
  /** true on a cluster: sharded pub/sub, and calls grouped by slot */
  readonly sharded: boolean
  /** the command a script publishes with */
  readonly publishCommand: 'PUBLISH' | 'SPUBLISH'
  /** the event the subscriber connection emits a message with: (channel, text) */
  readonly messageEvent: 'message' | 'smessage'
  subscribe: (client: Redis, names: string[]) => Promise<unknown>
  unsubscribe: (client: Redis, names: string[]) => Promise<unknown>
  /** `items` in groups that one call may carry: one group on one Redis, one per slot on a cluster */
  bySlot: <T>(items: T[], name: (item: T) => string) => T[][]
}

export const classicPubSub: PubSubMode = {
  sharded: false,
  publishCommand: 'PUBLISH',
  messageEvent: 'message',
  subscribe: async (client, names) => await client.subscribe(...names),
  unsubscribe: async (client, names) => await client.unsubscribe(...names),
  bySlot: (items) => items.length === 0 ? [] : [items]
}

export const shardedPubSub: PubSubMode = {
  sharded: true,
  publishCommand: 'SPUBLISH',
  messageEvent: 'smessage',
  subscribe: async (client, names) => await client.ssubscribe(...names),
  unsubscribe: async (client, names) => await client.sunsubscribe(...names),
  bySlot (items, name) {
    const groups = new Map<number, typeof items>()
    for (const item of items) {
      const slot = keySlot(name(item))
      const group = groups.get(slot)
      if (group === undefined) groups.set(slot, [item])
      else group.push(item)
    }
    return [...groups.values()]
  }
}
