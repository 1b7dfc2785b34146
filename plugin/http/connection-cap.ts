/**
 * `maxConnections`: the WebSocket connections one node holds at most, so that one client
 * cannot open sockets until the process runs out of file descriptors (and then every HTTP
 * request of every user is reset). An upgrade past the cap is answered 503 from an `onRequest`
 * hook of the upgrade route, before any WebSocket exists; HTTP routes are not counted.
 *
 * A slot is the upgrade's TCP socket: taken in the hook (synchronously, so concurrent upgrades
 * cannot overshoot) and given back when that socket closes, whatever closed it: the WebSocket
 * ending, a later hook refusing the upgrade, a failed handshake. Nothing else is kept.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'

export const tooManyConnectionsCode = 'FST_CHANNELS_TOO_MANY_CONNECTIONS'

export interface ConnectionCap {
  /** the `onRequest` hook of the upgrade route */
  readonly onRequest: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
}

export function capConnections (max: number): ConnectionCap {
  let held = 0
  // One listener shared by every socket (a socket closes once), not a closure per connection.
  function release (): void {
    held--
  }

  async function onRequest (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // A plain GET of the route (keep-alive HTTP) holds no WebSocket.
    if (!request.ws) return
    const socket = request.raw.socket as typeof request.raw.socket | null | undefined
    // An in-process upgrade (`fastify.injectWS`) has no TCP socket and uses no descriptor.
    // A socket already closed will not report it again; its upgrade fails on its own.
    if (socket === null || socket === undefined || socket.closed) return
    if (held < max) {
      held++
      socket.on('close', release)
      return
    }
    request.log.info({ maxConnections: max }, 'channels: upgrade refused: maxConnections reached')
    await reply.code(503).send({
      statusCode: 503,
      code: tooManyConnectionsCode,
      error: 'Service Unavailable',
      message: `this server holds its maximum of ${max} WebSocket connections; retry later`
    })
  }

  return { onRequest }
}
