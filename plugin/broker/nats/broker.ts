/**
 * The NATS broker: every Fastify node that registers the plugin with `natsBroker()` on one
 * NATS server or cluster with JetStream (and one prefix) acts as one server. The NATS engine's
 * parts (engine.ts), composed by the core like any other engine's. The `@nats-io/*` packages
 * are optional peer dependencies, loaded only when a node connects.
 */
import type { NatsConnection } from '@nats-io/transport-node'
import { InvalidOptionError } from '../../errors.js'
import { positiveInteger } from '../../options.js'
import { composeBroker } from '../compose.js'
import type { BrokerEngine, EngineParts } from '../parts.js'
import type { Broker } from '../types.js'
import { loadNats } from './client.js'
import { NatsEngine } from './engine.js'

export const defaultNatsServers = 'nats://127.0.0.1:4222'
export const defaultNatsPrefix = 'fastify-channels'
export const defaultNatsNodeTtl = 10000
/** below this, a busy event loop could miss a refresh and a live node would look dead */
const minNodeTtl = 1000
export const defaultNatsCommandTimeout = 2000

/**
 * What `natsBroker` needs of a connection passed in: a `NatsConnection` of
 * `@nats-io/transport-node` fits (typed here without the package, which is an optional peer).
 */
export interface NatsConnectionLike {
  publish (...args: never[]): unknown
  subscribe (...args: never[]): unknown
  request (...args: never[]): Promise<unknown>
  flush (): Promise<void>
  status (): AsyncIterable<unknown>
  isClosed (): boolean
}

export interface NatsBrokerOptions {
  /** where NATS listens ['nats://127.0.0.1:4222']: one URL or several (a cluster); ignored when `connection` is given */
  servers?: string | string[]
  /**
   * a connection of `@nats-io/transport-node` to use instead of opening one per node; it stays
   * yours: never closed here (and never made to reconnect)
   */
  connection?: NatsConnectionLike
  /** keeps apps that share one NATS apart ['fastify-channels']; any 1-100 characters */
  prefix?: string
  /** ms a node that died without closing keeps its sessions' presence [10000], at least 1000 */
  nodeTtl?: number
  /**
   * ms before a call to NATS that got no answer rejects [2000]; a publication or send is
   * dropped by its receivers when it arrives later than three quarters of this after it was made
   */
  commandTimeout?: number
}

const known = new Set(['servers', 'connection', 'prefix', 'nodeTtl', 'commandTimeout'])

export function natsBroker (options: NatsBrokerOptions = {}): Broker {
  return composeBroker(natsEngine(options))
}

function isConnection (value: unknown): value is NatsConnectionLike {
  const connection = value as Partial<NatsConnectionLike> | null
  return typeof connection?.publish === 'function' && typeof connection.subscribe === 'function' &&
    typeof connection.request === 'function' && typeof connection.flush === 'function' &&
    typeof connection.status === 'function' && typeof connection.isClosed === 'function'
}

/** The NATS engine: the nodes that connect to it (one NATS, one prefix) act as one server. */
export function natsEngine (options: NatsBrokerOptions = {}): BrokerEngine {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('natsBroker: expected an options object')
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new InvalidOptionError(`natsBroker ${key}: unknown option`)
  }
  const { servers = defaultNatsServers, connection, prefix = defaultNatsPrefix } = options
  const list = Array.isArray(servers) ? servers : [servers]
  if (list.length === 0 || !list.every((server) => typeof server === 'string' && server !== '')) {
    throw new InvalidOptionError('natsBroker servers: expected a nats:// URL or a list of them')
  }
  if (connection !== undefined && !isConnection(connection)) {
    throw new InvalidOptionError('natsBroker connection: expected a connection of @nats-io/transport-node')
  }
  if (typeof prefix !== 'string' || prefix.length < 1 || prefix.length > 100) {
    throw new InvalidOptionError('natsBroker prefix: expected 1-100 characters')
  }
  const settings = {
    servers,
    prefix,
    nodeTtl: positiveInteger('natsBroker nodeTtl', options.nodeTtl, defaultNatsNodeTtl),
    commandTimeout: positiveInteger('natsBroker commandTimeout', options.commandTimeout, defaultNatsCommandTimeout)
  }
  if (settings.nodeTtl < minNodeTtl) throw new InvalidOptionError(`natsBroker nodeTtl: at least ${minNodeTtl} ms, got ${settings.nodeTtl}`)

  return {
    name: 'nats',
    async connect (node): Promise<EngineParts> {
      const lib = await loadNats()
      return await NatsEngine.open(node, lib, settings, connection as NatsConnection | undefined)
    }
  }
}
