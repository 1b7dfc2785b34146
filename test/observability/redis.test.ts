/**
 * Observability across two nodes over Redis (127.0.0.1:6379, a unique prefix per test): the
 * `delivery` event on the node that got a publication through the broker, the metrics of each
 * node, and the delivery span linked to the publication's span across the broker. Kept apart
 * from events/metrics/tracing.test.ts, which the mutation runner runs without Redis.
 */
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { events } from '../../plugin/observability/events.js'
import { TestClient, until } from '../helpers/server.js'
import { startNode, uniquePrefix, deleteKeys, withRedis } from '../redis/helpers.js'

type Recorded = Record<string, unknown> & { on: string }

function record (t: Test): Recorded[] {
  const seen: Recorded[] = []
  for (const channel of Object.values(events)) {
    const name = String(channel.name)
    const listener = (message: unknown): void => { seen.push({ ...(message as object), on: name.slice('fastify-channels:'.length) }) }
    subscribe(name, listener)
    t.teardown(() => { unsubscribe(name, listener) })
  }
  return seen
}

const of = (seen: Recorded[], event: string, nodeId?: string): Recorded[] =>
  seen.filter((entry) => entry.on === event && (nodeId === undefined || entry.nodeId === nodeId))

function sample (text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return 0
}

t.test('two nodes over Redis: the delivery on the other node is remote, with its count', async (t) => {
  await withRedis(t, async () => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const seen = record(t)
    const a = await startNode(t, { prefix })
    const b = await startNode(t, { prefix })
    const onB = [await TestClient.connect(b.url), await TestClient.connect(b.url)]
    const onA = await TestClient.connect(a.url)
    t.teardown(() => { for (const client of [...onB, onA]) client.close() })
    for (const client of onB) await client.subscribe('room')
    const bNode = of(seen, 'connection-open').find((entry) => entry.sessionId === onB[0].sessionId)?.nodeId as string
    const aNode = of(seen, 'connection-open').find((entry) => entry.sessionId === onA.sessionId)?.nodeId as string
    t.not(aNode, bNode)
    await a.app.broadcastChannel('room', { hello: 1 })
    for (const client of onB) await client.next((frame) => frame.type === 'message')
    t.match(of(seen, 'delivery', bNode), [{ kind: 'channels', count: 2, remote: true }])
    t.match(of(seen, 'delivery', aNode), [{ kind: 'channels', count: 0, remote: false }])
    t.match(of(seen, 'publication-end', aNode), [{ kind: 'channels', failed: false }])
    t.equal(of(seen, 'delivery', bNode)[0].traceContext, undefined, 'no trace context without a tracer')
  })
})

t.test('two nodes over Redis: deliveries count on the node that delivered; the publisher counts the publication', async (t) => {
  await withRedis(t, async () => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const registries = [new Registry(), new Registry()]
    const a = await startNode(t, { prefix }, undefined, { metrics: { path: false, registry: registries[0] } })
    const b = await startNode(t, { prefix }, undefined, { metrics: { path: false, registry: registries[1] } })
    const onB = [await TestClient.connect(b.url), await TestClient.connect(b.url)]
    t.teardown(() => { for (const client of onB) client.close() })
    for (const client of onB) await client.subscribe('room')
    await a.app.broadcastChannel('room', { hello: 1 })
    for (const client of onB) await client.next((frame) => frame.type === 'message')
    const [textA, textB] = await Promise.all(registries.map(async (registry) => await registry.metrics()))
    t.equal(sample(textA, 'channels_publications_total{kind="channels"}'), 1)
    t.equal(sample(textA, 'channels_deliveries_total'), 0)
    t.equal(sample(textB, 'channels_deliveries_total'), 2)
    t.equal(sample(textB, 'channels_publications_total{kind="channels"}'), 0)
    t.equal(sample(textB, 'channels_connections'), 2)
    t.equal(sample(textA, 'channels_connections'), 0)
  })
})

const exporter = new InMemorySpanExporter()
const named = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name === name)

t.test('with an SDK, two nodes over Redis: the delivery on the other node is a span linked to the publication', async (t) => {
  await withRedis(t, async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
    t.teardown(() => { trace.disable(); context.disable() })
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const a = await startNode(t, { prefix }, (app) => {
      app.post('/announce', async () => await trace.getTracer('test').startActiveSpan('POST /announce', async (span) => {
        await app.broadcastChannel('room', { text: 'hi' })
        span.end()
        return { ok: true }
      }))
    })
    const b = await startNode(t, { prefix })
    const client = await TestClient.connect(b.url)
    t.teardown(() => client.close())
    await client.subscribe('room')
    t.equal((await a.app.inject({ method: 'POST', url: '/announce' })).statusCode, 200)
    t.match(await client.next((frame) => frame.type === 'message'), { data: { text: 'hi' } })
    await until(() => named('channels deliver channels').length === 1)
    const [route] = named('POST /announce')
    const [publish] = named('channels publish channels')
    const [deliver] = named('channels deliver channels')
    t.equal(publish.parentSpanContext?.spanId, route.spanContext().spanId)
    t.equal(deliver.links.length, 1)
    t.equal(deliver.links[0].context.traceId, publish.spanContext().traceId, 'linked to the publication\'s trace')
    t.equal(deliver.links[0].context.spanId, publish.spanContext().spanId, 'and to its span')
    t.equal(deliver.attributes['channels.delivered'], 1)
    t.equal(deliver.parentSpanContext, undefined, 'a root span of its own: the link joins them')
  })
})
