/**
 * The `metrics` option: the Prometheus series move with what the node does (scraped as text
 * from `registry.metrics()` and from the `/metrics` route), join the app's registry, never
 * take a channel name as a label, and fail with a coded error without prom-client (two
 * nodes over Redis: redis.test.ts).
 */
import Fastify from 'fastify'
import { AggregatorRegistry, Registry } from 'prom-client'
import t from 'tap'
import fastifyChannels from '../../plugin/index.js'
import { closeCodeLabel, loadPromClient } from '../../plugin/observability/metrics.js'
import { events } from '../../plugin/observability/events.js'
import { Health } from '../../plugin/broker/redis/health.js'
import { resolveOptions } from '../../plugin/options.js'
import { failingBroker, startInMemory } from '../helpers/in-memory.js'
import { startApp, TestClient, until } from '../helpers/server.js'

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

const fixture = (name: string): string => new URL(`./fixtures/${name}.mjs`, import.meta.url).href

t.test('prom-client as named exports or as a default export loads; anything else is refused, missing or not', async (t) => {
  t.equal(((await loadPromClient(fixture('prom-named-only'))) as unknown as { shape: string }).shape, 'named-only')
  t.equal(((await loadPromClient(fixture('prom-default-only'))) as unknown as { shape: string }).shape, 'default-only')
  await t.rejects(loadPromClient(fixture('prom-no-registry')), { message: /has no Registry export/, code: undefined }, 'a module without Registry')
  await t.rejects(loadPromClient(fixture('prom-nothing')), { message: /has no Registry export/, code: undefined }, 'a module without Registry or default export')
  await t.rejects(loadPromClient(fixture('prom-throws')), { message: 'prom-throws: broken on load', code: undefined }, 'another failure is thrown as it is')
  await t.rejects(loadPromClient(fixture('prom-loader-other')), { message: /Could not compile/ }, 'a loader error about something else')
  await t.rejects(loadPromClient(fixture('prom-loader-missing-other')), { message: /some-dependency/, code: undefined }, 'a loader error about another module')
  await t.rejects(loadPromClient(fixture('prom-coded-cannot-find')), { code: 'E_OTHER' }, 'an error with a code of its own')
  await t.rejects(loadPromClient(fixture('prom-commonjs-missing')), { code: 'FST_CHANNELS_MISSING_PROM_CLIENT' }, 'require\'s MODULE_NOT_FOUND')
  await t.rejects(loadPromClient(fixture('prom-loader-missing')), { code: 'FST_CHANNELS_MISSING_PROM_CLIENT' }, 'a loader\'s "cannot find" naming it')
  const missing = await loadPromClient('prom-client-that-is-not-installed').catch((err: unknown) => err) as { cause?: unknown }
  // Node's loader gives ERR_MODULE_NOT_FOUND, tap's own a message without a code: either way the cause names the module
  t.match(missing.cause, { message: /prom-client-that-is-not-installed/ }, 'the loader\'s error is the cause')
})

t.test('close codes as labels: the protocol\'s as they are, the application ranges by thousand', async (t) => {
  t.same([1000, 1008, 2999, 3000, 3999, 4000, 4999, 5000].map(closeCodeLabel), ['1000', '1008', '2999', '3xxx', '3xxx', '4xxx', '4xxx', '5000'])
})

/** Every sample line of a scrape: `name{labels} value`, the value a number. */
function samples (text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
}

