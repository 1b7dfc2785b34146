/**
 * OpenTelemetry spans (plugin/observability/tracing.ts) with a real SDK (sdk-trace-base's
 * BasicTracerProvider and InMemorySpanExporter, the async-hooks context manager): handler runs
 * and publications are spans, a publication from a route is a child of the route's span (over
 * Redis, the delivery on the other node links to it: redis.test.ts). Without an SDK (or
 * without the API) nothing subscribes and nothing breaks.
 */
import { context, trace, SpanStatusCode } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import * as api from '@opentelemetry/api'
import t from 'tap'
import { events } from '../../plugin/observability/events.js'
import { fromTraceparent, hasTracerProvider, loadOtelApi, toTraceparent } from '../../plugin/observability/tracing.js'
import { decodeEnvelope, encodePresence, encodePublication } from '../../plugin/broker/envelope.js'
import { memoryBroker } from '../../plugin/index.js'
import { failingBroker, startInMemory } from '../helpers/in-memory.js'

const traceEvents = [events.handlerStart, events.handlerEnd, events.publicationStart, events.publicationEnd, events.delivery]

t.test('the API without an SDK: nothing subscribes, handlers and publications work', async (t) => {
  t.equal(hasTracerProvider(api), false)
  const { app, connect } = await startInMemory({}, (app) => { app.channels.on('message', { event: 'say' }, () => 'ok') })
  t.teardown(() => app.close())
  for (const channel of traceEvents) t.equal(channel.hasSubscribers, false, `${String(channel.name)}: no subscriber, no message built`)
  const client = await connect()
  await client.subscribe('room')
  t.match(await client.request({ type: 'message', event: 'say', id: 1 }), { type: 'ack', data: 'ok' })
  await app.broadcastChannel('room', 1)
  t.match(await client.next((frame) => frame.type === 'message'), { data: 1 })
  client.close()
})

t.test('without the API: no tracing, no error', async (t) => {
  t.equal(await loadOtelApi('@opentelemetry/not-installed-here'), undefined)
})

t.test('traceparent: a span context there and back; anything else is refused', async (t) => {
  const spanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 }
  const text = toTraceparent(spanContext)
  t.equal(text, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
  t.same(fromTraceparent(api, text), { ...spanContext, isRemote: true })
  t.equal(fromTraceparent(api, '00-00000000000000000000000000000000-b7ad6b7169203331-01'), undefined, 'an invalid trace id')
  t.equal(fromTraceparent(api, 'garbage'), undefined)
  t.equal(fromTraceparent(api, '01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'), undefined, 'another version')
  t.equal(fromTraceparent(api, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331'), undefined, 'no flags')
})

t.test('the API as a module with named exports, or with only a default export (CommonJS interop): both load', async (t) => {
  const named = await loadOtelApi(new URL('./fixtures/otel-named-only.mjs', import.meta.url).href) as unknown as { shape?: string, trace?: unknown }
  t.equal(named?.shape, 'named-only', 'the module itself')
  const byDefault = await loadOtelApi(new URL('./fixtures/otel-default-only.mjs', import.meta.url).href) as unknown as { shape?: string, trace?: unknown }
  t.equal(byDefault?.shape, 'default-only', 'its default export')
  t.type((await loadOtelApi())?.trace.getTracerProvider, 'function', 'the installed API')
})

t.test('the envelope carries a trace context in a +t annotation only when there is one, and only a traceparent', async (t) => {
  const traceContext = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  const plain = encodePublication('node-a', { kind: 'channels', channels: ['room'], frames: ['{"type":"message"}'] }, 1)
  t.match(plain, /^c1\n/, 'untraced: the envelope as before')
  const traced = encodePublication('node-a', { kind: 'channels', channels: ['room'], frames: ['{"type":"message"}'], traceContext }, 1)
  t.equal(traced, `+t ${traceContext}\n${plain}`)
  t.match(decodeEnvelope(traced), { kind: 'channels', nodeId: 'node-a', delivery: { channels: ['room'], traceContext } })
  const all = encodePublication('node-a', { kind: 'all', frame: '{}', traceContext }, 2)
  t.match(decodeEnvelope(all), { kind: 'all', delivery: { frame: '{}', traceContext } })
  t.equal(encodePublication('node-a', { kind: 'all', frame: '{}', traceContext: 'x\ny' }, 3), 'a1\nnode-a\n\n{}', 'a context that is not a traceparent is not sent')
  t.equal(decodeEnvelope(`+t not-a-traceparent\n${plain}`), undefined)
  t.equal(decodeEnvelope(`+t${traceContext}\n${plain}`), undefined, 'the value after one space')
  t.equal(decodeEnvelope(`+tx${traceContext}\n${plain}`), undefined, 'a space, not any character')
  t.equal(decodeEnvelope(`+t x${traceContext}\n${plain}`), undefined, 'a traceparent, nothing before it')
  t.equal(decodeEnvelope(`+t ${traceContext}x\n${plain}`), undefined, 'nor after it')
  t.equal(encodePublication('node-a', { kind: 'all', frame: '{}', traceContext: `${traceContext}-x` }, 4), 'a1\nnode-a\n\n{}', 'a context with more after the traceparent is not sent')
  t.equal(decodeEnvelope(`+t ${traceContext}\n+t ${traceContext}\n${plain}`), undefined, 'one trace, not two')
  t.equal(decodeEnvelope(`+t ${traceContext}\ns1\nsession\n{}`), undefined, 'only publications carry one')
  t.equal(decodeEnvelope(`+t ${traceContext}\n${encodePresence('node-a', 'room', { joins: [], leaves: ['x'] })}`), undefined)
})

// ---- with an SDK, from here on ----------------------------------------------------------------

const exporter = new InMemorySpanExporter()
function registerSdk (): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
}

const named = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name === name)

