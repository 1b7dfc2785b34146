/**
 * The plugin's options: named defaults, normalised once into one frozen object. A wrong
 * option fails registration with FST_CHANNELS_INVALID_OPTION.
 */
import type { Broker, HistoryLimits } from './broker/types.js'
import { InvalidOptionError } from './errors.js'
import { allowedOrigins, type AllowedOrigins } from './http/origins.js'
import { channelMatches } from './handlers/registry.js'
import type { ChannelFilter, UserLookup } from './types.js'
import type { MetricsRegistry } from './observability/metrics.js'
import { resolveAdmin, type AdminOptions, type ResolvedAdmin } from './admin/options.js'

export const defaultPath = '/ws'
export const defaultClientPrefix = '/channels/'
export const defaultMaxPayload = 65536
export const defaultMaxChannels = 100
export const defaultHeartbeat = 30000
export const defaultMaxBufferedBytes = 1048576
export const defaultRateLimit = Object.freeze({ max: 100, interval: 1000 })
/** presence is off unless asked for */
export const defaultPresence = false
/** no cap: `maxConnections` is off unless set (docs/origins-and-limits.md recommends a value) */
export const defaultMaxConnections = Infinity
export const defaultAsyncApi = false
/** on `fastify.close()`, the sockets are closed over 1 s, not all at once */
export const defaultDrainMs = 1000

export interface RateLimitOptions {
  /** inbound frames allowed per socket per interval */
  max: number
  /** the window's length in ms */
  interval: number
}

export interface ChannelsOptions {
  /**
   * The user id of a connection, read from its upgrade request after the app's hooks ran
   * (e.g. `(req) => req.user?.id`); may be async. `undefined`: an anonymous connection. See
   * docs/users-and-requests.md.
   */
  user?: UserLookup
  /** the route upgraded to WebSocket ['/ws'] */
  path?: string
  /** prefix of the bundled browser client ['/channels/'], `false` to serve nothing */
  client?: string | false
  /** where channel traffic is published [an in-process memory broker] */
  broker?: Broker
  /** largest inbound frame in bytes [65536]; larger closes with 1009 */
  maxPayload?: number
  /** subscriptions one socket may hold [100] */
  maxChannels?: number
  /** ms between pings [30000], `false` for none */
  heartbeat?: number | false
  /** outbound bytes a slow consumer may have queued before it is closed with 1013 [1048576] */
  maxBufferedBytes?: number
  /** inbound frames per socket per interval [{ max: 100, interval: 1000 }], `false` for none */
  rateLimit?: Partial<RateLimitOptions> | false
  /** log every inbound and outbound message through the Fastify logger [false] */
  messageLog?: boolean
  /**
   * Which web pages may open a socket [same origin only]. An upgrade whose `Origin` header
   * names another origin than the request's own (scheme, host and port, as Fastify's
   * `request.protocol` and `request.host` give them, so behind `trustProxy` from
   * `X-Forwarded-Proto`/`X-Forwarded-Host`) and is not listed here is answered HTTP 403
   * before any socket is created. List exact origins (`'https://app.example.com'`: scheme,
   * host, optional port, no path) and RegExps, which must match the whole origin (they are
   * anchored for you). `'*'` allows any page: only for sockets that carry no ambient
   * credentials (cookies, client certificates, HTTP auth). An upgrade without `Origin` (not
   * a browser) is not affected.
   */
  origins?: ReadonlyArray<string | RegExp> | '*'
  /**
   * WebSocket connections this node holds at most [unlimited]; an upgrade past it is answered
   * HTTP 503 before any socket is created, and HTTP routes stay served. Set it below the
   * process's file-descriptor limit (`ulimit -n`) less what HTTP and the broker need.
   */
  maxConnections?: number
  /** channels that keep their last publications for recovery and backlog [false] */
  history?: boolean | HistoryOptions
  /** a route path that serves the AsyncAPI document, e.g. '/asyncapi.json' [false: none] */
  asyncapi?: string | false
  /** channels whose members are tracked across nodes [false]: `true` for every channel, or a filter */
  presence?: boolean | string | RegExp
  /**
   * permessage-deflate for clients that offer it [false]: `true` or `{ threshold? }`. A
   * broadcast is compressed once and the same frame goes to every socket that negotiated it;
   * payloads under `threshold` bytes [1024] go uncompressed (docs/wire-efficiency.md).
   */
  compression?: boolean | CompressionOptions
  /** gather a socket's outbound frames for up to this many ms and write them at once [0: none] */
  writeDelayMs?: number
  /**
   * On `fastify.close()`, ms over which the sockets are closed with 1001, in batches spread
   * evenly, so that their clients do not all come back at once [1000]; `0` closes them all at
   * once. The node stops accepting connections before the first batch.
   */
  drainMs?: number
  /**
   * Prometheus metrics (needs the optional peer `prom-client`) [false]: `true` serves them at
   * `/metrics`; `{ path?, registry? }` serves them at `path` (`false`: the app serves
   * `registry.metrics()` itself) and registers the series in `registry`, a prom-client
   * Registry to join (the app's own, so one scrape gets everything) [a new one].
   */
  metrics?: boolean | MetricsOptions
  /**
   * A live admin page [false]: `{ path? = '/channels/admin', authorize }`. `authorize(request)`
   * runs on every request of the page and its live feed; only `true` lets one through, else 401
   * (docs/admin.md).
   */
  admin?: false | AdminOptions
}

