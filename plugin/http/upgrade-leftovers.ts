/**
 * What an open connection keeps of its upgrade: only what a handler can reach through
 * `socket.request` (the Fastify request: headers, query, params, ip, id, log, the raw
 * IncomingMessage and whatever the app's hooks decorated it with).
 *
 * @fastify/websocket leaves three things behind for as long as the socket lives, none of which
 * a channels handler can reach:
 * - the upgrade's ServerResponse (Fastify's `reply.raw`), assigned to the TCP socket so that a
 *   hook could have answered over HTTP; after the 101 it is dead weight, and it holds the request;
 * - the Fastify reply, held by the socket's per-connection 'error' closure together with the request;
 * - the upgrade head Buffer on the IncomingMessage: a slice that pins the whole socket read
 *   (the request line and every header, about 4 KB outside the heap with 4 KB of headers).
 * Freeing them takes about 1 KB of heap and the read buffer per idle connection
 * (bench/README.md, "Density").
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type WebSocket from 'ws'

/** The upgrade's ServerResponse, from the route's onRequest hook until the socket is open. */
const upgradeResponses = new WeakMap<IncomingMessage, ServerResponse>()

/** The upgrade route's `onRequest` hook: remembers the response to release later. */
export async function rememberUpgradeResponse (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.ws) upgradeResponses.set(request.raw, reply.raw)
}

type SocketErrorHandler = (error: Error, socket: WebSocket, request: FastifyRequest) => void

/** @fastify/websocket's symbol for the upgrade head on the IncomingMessage, once seen. */
let headSymbol: symbol | undefined

/**
 * Called from the route handler, right after @fastify/websocket called it with the open socket.
 * `ownErrorHandler` is the plugin's own handler when the plugin registered @fastify/websocket
 * itself; with an app's own registration its error handler (which gets the reply) is kept.
 */
export function releaseUpgradeLeftovers (ws: WebSocket, request: FastifyRequest, ownErrorHandler: SocketErrorHandler | undefined): void {
  const raw = request.raw
  const response = upgradeResponses.get(raw)
  upgradeResponses.delete(raw)
  // The TCP socket points back at the response (`assignSocket`); the 101 went out through ws.
  if (response !== undefined && raw.socket !== null && response.socket === raw.socket) {
    response.detachSocket(raw.socket)
  }
  // The head was handed to ws (unshifted onto the socket) before the handler ran. The symbol is
  // private to @fastify/websocket: found by its description (once: it is one module-level
  // symbol), and nothing happens if it changes.
  headSymbol ??= Object.getOwnPropertySymbols(raw).find((key) => key.description === 'ws-head')
  if (headSymbol !== undefined && Reflect.get(raw, headSymbol) !== undefined) Reflect.set(raw, headSymbol, undefined)
  if (ownErrorHandler !== undefined) {
    // @fastify/websocket added its 'error' listener (a closure over request AND reply) just
    // before calling the route handler, so it is the last one. Ours calls the same handler
    // without the reply.
    const listeners = ws.listeners('error')
    const last = listeners[listeners.length - 1]
    if (last !== undefined) ws.removeListener('error', last as (...args: unknown[]) => void)
    ws.on('error', (error: Error) => ownErrorHandler(error, ws, request))
  }
}
