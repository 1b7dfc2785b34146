/**
 * The `metrics` option: the Prometheus series move with what the node does (scraped as text
 * from `registry.metrics()` and from the `/metrics` route), join the app's registry, never
 * take a channel name as a label, and fail with a coded error without prom-client (two
 * nodes over Redis: redis.test.ts).
 */
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import t from 'tap'
import fastifyChannels from '../../plugin/index.js'
import { loadPromClient } from '../../plugin/observability/metrics.js'
import { events } from '../../plugin/observability/events.js'
import { resolveOptions } from '../../plugin/options.js'
import { startInMemory } from '../helpers/in-memory.js'
import { until } from '../helpers/server.js'

/** The value of one sample in Prometheus text (`name{labels} value`), 0 when absent. */
function sample (text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return 0
}

t.test('the metrics option: true, { path, registry }, and what it refuses', async (t) => {
  t.same(resolveOptions({ metrics: true }).metrics, { path: '/metrics', registry: undefined })
  t.same(resolveOptions({}).metrics, false)
  const registry = new Registry()
  t.same(resolveOptions({ metrics: { path: false, registry } }).metrics, { path: false, registry })
  for (const bad of [{ path: 'metrics' }, { registry: {} }, { prefix: 'x' }, 'yes', null]) {
    t.throws(() => resolveOptions({ metrics: bad as never }), { code: 'FST_CHANNELS_INVALID_OPTION' }, JSON.stringify(bad))
  }
})

t.test('without prom-client, registration fails with FST_CHANNELS_MISSING_PROM_CLIENT', async (t) => {
  await t.rejects(loadPromClient('prom-client-that-is-not-installed'), { code: 'FST_CHANNELS_MISSING_PROM_CLIENT' })
  t.ok(typeof (await loadPromClient()).Registry === 'function', 'the installed one loads')
})

t.test('the series move: connections, subscriptions, messages, errors, publications, deliveries, handlers, disconnects', async (t) => {
  const registry = new Registry()
  const { app, connect, open } = await startInMemory({ metrics: { registry }, maxConnections: 2 }, (app) => {
    app.channels.on('message', { event: 'say' }, () => 'ok')
    app.channels.on('message', { event: 'fail' }, () => { throw new Error('boom') })
  })
  t.teardown(() => app.close())
  const scrape = async (): Promise<string> => await registry.metrics()
  let text = await scrape()
  t.equal(sample(text, 'channels_connections'), 0)
  t.equal(sample(text, 'channels_broker_up'), 1, 'the broker is up from the start')

  const a = await connect()
  const b = await connect()
  await t.rejects(open(), { statusCode: 503 } as object as Error)
  await t.rejects(open({ origin: 'https://evil.example.net' }), { statusCode: 403 } as object as Error)
  await a.subscribe('room-1')
  await a.subscribe('room-2')
  await b.subscribe('room-1')
  await a.request({ type: 'message', event: 'say', id: 1 })
  await a.request({ type: 'message', event: 'say', id: 2 })
  await a.request({ type: 'message', event: 'fail', id: 3 })
  await a.request({ type: 'message', event: 'made-up-by-the-client-1', id: 4 })
  await a.request({ type: 'message', event: 'made-up-by-the-client-2', id: 5 })
  await app.broadcastChannel('room-1', { n: 1 })
  await app.broadcast({ n: 2 })
  text = await scrape()
  t.equal(sample(text, 'channels_connections'), 2)
  t.equal(sample(text, 'channels_subscriptions'), 3)
  t.equal(sample(text, 'channels_connections_total{result="accepted"}'), 2)
  t.equal(sample(text, 'channels_connections_total{result="refused_cap"}'), 1)
  t.equal(sample(text, 'channels_connections_total{result="refused_origin"}'), 1)
  t.equal(sample(text, 'channels_messages_received_total{event="say"}'), 2)
  t.equal(sample(text, 'channels_messages_received_total{event="fail"}'), 1)
  t.equal(sample(text, 'channels_messages_received_total{event="(unhandled)"}'), 2, 'a client\'s made-up events share one label')
  t.notMatch(text, /made-up-by-the-client/, 'no client-given event name is a label')
  t.notMatch(text, /room-1|room-2/, 'no channel name anywhere')
  t.equal(sample(text, 'channels_errors_sent_total{code="HANDLER_ERROR"}'), 1)
  t.equal(sample(text, 'channels_errors_sent_total{code="NO_HANDLER"}'), 2)
  t.equal(sample(text, 'channels_handler_duration_seconds_count{event="say"}'), 2)
  t.equal(sample(text, 'channels_handler_duration_seconds_count{event="fail"}'), 1)
  t.equal(sample(text, 'channels_handler_duration_seconds_bucket{le="+Inf",event="say"}'), 2, 'the buckets in prom-client\'s own format')
  t.equal(sample(text, 'channels_handler_duration_seconds_bucket{le="5",event="say"}'), 2)
  t.ok(sample(text, 'channels_handler_duration_seconds_sum{event="say"}') > 0)
  t.equal(sample(text, 'channels_publications_total{kind="channels"}'), 1)
  t.equal(sample(text, 'channels_publications_total{kind="all"}'), 1)
  t.equal(sample(text, 'channels_broker_publish_duration_seconds_count'), 2)
  t.equal(sample(text, 'channels_deliveries_total'), 4, 'room-1 reached 2 sockets, the broadcast 2')

  a.ws.close(4001)
  await until(() => app.channels.stats().sockets === 1)
  text = await scrape()
  t.equal(sample(text, 'channels_connections'), 1)
  t.equal(sample(text, 'channels_subscriptions'), 1)
  t.equal(sample(text, 'channels_disconnects_total{code="4xxx"}'), 1, 'the application range, which a client picks freely, is one label')
  t.notMatch(text, /4001/)
  b.close()
})

