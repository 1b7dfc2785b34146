/**
 * OpenTelemetry traces, as a subscriber of the plugin's events: a handler run and a
 * publication are spans, and a delivery that came through the broker with its publisher's
 * trace context is a span linked to the publication's. `@opentelemetry/api` is an optional
 * peer: absent, or present without an SDK (the global tracer provider is the no-op one), the
 * plugin subscribes nothing, so nothing is recorded and no event message is even built.
 *
 * A publication's span is a child of the span active where it was made (the HTTP route that
 * called `fastify.broadcastChannel`); its context crosses the broker as a W3C `traceparent`
 * (broker/envelope.ts). A handler span is not made the active one while the handlers run.
 */
import type { Span, SpanContext, Tracer } from '@opentelemetry/api'
import { events, type DeliveryEvent, type HandlerRunEvent, type PublicationEvent } from './events.js'

type OtelApi = typeof import('@opentelemetry/api')

/** `@opentelemetry/api` when installed, else undefined (`specifier` is there for tests). */
export async function loadOtelApi (specifier = '@opentelemetry/api'): Promise<OtelApi | undefined> {
  try {
    const mod = await import(specifier) as OtelApi & { default?: OtelApi }
    return typeof mod.trace?.getTracerProvider === 'function' ? mod : mod.default
  } catch {
    return undefined
  }
}

/** Whether an SDK registered a tracer provider (the API alone answers with a no-op one). */
export function hasTracerProvider (api: OtelApi): boolean {
  const global = api.trace.getTracerProvider()
  const provider = global instanceof api.ProxyTracerProvider ? global.getDelegate() : global
  return provider.constructor.name !== 'NoopTracerProvider'
}

/** A span context as a W3C traceparent. */
export function toTraceparent ({ traceId, spanId, traceFlags }: SpanContext): string {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

/** A W3C traceparent back to a remote span context; undefined when it is not a valid one. */
export function fromTraceparent (api: OtelApi, traceparent: string): SpanContext | undefined {
  const [version, traceId, spanId, flags] = traceparent.split('-')
  if (version !== '00' || flags === undefined) return undefined
  const spanContext: SpanContext = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true }
  return api.isSpanContextValid(spanContext) ? spanContext : undefined
}

/** The tracer's name and version as spans report them. */
export const tracerName = 'fastify-channels'

/**
 * Subscribes the spans of node `nodeId` when an SDK is registered; returns what unsubscribes
 * them (nothing to do otherwise).
 */
export function startTracing (api: OtelApi, nodeId: string): () => void {
  if (!hasTracerProvider(api)) return () => {}
  const tracer: Tracer = api.trace.getTracer(tracerName)
  const handlerSpans = new WeakMap<HandlerRunEvent, Span>()
  const publicationSpans = new WeakMap<PublicationEvent, Span>()

  const onHandlerStart = (run: HandlerRunEvent): void => {
    if (run.nodeId !== nodeId) return
    const attributes: Record<string, string> = { 'channels.event': run.event, 'channels.session_id': run.sessionId }
    if (run.channel !== undefined) attributes['channels.channel'] = run.channel
    handlerSpans.set(run, tracer.startSpan(`channels handler ${run.event}`, { kind: api.SpanKind.SERVER, attributes }))
  }
  const onHandlerEnd = (run: HandlerRunEvent): void => {
    const span = handlerSpans.get(run)
    if (span === undefined) return
    if (run.failed === true) span.setStatus({ code: api.SpanStatusCode.ERROR })
    span.end()
  }
  const onPublicationStart = (publication: PublicationEvent): void => {
    if (publication.nodeId !== nodeId) return
    // a child of the active span (the route's), if any
    const span = tracer.startSpan(`channels publish ${publication.kind}`, {
      kind: api.SpanKind.PRODUCER,
      attributes: { 'channels.kind': publication.kind, 'channels.channel_count': publication.channels }
    })
    publicationSpans.set(publication, span)
    const spanContext = span.spanContext()
    if (publication.kind !== 'history' && api.isSpanContextValid(spanContext)) publication.traceContext = toTraceparent(spanContext)
  }
  const onPublicationEnd = (publication: PublicationEvent): void => {
    const span = publicationSpans.get(publication)
    if (span === undefined) return
    if (publication.failed === true) span.setStatus({ code: api.SpanStatusCode.ERROR, message: 'the broker did not take the publication' })
    span.end()
  }
  const onDelivery = (delivery: DeliveryEvent): void => {
    if (delivery.nodeId !== nodeId || !delivery.remote || delivery.traceContext === undefined) return
    const remote = fromTraceparent(api, delivery.traceContext)
    if (remote === undefined) return
    tracer.startSpan(`channels deliver ${delivery.kind}`, {
      kind: api.SpanKind.CONSUMER,
      root: true,
      links: [{ context: remote }],
      attributes: { 'channels.kind': delivery.kind, 'channels.delivered': delivery.count }
    }).end()
  }

  events.handlerStart.subscribe(onHandlerStart)
  events.handlerEnd.subscribe(onHandlerEnd)
  events.publicationStart.subscribe(onPublicationStart)
  events.publicationEnd.subscribe(onPublicationEnd)
  events.delivery.subscribe(onDelivery)
  return () => {
    events.handlerStart.unsubscribe(onHandlerStart)
    events.handlerEnd.unsubscribe(onHandlerEnd)
    events.publicationStart.unsubscribe(onPublicationStart)
    events.publicationEnd.unsubscribe(onPublicationEnd)
    events.delivery.unsubscribe(onDelivery)
  }
}
