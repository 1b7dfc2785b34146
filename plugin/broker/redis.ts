/**
 * The Redis broker: every Fastify node that registers the plugin with `redisBroker()` on one
 * Redis (and one prefix) acts as one server. `ioredis` is an optional peer dependency, loaded
 * only when a node connects, so apps that never use Redis need not install it.
 */
import type { Redis } from 'ioredis'
import { InvalidOptionError } from '../errors.js'
import { positiveInteger } from '../options.js'
import { clientOptions, loadIoredis } from './redis-client.js'
import { RedisConnection } from './redis-connection.js'
import type { Broker, BrokerConnection, BrokerNode } from './types.js'

export const defaultRedisUrl = 'redis://127.0.0.1:6379'
export const defaultRedisPrefix = 'fastify-channels'
export const defaultNodeTtl = 10000
/** below this, a busy event loop could miss a refresh and a live node would look dead */
const minNodeTtl = 1000
export const defaultCommandTimeout = 2000

/** What `redisBroker` needs of a client passed in: an ioredis `Redis` fits. */
export interface DuplicableRedis {
  duplicate (override?: Record<string, unknown>): unknown
}

export interface RedisBrokerOptions {
  /** where Redis listens ['redis://127.0.0.1:6379']; ignored when `redis` is given */
  url?: string
  /** an ioredis client to `duplicate()` (its own options apply); it stays yours: never closed here */
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

  // Named, so `CLIENT LIST` shows whose connections these are.
  async function open (nodeId: string): Promise<[Redis, Redis]> {
    const pubOptions = { ...connectionOptions, connectionName: `${prefix}:${nodeId}:pub` }
    const subOptions = { ...connectionOptions, connectionName: `${prefix}:${nodeId}:sub` }
    if (redis !== undefined) return [redis.duplicate(pubOptions) as Redis, redis.duplicate(subOptions) as Redis]
    const Redis = await loadIoredis()
    return [new Redis(url, pubOptions), new Redis(url, subOptions)]
  }

  return {
    async connect (node: BrokerNode): Promise<BrokerConnection> {
      const [pub, sub] = await open(node.nodeId)
      return await RedisConnection.open(node, pub, sub, settings)
    }
  }
}