t.test('two apps in one process, each with its registry: each counts its own node only', async (t) => {
  const quiet = new Registry()
  const busy = new Registry()
  const one = await startInMemory({ metrics: { path: false, registry: quiet }, history: { channel: /^h-/ } })
  t.teardown(() => one.app.close())
  const two = await startInMemory({ metrics: { path: false, registry: busy }, rateLimit: { max: 3, interval: 60_000 }, history: { channel: /^h-/ } }, (app) => {
    app.channels.on('message', { event: 'say' }, () => 'ok')
  })
  t.teardown(() => two.app.close())
  await t.rejects(two.open({ origin: 'https://evil.example.net' }), { statusCode: 403 } as object as Error)
  const client = await two.connect()
  const joined = await client.subscribe('h-room')
  await client.request({ type: 'message', event: 'say', id: 1 })
  await client.request({ type: 'message', event: 'nobody', id: 2 })
  await two.app.broadcastChannel('h-room', 1)
  await two.app.broadcast(2)
  const again = await two.connect()
  await again.request({ type: 'subscribe', channel: 'h-room', id: 3, since: { epoch: joined.epoch, offset: 0 } })
  again.close()
  for (let i = 0; i < 3; i++) client.send({ type: 'message', event: 'say' })
  await client.next((frame) => frame.code === 'RATE_LIMITED')
  client.ws.close(4000)
  await until(() => two.app.channels.stats().sockets === 0)
  const text = await busy.metrics()
  for (const series of ['channels_connections_total{result="accepted"}', 'channels_connections_total{result="refused_origin"}',
    'channels_disconnects_total{code="4xxx"}', 'channels_messages_received_total{event="say"}', 'channels_errors_sent_total{code="NO_HANDLER"}',
    'channels_publications_total{kind="all"}', 'channels_handler_duration_seconds_count{event="say"}', 'channels_recoveries_total{result="recovered"}',
    'channels_rate_limited_total']) {
    t.ok(sample(text, series) >= 1, `${series} on the busy node`)
  }
  t.ok(sample(text, 'channels_deliveries_total') >= 2)
  for (const line of samples(await quiet.metrics())) {
    const value = Number(line.slice(line.lastIndexOf(' ') + 1))
    if (line.startsWith('channels_broker_up ')) t.equal(value, 1)
    else t.equal(value, 0, `the quiet node: ${line}`)
  }
})

t.test('recoveries by result', async (t) => {
  const registry = new Registry()
  const { app, connect } = await startInMemory({ metrics: { path: false, registry }, history: { channel: /^h-/ } })
  t.teardown(() => app.close())
  const client = await connect()
  const joined = await client.subscribe('h-room')
  await app.broadcastChannel('h-room', 1)
  const again = await connect()
  await again.request({ type: 'subscribe', channel: 'h-room', id: 7, since: { epoch: joined.epoch, offset: 0 } })
  await again.request({ type: 'subscribe', channel: 'h-other', id: 8, since: { epoch: 'not-the-epoch', offset: 0 } })
  const text = await registry.metrics()
  t.equal(sample(text, 'channels_recoveries_total{result="recovered"}'), 1)
  t.equal(sample(text, 'channels_recoveries_total{result="not_recovered"}'), 1)
  client.close()
  again.close()
})

t.test('the broker gauge follows this node\'s broker-down and broker-up events, not another node\'s', async (t) => {
  const registry = new Registry()
  const { app } = await startInMemory({ metrics: { path: false, registry } })
  t.teardown(() => app.close())
  const up = async (): Promise<number> => sample(await registry.metrics(), 'channels_broker_up')
  const nodeId = app.channels.stats().node
  const health = new Health(app.log, nodeId)
  const other = new Health(app.log, 'another-node')
  const shard = (port: number): { address: string, ranges: Array<[number, number]> } => ({ address: `127.0.0.1:${port}`, ranges: [[port, port]] })
  other.lost(shard(7009), new Error('elsewhere'))
  t.equal(await up(), 1, 'another node\'s outage')
  health.lost(shard(7001), new Error('lost'))
  t.equal(await up(), 0)
  health.lost(shard(7002), new Error('lost too'))
  health.back(['127.0.0.1:7001'], { channels: 0, sessions: 0 })
  t.equal(await up(), 0, 'a shard is still down')
  other.back('all', { channels: 0, sessions: 0 })
  t.equal(await up(), 0, 'another node\'s recovery')
  health.back('all', { channels: 0, sessions: 0 })
  t.equal(await up(), 1, 'every shard back')
})