t.test('with an SDK: a handler run is a span named after its event; a failure is an error status', async (t) => {
  registerSdk()
  exporter.reset()
  t.equal(hasTracerProvider(api), true)
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('message', { event: 'say' }, () => 'ok')
    app.channels.on('message', { event: 'boom' }, async () => { throw new Error('boom') })
  })
  t.teardown(() => app.close())
  const client = await connect()
  await client.request({ type: 'message', event: 'say', id: 1 })
  await client.request({ type: 'message', event: 'boom', id: 2 })
  const [say] = named('channels handler say')
  t.ok(say !== undefined, 'the say span')
  t.equal(say.attributes['channels.event'], 'say')
  t.equal(say.attributes['channels.session_id'], client.sessionId)
  t.equal(say.status.code, SpanStatusCode.UNSET)
  t.equal(named('channels handler boom')[0]?.status.code, SpanStatusCode.ERROR)
  await app.close()
  for (const channel of traceEvents) t.equal(channel.hasSubscribers, false, `${String(channel.name)}: unsubscribed on close`)
  client.close()
})

t.test('with an SDK: a publication from a route is a child of the route\'s span', async (t) => {
  exporter.reset()
  const { app, connect } = await startInMemory({}, (app) => {
    app.post('/announce', async () => {
      // what the HTTP instrumentation does around a route
      return await trace.getTracer('test').startActiveSpan('POST /announce', async (span) => {
        await app.broadcastChannel('room', { text: 'hi' })
        span.end()
        return { ok: true }
      })
    })
  })
  t.teardown(() => app.close())
  const client = await connect()
  await client.subscribe('room')
  t.equal((await app.inject({ method: 'POST', url: '/announce' })).statusCode, 200)
  await client.next((frame) => frame.type === 'message')
  const [route] = named('POST /announce')
  const [publish] = named('channels publish channels')
  t.ok(route !== undefined && publish !== undefined, 'both spans are recorded')
  t.equal(publish.spanContext().traceId, route.spanContext().traceId, 'one trace')
  t.equal(publish.parentSpanContext?.spanId, route.spanContext().spanId, 'the publication is the route span\'s child')
  t.equal(publish.attributes['channels.channel_count'], 1)
  client.close()
})

t.test('with an SDK: a handler span names its channel when the message has one; the tracer is fastify-channels', async (t) => {
  exporter.reset()
  const { app, connect } = await startInMemory({}, (app) => { app.channels.on('message', { event: 'say' }, () => 'ok') })
  t.teardown(() => app.close())
  const client = await connect()
  await client.subscribe('room')
  t.match(await client.request({ type: 'message', event: 'say', channel: 'room', id: 1 }), { type: 'ack' })
  await client.request({ type: 'message', event: 'say', id: 2 })
  const [onChannel, plain] = named('channels handler say')
  t.equal(onChannel?.attributes['channels.channel'], 'room')
  t.notOk(plain !== undefined && 'channels.channel' in plain.attributes, 'no channel attribute without a channel')
  t.equal(plain?.instrumentationScope.name, 'fastify-channels')
  client.close()
})

