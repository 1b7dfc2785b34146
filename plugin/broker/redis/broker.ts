/**
 * The Redis broker: every Fastify node that registers the plugin with `redisBroker()` on one
 * Redis (and one prefix) acts as one server. The Redis engine's parts (engine.ts), composed by
 * the core like any other engine's. `ioredis` is an optional peer dependency, loaded only when a
 * node connects, so apps that never use Redis need not install it.
 */
import type { Cluster, Redis } from 'ioredis'
import { InvalidOptionError } from '../../errors.js'
import { positiveInteger } from '../../options.js'
import { composeBroker } from '../compose.js'
import type { BrokerEngine, EngineParts } from '../parts.js'
import { asCluster, clientOptions, loadIoredis } from './client.js'
import { RedisEngine } from './engine.js'
import { classicPubSub, shardedPubSub } from './pubsub.js'
import type { Broker } from '../types.js'

export const defaultRedisUrl = 'redis://127.0.0.1:6379'
export const defaultRedisPrefix = 'fastify-channels'
export const defaultNodeTtl = 10000
/** below this, a busy event loop could miss a refresh and a live node would look dead */
const minNodeTtl = 1000
export const defaultCommandTimeout = 2000

/** What `redisBroker` needs of a client passed in: an ioredis `Redis` or `Cluster` fits. */
export interface DuplicableRedis {
  duplicate (...args: never[]): unknown
}

export interface RedisBrokerOptions {
  /** where Redis listens ['redis://127.0.0.1:6379']; ignored when `redis` is given */
  url?: string | undefined
  /**
   * an ioredis client to `duplicate()` (its own options apply); it stays yours: never closed
   * here. An ioredis `Cluster` makes the broker use sharded pub/sub (Redis ≥ 7).
   */
  redis?: DuplicableRedis
  /** keeps apps that share one Redis apart ['fastify-channels'] */
  prefix?: string
  /** ms a node that died without closing keeps its sessions findable [10000], at least 1000 */
  nodeTtl?: number
  /**
   * ms before a Redis command that got no answer rejects [2000]; the connection is then reset,
   * and Redis refuses a publication or send that reaches it later than half this after it was made
   */
  commandTimeout?: number
}

const known = new Set(['url', 'redis', 'prefix', 'nodeTtl', 'commandTimeout'])

export function redisBroker (options: RedisBrokerOptions = {}): Broker {
  return composeBroker(redisEngine(options))
}

/** The Redis engine: the nodes that connect to it (one Redis or one cluster, one prefix) act as one server. */
export function redisEngine (options: RedisBrokerOptions = {}): BrokerEngine {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('redisBroker: expected an options object')
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new InvalidOptionError(`redisBroker ${key}: unknown option`)
  }
  const { url = defaultRedisUrl, redis, prefix = defaultRedisPrefix } = options
  if (typeof url !== 'string' || url === '') throw new InvalidOptionError('redisBroker url: expected a redis:// URL')
  if (redis !== undefined && typeof redis?.duplicate !== 'function') {
    throw new InvalidOptionError('redisBroker redis: expected an ioredis client (with duplicate())')
  }
  if (typeof prefix !== 'string' || !/^[^\s]{1,100}$/.test(prefix)) {
    throw new InvalidOptionError('redisBroker prefix: expected 1-100 characters without white space')
  }
  const settings = {
    prefix,
    nodeTtl: positiveInteger('redisBroker nodeTtl', options.nodeTtl, defaultNodeTtl),
    commandTimeout: positiveInteger('redisBroker commandTimeout', options.commandTimeout, defaultCommandTimeout)
  }
  if (settings.nodeTtl < minNodeTtl) throw new InvalidOptionError(`redisBroker nodeTtl: at least ${minNodeTtl} ms, got ${settings.nodeTtl}`)
  const connectionOptions = clientOptions()
  const cluster = asCluster(redis)

  // Named, so `CLIENT LIST` shows whose connections these are.
  async function open (nodeId: string): Promise<[Redis, Redis]> {
    const pubOptions = { ...connectionOptions, connectionName: `${prefix}:${nodeId}:pub` }
    const subOptions = { ...connectionOptions, connectionName: `${prefix}:${nodeId}:sub` }
    if (cluster !== undefined) return [duplicateCluster(cluster, pubOptions, false), duplicateCluster(cluster, subOptions, true)]
    if (redis !== undefined) {
      const duplicate = redis.duplicate as (override: Record<string, unknown>) => Redis
      return [duplicate.call(redis, pubOptions), duplicate.call(redis, subOptions)]
    }
    const Redis = await loadIoredis()
    return [new Redis(url, pubOptions), new Redis(url, subOptions)]
  }

  return {
    name: 'redis',
    async connect (node): Promise<EngineParts> {
      const [pub, sub] = await open(node.nodeId)
      return await RedisEngine.open(node, pub, sub, { ...settings, pubsub: cluster === undefined ? classicPubSub : shardedPubSub })
    }
  }
}

/**
 * A copy of the app's cluster client for the broker: the same nodes and options, with ours for
 * every node connection (`redisOptions`), no offline queue, and for the subscriber, one sharded
 * subscriber connection per master. Typed as `Redis`: the broker uses the commands both share.
 */
function duplicateCluster (cluster: Cluster, redisOptions: Record<string, unknown>, subscriber: boolean): Redis {
  return cluster.duplicate([], {
    // lazyConnect: ioredis then starts a shard's subscriber when a channel of it is subscribed,
    // not eagerly as well; the eager start raced the slot map under load and left a slot with
    // "No sharded subscriber" for good (ioredis 5.11). Node connections are lazy regardless.
    redisOptions: { ...cluster.options.redisOptions, ...redisOptions, lazyConnect: true },
    enableOfflineQueue: false,
    lazyConnect: false,
    keyPrefix: '',
    shardedSubscribers: subscriber
  }) as unknown as Redis
}