t.test('publish durations: only of publications the broker took, in seconds', async (t) => {
  const registry = new Registry()
  let failing = false
  const { app } = await startInMemory({ metrics: { path: false, registry }, broker: failingBroker(() => failing) })
  t.teardown(() => app.close())
  const before = performance.now()
  await app.broadcast(1)
  const elapsed = (performance.now() - before) / 1000
  failing = true
  await app.broadcast(2)
  const text = await registry.metrics()
  t.equal(sample(text, 'channels_publications_total{kind="all"}'), 2, 'both counted')
  t.equal(sample(text, 'channels_broker_publish_duration_seconds_count'), 1, 'one duration: the failed one has none')
  const sum = sample(text, 'channels_broker_publish_duration_seconds_sum')
  t.ok(sum >= 0 && sum <= elapsed, `in seconds (${sum} of ${elapsed})`)
  t.match(text, '# HELP channels_broker_publish_duration_seconds time for the broker to take one publication')
})

t.test('handler durations: buckets by upper bound, cumulative, in prom-client\'s text; reset by the registry; summed across workers', async (t) => {
  const registry = new Registry()
  const { app, connect } = await startInMemory({ metrics: { path: false, registry } }, (app) => {
    app.channels.on('message', { event: 'slow' }, async () => { await new Promise((resolve) => setTimeout(resolve, 30)) })
  })
  t.teardown(() => app.close())
  const client = await connect()
  await client.request({ type: 'message', event: 'slow', id: 1 })
  const text = await registry.metrics()
  t.match(text, '# HELP channels_handler_duration_seconds run time of the message handlers of one message')
  const buckets = samples(text).filter((line) => line.startsWith('channels_handler_duration_seconds_bucket{'))
  t.same(buckets.map((line) => /le="([^"]+)"/.exec(line)?.[1]), ['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '+Inf'])
  t.equal(sample(text, 'channels_handler_duration_seconds_bucket{le="0.025",event="slow"}'), 0, 'a 30 ms run is in no bucket up to 25 ms')
  t.equal(sample(text, 'channels_handler_duration_seconds_bucket{le="+Inf",event="slow"}'), 1)
  for (const line of samples(text)) t.match(line, /^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/, 'a sample line')

  const worker = await registry.getMetricsAsJSON()
  const merged = await AggregatorRegistry.aggregate([worker, worker]).metrics()
  t.equal(sample(merged, 'channels_handler_duration_seconds_count{event="slow"}'), 2, 'two workers\' runs summed (cluster mode)')

  registry.resetMetrics()
  t.notMatch(await registry.metrics(), 'channels_handler_duration_seconds_count{event="slow"}', 'reset empties the histogram')
  client.close()
})

t.test('a registry that already holds our series is refused, naming the series', async (t) => {
  const registry = new Registry()
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false, metrics: { path: false, registry } })
  t.teardown(() => app.close())
  const again = Fastify({ logger: false })
  again.register(fastifyChannels, { client: false, metrics: { path: false, registry } })
  await t.rejects(async () => { await again.ready() }, { message: /it already holds channels_connections \(is fastify-channels registered twice with one registry\?\)/ })
  await again.close()
})

t.test('slow consumers are counted, by their own node only', async (t) => {
  const registry = new Registry()
  const { app, url } = await startApp({ heartbeat: false, maxBufferedBytes: 16 * 1024, metrics: { path: false, registry } })
  t.teardown(() => app.close())
  const quiet = new Registry()
  const other = await startInMemory({ metrics: { path: false, registry: quiet } })
  t.teardown(() => other.app.close())
  const stalled = await TestClient.connect(url)
  await stalled.subscribe('room')
  stalled.ws.pause()
  const big = 'x'.repeat(256 * 1024)
  for (let i = 0; i < 64 && app.channels.stats().sockets === 1; i++) await app.broadcastChannel('room', { big })
  await until(() => app.channels.stats().sockets === 0, 3000, 'the stalled peer is cut off')
  t.equal(sample(await registry.metrics(), 'channels_slow_consumers_total'), 1)
  t.equal(sample(await quiet.metrics(), 'channels_slow_consumers_total'), 0, 'not by another app')
  stalled.ws.terminate()
})