t.test('with an SDK, two apps in one process: each records the spans of its own node only', async (t) => {
  exporter.reset()
  const one = await startInMemory({}, (app) => { app.channels.on('message', { event: 'say' }, () => 'ok') })
  t.teardown(() => one.app.close())
  const two = await startInMemory({}, (app) => { app.channels.on('message', { event: 'say' }, () => 'ok') })
  t.teardown(() => two.app.close())
  const client = await two.connect()
  await client.subscribe('room')
  await client.request({ type: 'message', event: 'say', id: 1 })
  await two.app.broadcastChannel('room', 'hi')
  await client.next((frame) => frame.type === 'message')
  t.equal(named('channels handler say').length, 1, 'one handler span, not one per app')
  t.equal(named('channels publish channels').length, 1, 'one publication span, not one per app')
  client.close()
})

t.test('with an SDK: a publication the broker did not take is an error span with its reason; one it took is not', async (t) => {
  exporter.reset()
  let failing = false
  const { app } = await startInMemory({ broker: failingBroker(() => failing) })
  t.teardown(() => app.close())
  await app.broadcastChannel('room', 'taken')
  failing = true
  await app.broadcastChannel('room', 'lost')
  const [taken, lost] = named('channels publish channels')
  t.equal(taken?.status.code, SpanStatusCode.UNSET)
  t.same(lost?.status, { code: SpanStatusCode.ERROR, message: 'the broker did not take the publication' })
})

t.test('with an SDK: a channels publication carries its span as a traceparent; a history one carries none', async (t) => {
  exporter.reset()
  const contexts: Array<[string, string | undefined]> = []
  const listener = (message: { kind: string, traceContext?: string }): void => { contexts.push([message.kind, message.traceContext]) }
  events.publicationEnd.subscribe(listener)
  t.teardown(() => { events.publicationEnd.unsubscribe(listener) })
  const { app } = await startInMemory({ history: { channel: /^h-/ } })
  t.teardown(() => app.close())
  await app.broadcastChannel('room', 1)
  await app.broadcastChannel('h-room', 2)
  const [publish] = named('channels publish channels')
  t.same(contexts, [['channels', toTraceparent(publish.spanContext())], ['history', undefined]])
})

t.test('with an SDK, two nodes on one broker: a remote delivery is a root span linked to the publication', async (t) => {
  exporter.reset()
  const broker = memoryBroker()
  const one = await startInMemory({ broker })
  t.teardown(() => one.app.close())
  const two = await startInMemory({ broker })
  t.teardown(() => two.app.close())
  const here = await one.connect()
  await here.subscribe('room')
  const there = await two.connect()
  await there.subscribe('room')
  // published from an active span (a route's): over the memory broker the delivery runs in its async context
  await trace.getTracer('test').startActiveSpan('POST /announce', async (span) => {
    await one.app.broadcastChannel('room', 'hi')
    span.end()
  })
  await there.next((frame) => frame.type === 'message')
  await here.next((frame) => frame.type === 'message')
  const [publish] = named('channels publish channels')
  const delivered = named('channels deliver channels')
  t.equal(delivered.length, 1, 'one span: the remote delivery on node two, none for the local one on node one')
  const [deliver] = delivered
  t.equal(deliver.kind, api.SpanKind.CONSUMER)
  t.equal(deliver.parentSpanContext, undefined, 'a root span, not a child of the span active where it runs')
  t.not(deliver.spanContext().traceId, publish.spanContext().traceId, 'a trace of its own')
  t.same(deliver.links.map((link) => link.context), [{ traceId: publish.spanContext().traceId, spanId: publish.spanContext().spanId, traceFlags: 1, isRemote: true }], 'linked to the publication')
  t.same(deliver.attributes, { 'channels.kind': 'channels', 'channels.delivered': 1 })

  // a session send crosses the broker without a trace context: no span
  await one.app.send(there.sessionId, 'direct')
  await there.next((frame) => frame.data === 'direct')
  t.equal(exporter.getFinishedSpans().filter((span) => span.name.startsWith('channels deliver')).length, 1, 'no span for a session delivery')

  // a delivery event whose trace context is no valid span context: no span
  const nodeId = two.app.channels.stats().node
  events.delivery.publish({ nodeId, kind: 'all', count: 1, remote: true, traceContext: '00-00000000000000000000000000000000-b7ad6b7169203331-01' })
  t.equal(named('channels deliver all').length, 0, 'no span for an invalid trace context')
  // node two alone (node one closed, its subscribers gone): a remote delivery of node two's is traced by node two
  here.close()
  await one.app.close()
  events.delivery.publish({ nodeId, kind: 'all', count: 1, remote: true, traceContext: toTraceparent(publish.spanContext()) })
  t.equal(named('channels deliver all').length, 1, 'traced by the node it happened on')
  there.close()
})
