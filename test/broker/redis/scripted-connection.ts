/**
 * A connection of a test's own to a target (test/redis/targets.ts) with the broker's scripts
 * defined on it, as the Redis stores get it from the engine: what the tests that drive a store
 * directly (history, presence, registry) start from.
 */
import type { Cluster } from 'ioredis'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { RedisClock } from '../../../plugin/broker/redis/clock.js'
import { classicPubSub, shardedPubSub, type PubSubMode } from '../../../plugin/broker/redis/pubsub.js'
import { defineScripts } from '../../../plugin/broker/redis/scripts.js'
import { redisUrl } from '../../redis/helpers.js'
import type { Target } from '../../redis/targets.js'

/** A connected client (a duplicate of the cluster's admin client on the cluster), closed at teardown. */
export async function scriptedConnection (t: Test, target: Target): Promise<Redis> {
  const client: Redis | Cluster = target.name === 'cluster' ? (target.admin as Cluster).duplicate() : new Redis(redisUrl, { lazyConnect: true })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  await client.connect()
  const redis = client as Redis // the engine types a cluster client as Redis: the commands it uses are the same
  defineScripts(redis)
  return redis
}

/** The pub/sub mode the engine picks for `target`. */
export function pubSubOf (target: Target): PubSubMode {
  return target.name === 'cluster' ? shardedPubSub : classicPubSub
}

/** A clock that has read `redis`' time once (as after the engine's first registration). */
export async function measuredClock (redis: Redis): Promise<RedisClock> {
  const clock = new RedisClock()
  const [seconds, micros] = await redis.time()
  clock.observe([String(seconds), String(micros)])
  return clock
}