/** `metrics: { path, registry }` */
export interface MetricsOptions {
  path?: string | false
  registry?: MetricsRegistry
}

export const defaultMetricsPath = '/metrics'

/** `compression: { threshold }`: payloads of fewer bytes go uncompressed. */
export interface CompressionOptions {
  threshold?: number
}

/** Which channels are presence channels: a filter like a handler's (`undefined` = every channel). */
export interface PresenceOptions {
  channel: string | RegExp | undefined
}

export interface ResolvedOptions {
  /** undefined when connections have no user */
  user: UserLookup | undefined
  path: string
  client: string | false
  broker: Broker | undefined
  maxPayload: number
  maxChannels: number
  heartbeat: number | false
  maxBufferedBytes: number
  rateLimit: RateLimitOptions | false
  messageLog: boolean
  /** undefined when no channel has history */
  history: HistoryPolicy | undefined
  origins: AllowedOrigins
  /** `Infinity` when unlimited */
  maxConnections: number
  asyncapi: string | false
  presence: PresenceOptions | false
  /** false when off */
  compression: { threshold: number } | false
  /** 0 when frames are not gathered */
  writeDelayMs: number
  drainMs: number
  /** false when off */
  metrics: { path: string | false, registry: MetricsRegistry | undefined } | false
  admin: ResolvedAdmin | false
}

const known = new Set(['user', 'path', 'client', 'broker', 'maxPayload', 'maxChannels', 'heartbeat',
  'maxBufferedBytes', 'rateLimit', 'messageLog', 'origins', 'maxConnections', 'history',
  'asyncapi', 'presence', 'compression', 'writeDelayMs', 'drainMs', 'metrics', 'admin'])

function prefix (value: unknown): string | false {
  if (value === undefined) return defaultClientPrefix
  if (value === false) return false
  if (typeof value !== 'string' || !value.startsWith('/')) {
    throw new InvalidOptionError(`client: expected false or a path prefix starting with "/", got ${String(value)}`)
  }
  return value.endsWith('/') ? value : value + '/'
}

function asyncapiPath (value: unknown): string | false {
  if (value === undefined) return defaultAsyncApi
  if (value === false) return false
  if (typeof value !== 'string' || !value.startsWith('/')) {
    throw new InvalidOptionError(`asyncapi: expected false or a route path starting with "/", got ${String(value)}`)
  }
  return value
}

