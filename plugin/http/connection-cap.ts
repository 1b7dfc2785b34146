/**
 * `maxConnections`: the WebSocket connections one node holds at most, so that one client
 * cannot open sockets until the process runs out of file descriptors (and then every HTTP
 * request of every user is reset). An upgrade past the cap is answered 503 from an `onRequest`
 * hook of the upgrade route, before any WebSocket exists; HTTP routes are not counted.
 *
 * A slot is the upgrade's TCP socket: taken in the hook (synchronously, so concurrent upgrades
 * cannot overshoot) and given back when that socket closes, whatever closed it: the WebSocket
 * ending, a later hook refusing the upgrade, a failed handshake. Nothing else is kept.
 *
 * A node that is closing holds no new connection at all: from `fastify.close()` on, every
 * upgrade that reaches the route is answered 503 at once (`Connection: close`), whatever the
 * cap, so a client (or its load balancer) tries another node instead of being handed a socket
 * that the drain would close again. (Fastify answers most of them 503 itself; this catches the
 * ones already past that check, waiting in the app's own hooks, and every one with
 * `return503OnClosing: false`.)
 */
import type { FastifyReply, FastifyRequest } from 'fastify'

export const tooManyConnectionsCode = 'FST_CHANNELS_TOO_MANY_CONNECTIONS'
export const shuttingDownCode = 'FST_CHANNELS_SHUTTING_DOWN'

export interface ConnectionCap {
  /** the `onRequest` hook of the upgrade route */
  readonly onRequest: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
}

async function unavailable (reply: FastifyReply, code: string, message: string): Promise<void> {
  await reply.code(503).send({ statusCode: 503, code, error: 'Service Unavailable', message })
}

/**
 * `max` is `Infinity` for no cap (nothing is counted then); `closing` tells whether
 * `fastify.close()` has begun.
 */
export function capConnections (max: number, closing: () => boolean): ConnectionCap {
  let held = 0
  // One listener shared by every socket (a socket closes once), not a closure per connection.
  function release (): void {
    held--
  }

  async function onRequest (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // A plain GET of the route (keep-alive HTTP) holds no WebSocket.
    if (!request.ws) return
    if (closing()) {
      request.log.debug('channels: upgrade refused: the server is shutting down')
      reply.header('connection', 'close')
      await unavailable(reply, shuttingDownCode, 'this server is shutting down; reconnect, to another server or later')
      return
    }
    if (max === Infinity) return
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
    await unavailable(reply, tooManyConnectionsCode, `this server holds its maximum of ${max} WebSocket connections; retry later`)
  }

  return { onRequest }
}
