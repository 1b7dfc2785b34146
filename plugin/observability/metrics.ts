/**
 * The `metrics` option: Prometheus series (prom-client, an optional peer loaded on first use)
 * fed by the plugin's events (events.ts) and, for the two gauges of what the node holds now,
 * read from the node when scraped. A channel name is never a label value (there may be any
 * number of them); an event name is one only when a handler is registered for it.
 */
import { InvalidOptionError, MissingPromClientError } from '../errors.js'
import { events, type ChannelsEvents } from './events.js'

/** What the series need of a prom-client `Registry` (the app's own, to join, or one of ours). */
export interface MetricsRegistry {
  readonly contentType: string
  metrics (): Promise<string>
  getSingleMetric (name: string): unknown
  registerMetric (metric: object): void
}

/** What the gauges read from the node when scraped. */
export interface MetricsSource {
  readonly nodeId: string
  /** open WebSocket connections */
  connections (): number
  /** subscriptions all sockets hold, summed */
  subscriptions (): number
  /** whether the session is this node's (events without a node id) */
  holds (sessionId: string): boolean
}

/** The label of a message whose event no handler is registered for: one fixed value, never the client's text. */
export const unhandledEventLabel = '(unhandled)'

/**
 * A close code as a label: the protocol's own (1000-2999) as they are; the application ranges,
 * which a client may pick freely (3000-4999), as `3xxx`/`4xxx`, so a peer cannot mint series.
 */
export function closeCodeLabel (code: number): string {
  return code >= 3000 && code <= 4999 ? `${Math.floor(code / 1000)}xxx` : String(code)
}

/** Handler and broker round trips: from 0.5 ms to 5 s. */
const durationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

interface CounterChild { inc (value?: number): void }
interface CounterLike extends CounterChild { labels (...values: string[]): CounterChild }

interface PromClient {
  Registry: new () => MetricsRegistry
  Counter: new (config: {
    name: string, help: string, labelNames?: string[], registers: MetricsRegistry[], collect?: (this: CounterLike) => void
  }) => CounterLike
  Gauge: new (config: { name: string, help: string, registers: MetricsRegistry[], collect?: (this: { set (value: number): void }) => void }) => {
    set (value: number): void
  }
}

/** Loads prom-client on first use (`specifier` is there for tests of the missing-peer error). */
export async function loadPromClient (specifier = 'prom-client'): Promise<PromClient> {
  try {
    const mod = await import(specifier) as Partial<PromClient> & { default?: PromClient }
    const client = typeof mod.Registry === 'function' ? mod as PromClient : mod.default
    if (client === undefined || typeof client.Registry !== 'function') throw new Error(`${specifier} has no Registry export`)
    return client
  } catch (err) {
    // Node says ERR_MODULE_NOT_FOUND; some loaders (ts-node's, tap's) throw the same message without a code.
    const { code, message } = err as { code?: string, message?: string }
    const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' ||
      (code === undefined && /cannot find/i.test(message ?? '') && (message ?? '').includes(specifier))
    if (notFound) throw new MissingPromClientError({ cause: err })
    throw err
  }
}

/** The series' names, each registered once per registry. */
export const seriesNames = [
  'channels_connections', 'channels_connections_total', 'channels_disconnects_total', 'channels_subscriptions',
  'channels_messages_received_total', 'channels_errors_sent_total', 'channels_deliveries_total', 'channels_publications_total',
  'channels_handler_duration_seconds', 'channels_broker_up', 'channels_broker_publish_duration_seconds', 'channels_recoveries_total',
  'channels_rate_limited_total', 'channels_slow_consumers_total'
] as const

type Listener = [keyof ChannelsEvents, (message: never) => void]

/** One label value's buckets (not cumulative), sum and count. */
interface HistogramCells { buckets: Float64Array, sum: number, count: number }

/**
 * A histogram kept here and read by the registry when scraped, in the shape prom-client's own
 * histograms hand it (`get()`): an observation on the hot path is a bucket search and three
 * additions, where prom-client's `observe` checks and hashes its labels every time. At most one
 * label (its values bounded: registered event names).
 */
class Histogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly cells = new Map<string, HistogramCells>()

  constructor (readonly name: string, readonly help: string, private readonly labelName: string | undefined, private readonly bounds: readonly number[]) {}

  observe (label: string, value: number): void {
    let cells = this.cells.get(label)
    if (cells === undefined) this.cells.set(label, cells = { buckets: new Float64Array(this.bounds.length), sum: 0, count: 0 })
    const { bounds } = this
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        cells.buckets[i]++
        break
      }
    }
    cells.sum += value
    cells.count++
  }

  async get (): Promise<{ name: string, help: string, type: string, aggregator: string, values: Array<{ labels: Record<string, string | number>, value: number, metricName: string }> }> {
    const values = []
    for (const [label, { buckets, sum, count }] of this.cells) {
      const labels: Record<string, string> = this.labelName === undefined ? {} : { [this.labelName]: label }
      let cumulative = 0
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += buckets[i]
        values.push({ labels: { le: this.bounds[i], ...labels }, value: cumulative, metricName: `${this.name}_bucket` })
      }
      values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: `${this.name}_bucket` })
      values.push({ labels, value: sum, metricName: `${this.name}_sum` })
      values.push({ labels, value: count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.cells.clear()
  }
}

/**
 * A counter counted here and handed to prom-client when scraped (its `collect`): an increment
 * on the hot path is one Map update, where prom-client's own `inc` checks and hashes its labels
 * every time. `label` is the value of its one label ('' for a counter without labels).
 */