function rateLimit (value: unknown): RateLimitOptions | false {
  if (value === undefined) return { ...defaultRateLimit }
  if (value === false) return false
  if (value === null || typeof value !== 'object') {
    throw new InvalidOptionError('rateLimit: expected false or { max, interval }')
  }
  const { max, interval } = value as Partial<RateLimitOptions>
  return {
    max: positiveInteger('rateLimit.max', max, defaultRateLimit.max),
    interval: positiveInteger('rateLimit.interval', interval, defaultRateLimit.interval)
  }
}

function presence (value: unknown): PresenceOptions | false {
  if (value === undefined || value === false) return defaultPresence
  if (value === true) return { channel: undefined }
  if (typeof value === 'string' && value !== '') return { channel: value }
  if (value instanceof RegExp) {
    // A `g` or `y` RegExp remembers lastIndex between tests: matching would depend on history.
    return { channel: value.global || value.sticky ? new RegExp(value.source, value.flags.replace(/[gy]/g, '')) : value }
  }
  throw new InvalidOptionError('presence: expected a boolean, a channel name or a RegExp')
}

export const defaultCompressionThreshold = 1024
/** the longest `writeDelayMs` accepted: gathering is for milliseconds, not for seconds */
export const maxWriteDelayMs = 1000

function compression (value: unknown): { threshold: number } | false {
  if (value === undefined || value === false) return false
  if (value === true) return { threshold: defaultCompressionThreshold }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError('compression: expected a boolean or { threshold? }')
  }
  for (const key of Object.keys(value)) {
    if (key !== 'threshold') throw new InvalidOptionError(`compression.${key}: unknown option`)
  }
  const { threshold } = value as CompressionOptions
  if (threshold !== undefined && (typeof threshold !== 'number' || !Number.isSafeInteger(threshold) || threshold < 0)) {
    throw new InvalidOptionError(`compression.threshold: expected a non-negative integer, got ${String(threshold)}`)
  }
  return { threshold: threshold ?? defaultCompressionThreshold }
}

function writeDelayMs (value: unknown): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > maxWriteDelayMs) {
    throw new InvalidOptionError(`writeDelayMs: expected an integer from 0 to ${maxWriteDelayMs}, got ${String(value)}`)
  }
  return value
}

function metrics (value: unknown): ResolvedOptions['metrics'] {
  if (value === undefined || value === false) return false
  if (value === true) return { path: defaultMetricsPath, registry: undefined }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError('metrics: expected a boolean or { path?, registry? }')
  }
  for (const key of Object.keys(value)) {
    if (key !== 'path' && key !== 'registry') throw new InvalidOptionError(`metrics.${key}: unknown option`)
  }
  const { path = defaultMetricsPath, registry } = value as MetricsOptions
  if (path !== false && (typeof path !== 'string' || !path.startsWith('/'))) {
    throw new InvalidOptionError(`metrics.path: expected false or a route path starting with "/", got ${String(path)}`)
  }
  const candidate = registry as Partial<MetricsRegistry> | null | undefined
  if (candidate !== undefined && (candidate === null || typeof candidate !== 'object' || typeof candidate.metrics !== 'function' ||
    typeof candidate.getSingleMetric !== 'function')) {
    throw new InvalidOptionError('metrics.registry: expected a prom-client Registry')
  }
  return { path, registry }
}

function broker (value: unknown): Broker | undefined {
  if (value === undefined) return undefined
  const candidate = value as Partial<Broker> | null
  if (candidate === null || typeof candidate !== 'object' || typeof candidate.connect !== 'function') {
    throw new InvalidOptionError('broker: expected a Broker (an object with a connect(node) method)')
  }
  return candidate as Broker
}

