/**
 * Where the plugin body starts watching itself: the subscribers of its own events (the message
 * log, the metrics and their route, the traces) and the `connection-refused` events of the
 * upgrade route.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ResolvedOptions } from '../options.js'
import { events, type RefusalReason } from './events.js'
import { startMessageLog } from './message-log.js'
import { loadPromClient, startMetrics, type MetricsSource } from './metrics.js'
import { loadOtelApi, startTracing } from './tracing.js'

/** Subscribes what `options` ask for to node `source.nodeId`'s events; returns what unsubscribes them all. */
export async function observe (
  fastify: FastifyInstance, options: Pick<ResolvedOptions, 'messageLog' | 'metrics'>, source: MetricsSource
): Promise<() => void> {
  const stops: Array<() => void> = []
  if (options.messageLog) stops.push(startMessageLog(source.nodeId))
  if (options.metrics !== false) {
    const metrics = startMetrics(await loadPromClient(), source, options.metrics.registry)
    stops.push(metrics.stop)
    const { registry } = metrics
    if (options.metrics.path !== false) {
      fastify.get(options.metrics.path, async (_request, reply) => {
        const body = await registry.metrics()
        return await reply.type(registry.contentType).send(body)
      })
    }
  }
  const otel = await loadOtelApi()
  // An SDK is registered before the app is ready (docs/observability.md); without one nothing subscribes.
  if (otel !== undefined) fastify.addHook('onReady', async () => { stops.push(startTracing(otel, source.nodeId)) })
  return () => { for (const stop of stops.splice(0)) stop() }
}

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

/**
 * `connection-refused` events: the plugin's own gates (origins, the cap) name their reason
 * (`gate` wraps them); any other non-101 answer to an upgrade came from an app hook (e.g. auth
 * answering 401): the route's `onResponse` sees it.
 */
export function refusalEvents (nodeId: string, closing: () => boolean): { gate: (hook: Hook, reason: RefusalReason) => Hook, onResponse: Hook } {
  const named = new WeakSet<FastifyRequest>()
  function refused (reason: RefusalReason, statusCode: number): void {
    if (events.connectionRefused.hasSubscribers) events.connectionRefused.publish({ nodeId, reason, statusCode })
  }
  return {
    gate: (hook, reason) => async (request, reply) => {
      await hook(request, reply)
      if (!reply.sent) return
      named.add(request)
      refused(reason === 'cap' && closing() ? 'closing' : reason, reply.statusCode)
    },
    async onResponse (request, reply) {
      if (request.ws && !named.has(request) && reply.statusCode !== 101) refused('hook', reply.statusCode)
    }
  }
}