function tally (prom: PromClient, name: string, help: string, labelName: string | undefined, registers: MetricsRegistry[]): (label: string, by?: number) => void {
  const pending = new Map<string, number>()
  // eslint-disable-next-line no-new
  new prom.Counter({
    name,
    help,
    labelNames: labelName === undefined ? [] : [labelName],
    registers,
    collect () {
      for (const [label, count] of pending) {
        if (labelName === undefined) this.inc(count)
        else this.labels(label).inc(count)
      }
      pending.clear()
    }
  })
  return (label, by = 1) => { pending.set(label, (pending.get(label) ?? 0) + by) }
}

/**
 * Registers the series in `registry` (a new one when undefined) and subscribes them to this
 * node's events. Returns the registry and `stop`, which unsubscribes (on `fastify.close()`).
 */
export function startMetrics (
  prom: PromClient, source: MetricsSource, given: MetricsRegistry | undefined
): { registry: MetricsRegistry, stop: () => void } {
  const registry = given ?? new prom.Registry()
  for (const name of seriesNames) {
    if (registry.getSingleMetric(name) !== undefined) {
      throw new InvalidOptionError(`metrics.registry: it already holds ${name} (is fastify-channels registered twice with one registry?)`)
    }
  }
  const registers = [registry]
  const { nodeId } = source
  // The two gauges are read from the node when scraped (collect): nothing holds them but the registry.
  // eslint-disable-next-line no-new
  new prom.Gauge({ name: 'channels_connections', help: 'open WebSocket connections', registers, collect () { this.set(source.connections()) } })
  // eslint-disable-next-line no-new
  new prom.Gauge({ name: 'channels_subscriptions', help: 'channel subscriptions held by open connections', registers, collect () { this.set(source.subscriptions()) } })
  const connectionsTotal = tally(prom, 'channels_connections_total', 'WebSocket upgrades by result', 'result', registers)
  const disconnects = tally(prom, 'channels_disconnects_total', 'closed connections by close code', 'code', registers)
  const received = tally(prom, 'channels_messages_received_total', 'message frames received by event', 'event', registers)
  const errorsSent = tally(prom, 'channels_errors_sent_total', 'error frames sent by code', 'code', registers)
  const deliveries = tally(prom, 'channels_deliveries_total', 'messages delivered to local sockets (one per socket)', undefined, registers)
  const publications = tally(prom, 'channels_publications_total', 'publications handed to the broker by kind', 'kind', registers)
  const handlerDuration = new Histogram('channels_handler_duration_seconds', 'run time of the message handlers of one message', 'event', durationBuckets)
  registry.registerMetric(handlerDuration)
  const brokerUp = new prom.Gauge({ name: 'channels_broker_up', help: '1 while the broker is reachable, 0 during an outage', registers })
  brokerUp.set(1)
  const publishDuration = new Histogram('channels_broker_publish_duration_seconds', 'time for the broker to take one publication', undefined, durationBuckets)
  registry.registerMetric(publishDuration)
  const recoveries = tally(prom, 'channels_recoveries_total', 'history recoveries (subscribe with since) by result', 'result', registers)
  const rateLimited = tally(prom, 'channels_rate_limited_total', 'frames refused by the rate limit (once per window)', undefined, registers)
  const slowConsumers = tally(prom, 'channels_slow_consumers_total', 'sockets closed as slow consumers (1013)', undefined, registers)

  const listeners: Listener[] = [
    ['connectionOpen', (m: { nodeId: string }) => { if (m.nodeId === nodeId) connectionsTotal('accepted') }],
    ['connectionRefused', (m: { nodeId: string, reason: string }) => { if (m.nodeId === nodeId) connectionsTotal(`refused_${m.reason}`) }],
    ['connectionClose', (m: { nodeId: string, code: number }) => { if (m.nodeId === nodeId) disconnects(closeCodeLabel(m.code)) }],
    ['messageReceived', (m: { nodeId: string, event: string, handled: boolean }) => {
      if (m.nodeId === nodeId) received(m.handled ? m.event : unhandledEventLabel)
    }],
    ['errorSent', (m: { nodeId: string, code: string }) => { if (m.nodeId === nodeId) errorsSent(m.code) }],
    ['delivery', (m: { nodeId: string, count: number }) => { if (m.nodeId === nodeId && m.count > 0) deliveries('', m.count) }],
    ['publicationEnd', (m: { nodeId: string, kind: string, durationMs: number, failed: boolean }) => {
      if (m.nodeId !== nodeId) return
      publications(m.kind)
      if (!m.failed) publishDuration.observe('', m.durationMs / 1000)
    }],
    ['handlerEnd', (m: { nodeId: string, event: string, durationMs: number }) => {
      if (m.nodeId === nodeId) handlerDuration.observe(m.event, m.durationMs / 1000)
    }],
    ['brokerDown', (m: { nodeId: string }) => { if (m.nodeId === nodeId) brokerUp.set(0) }],
    ['brokerUp', (m: { nodeId: string, outages: number }) => { if (m.nodeId === nodeId) brokerUp.set(m.outages === 0 ? 1 : 0) }],
    ['recovery', (m: { sessionId: string, recovered: boolean }) => {
      if (source.holds(m.sessionId)) recoveries(m.recovered ? 'recovered' : 'not_recovered')
    }],
    ['rateLimited', (m: { nodeId: string }) => { if (m.nodeId === nodeId) rateLimited('') }],
    ['slowConsumer', (m: { nodeId: string }) => { if (m.nodeId === nodeId) slowConsumers('') }]
  ]
  for (const [name, listener] of listeners) events[name].subscribe(listener as (message: unknown) => void)
  return {
    registry,
    stop () {
      for (const [name, listener] of listeners) events[name].unsubscribe(listener as (message: unknown) => void)
    }
  }
}