export function resolveOptions (options: ChannelsOptions = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options: expected an object')
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new InvalidOptionError(`${key}: unknown option`)
  }
  const path = options.path ?? defaultPath
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new InvalidOptionError(`path: expected a string starting with "/", got ${String(path)}`)
  }
  const heartbeat = options.heartbeat === false ? false : positiveInteger('heartbeat', options.heartbeat, defaultHeartbeat)
  if (options.messageLog !== undefined && typeof options.messageLog !== 'boolean') {
    throw new InvalidOptionError('messageLog: expected a boolean')
  }
  if (options.user !== undefined && typeof options.user !== 'function') {
    throw new InvalidOptionError('user: expected a function (request) => user id | undefined')
  }
  return Object.freeze({
    user: options.user,
    path,
    client: prefix(options.client),
    broker: broker(options.broker),
    maxPayload: positiveInteger('maxPayload', options.maxPayload, defaultMaxPayload),
    maxChannels: positiveInteger('maxChannels', options.maxChannels, defaultMaxChannels),
    heartbeat,
    maxBufferedBytes: positiveInteger('maxBufferedBytes', options.maxBufferedBytes, defaultMaxBufferedBytes),
    rateLimit: rateLimit(options.rateLimit),
    messageLog: options.messageLog ?? false,
    origins: allowedOrigins(options.origins),
    maxConnections: positiveInteger('maxConnections', options.maxConnections, defaultMaxConnections),
    history: resolveHistory(options.history),
    asyncapi: asyncapiPath(options.asyncapi),
    presence: presence(options.presence),
    compression: compression(options.compression),
    writeDelayMs: writeDelayMs(options.writeDelayMs),
    drainMs: nonNegativeInteger('drainMs', options.drainMs, defaultDrainMs),
    metrics: metrics(options.metrics),
    admin: resolveAdmin(options.admin)
  })
}

/**
 * The one positive-integer option check, shared by the plugin's options, the history option
 * and the Redis broker's options: `value` when it is a positive safe integer, `fallback` when undefined; else FST_CHANNELS_INVALID_OPTION. */
export function positiveInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidOptionError(`${name}: expected a positive integer, got ${String(value)}`)
  }
  return value
}

/** Like `positiveInteger`, with 0 allowed. */
export function nonNegativeInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidOptionError(`${name}: expected a non-negative integer, got ${String(value)}`)
  }
  return value
}

// ---- history: which channels keep their last publications (history channels), how many and
// for how long; resolved once at registration into a `HistoryPolicy` -------------------------

export const defaultHistorySize = 100
export const defaultHistoryTtl = 300_000

export interface HistoryOptions {
  /** the history channels: a name or a pattern [every channel] */
  channel?: ChannelFilter
  /** publications kept per channel [100] */
  size?: number
  /** ms a publication is kept [300000] */
  ttl?: number
  /** clients may subscribe with `{ delta: true }` and get deltas against their previous message [false] */
  delta?: boolean
}

export interface HistoryPolicy extends HistoryLimits {
  /** whether `channel` is a history channel */
  covers (channel: string): boolean
  /** whether a subscriber may ask for deltas */
  delta: boolean
}

const knownHistoryOptions = new Set(['channel', 'size', 'ttl', 'delta'])

/** `undefined` when history is off (`false` or absent). */
export function resolveHistory (value: unknown): HistoryPolicy | undefined {
  if (value === undefined || value === false) return undefined
  const options: HistoryOptions = value === true ? {} : value as HistoryOptions
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidOptionError('history: expected true, false or { channel?, size?, ttl?, delta? }')
  }
  for (const key of Object.keys(options)) {
    if (!knownHistoryOptions.has(key)) throw new InvalidOptionError(`history.${key}: unknown option`)
  }
  let { channel } = options
  if (channel instanceof RegExp) {
    // A `g` or `y` RegExp remembers lastIndex between tests: matching would depend on history.
    if (channel.global || channel.sticky) channel = new RegExp(channel.source, channel.flags.replace(/[gy]/g, ''))
  } else if (channel !== undefined && typeof channel !== 'string') {
    throw new InvalidOptionError('history.channel: expected a string or a RegExp')
  }
  if (options.delta !== undefined && typeof options.delta !== 'boolean') {
    throw new InvalidOptionError('history.delta: expected a boolean')
  }
  const filter = channel
  return Object.freeze({
    delta: options.delta ?? false,
    size: positiveInteger('history.size', options.size, defaultHistorySize),
    ttl: positiveInteger('history.ttl', options.ttl, defaultHistoryTtl),
    covers: (name: string) => channelMatches(filter, name)
  })
}