t.test('metrics: true serves /metrics in the Prometheus text format; path false serves nothing', async (t) => {
  const served = await startInMemory({ metrics: true })
  t.teardown(() => served.app.close())
  const answer = await served.app.inject('/metrics')
  t.equal(answer.statusCode, 200)
  t.match(answer.headers['content-type'], /text\/plain/)
  t.match(answer.body, /# TYPE channels_connections gauge/)
  t.match(answer.body, /# TYPE channels_handler_duration_seconds histogram/)

  const registry = new Registry()
  const silent = await startInMemory({ metrics: { path: false, registry } })
  t.teardown(() => silent.app.close())
  t.equal((await silent.app.inject('/metrics')).statusCode, 404)
  t.match(await registry.metrics(), /channels_connections 0/, 'the app scrapes the registry itself')
})

t.test('the app\'s own registry: one scrape holds the app\'s series and ours; a second registration in it is refused', async (t) => {
  const registry = new Registry()
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false, metrics: { path: false, registry } })
  t.teardown(() => app.close())
  const { Counter } = await import('prom-client')
  new Counter({ name: 'app_orders_total', help: 'orders', registers: [registry] }).inc()
  app.get('/metrics', async (_request, reply) => await reply.type(registry.contentType).send(await registry.metrics()))
  const body = (await app.inject('/metrics')).body
  t.match(body, /app_orders_total 1/)
  t.match(body, /channels_connections 0/)

  const again = Fastify({ logger: false })
  again.register(fastifyChannels, { client: false, metrics: { registry } })
  await t.rejects(async () => { await again.ready() }, { code: 'FST_CHANNELS_INVALID_OPTION' })
  await again.close()
})

t.test('closing the app unsubscribes its metrics', async (t) => {
  const { app } = await startInMemory({ metrics: true })
  t.equal(events.connectionOpen.hasSubscribers, true)
  await app.close()
  t.equal(events.connectionOpen.hasSubscribers, false)
})
