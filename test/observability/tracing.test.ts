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
import { decodeEnvelope, encodePublication } from '../../plugin/broker/envelope.js'
import { startInMemory } from '../helpers/in-memory.js'

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
})

t.test('the envelope carries a trace context on a t1 line only when there is one, and only a traceparent', async (t) => {
  const traceContext = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  const plain = encodePublication('node-a', { kind: 'channels', channels: ['room'], frames: ['{"type":"message"}'] }, 1)
  t.match(plain, /^c1\n/, 'untraced: the envelope as before')
  const traced = encodePublication('node-a', { kind: 'channels', channels: ['room'], frames: ['{"type":"message"}'], traceContext }, 1)
  t.equal(traced, `t1\n${traceContext}\n${plain}`)
  t.match(decodeEnvelope(traced), { kind: 'channels', nodeId: 'node-a', delivery: { channels: ['room'], traceContext } })
  const all = encodePublication('node-a', { kind: 'all', frame: '{}', traceContext }, 2)
  t.match(decodeEnvelope(all), { kind: 'all', delivery: { frame: '{}', traceContext } })
  t.equal(encodePublication('node-a', { kind: 'all', frame: '{}', traceContext: 'x\ny' }, 3), 'a1\nnode-a\n\n{}', 'a context that is not a traceparent is not sent')
  t.equal(decodeEnvelope(`t1\nnot-a-traceparent\n${plain}`), undefined)
  t.equal(decodeEnvelope(`t1\n${traceContext}\nt1\n${traceContext}\n${plain}`), undefined, 'one trace line, not nested ones')
  t.equal(decodeEnvelope(`t1\n${traceContext}\ns1\nsession\n{}`), undefined, 'only publications carry one')
  t.equal(decodeEnvelope(`t2\n${traceContext}\n${plain}`), undefined, 'a later version of the trace line is not misread')
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
