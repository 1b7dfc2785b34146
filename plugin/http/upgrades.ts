/**
 * Upgrade requests that never became WebSockets must not outlive their HTTP answer. Node hands
 * an upgrade socket over raw: nobody reads it, so a peer's FIN goes unseen and the socket keeps
 * `server.close()` waiting forever. This module ends such sockets: at once when a hook answered
 * over HTTP (401, 404...), and from `fastify.close()` on for any still pending or arriving (e.g.
 * Fastify's 503 to an upgrade that arrives while closing, which runs no hook at all). It also
 * holds each upgrade's writes for the rest of the turn (`corkForThisTurn`).
 *
 * While an upgrade waits in the app's hooks (an auth lookup, say) its socket is watched for the
 * peer's FIN without reading any data (`watchForEnd`): a client that gives up closes its socket
 * and the server drops it at once, with the request the hook holds, even when the hook never
 * settles. Bytes a client sends before its 101 (none does: it must wait for it) are left for ws;
 * such a socket is ended on `fastify.close()` as before.
 */
import type { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type WebSocket from 'ws'

type RawSocket = Duplex & { destroySoon?: () => void }

function end (socket: RawSocket): void {
  if (socket.destroyed) return
  // destroySoon flushes the HTTP answer first; streams without it (injectWS) are destroyed.
  if (typeof socket.destroySoon === 'function') socket.destroySoon()
  else socket.destroy()
}

/** Upgrade sockets corked in this event-loop turn, and whether their uncork is scheduled. */
let corked: RawSocket[] = []
let uncorkScheduled = false

function uncorkAll (): void {
  const sockets = corked
  corked = []
  uncorkScheduled = false
  for (const socket of sockets) socket.uncork()
}

/**
 * Holds the upgrade socket's writes until the end of this event-loop turn, so that ws's
 * `101 Switching Protocols` and the `welcome` frame the route handler writes right behind it
 * leave in one `writev` instead of two writes (a syscall is a good part of what a connection
 * costs). An answer over HTTP is not held back: `end()` uncorks. When an app's hook makes the
 * upgrade wait for I/O, the uncork simply comes first and nothing is held.
 */
function corkForThisTurn (socket: RawSocket): void {
  if (typeof socket.cork !== 'function') return
  socket.cork()
  corked.push(socket)
  if (!uncorkScheduled) {
    uncorkScheduled = true
    setImmediate(uncorkAll)
  }
}

/**
 * 'readable' on a pending upgrade socket: the end of the stream (the peer's FIN) is noticed only
 * when something reads; `read(0)` reads nothing but lets 'end' come when nothing is buffered.
 */
function lookForEnd (this: RawSocket): void {
  if (this.readableLength === 0) this.read(0)
}

/** 'end' on a pending upgrade socket: the client is gone, nobody will answer it. */
function dropEnded (this: RawSocket): void {
  this.destroy()
}

/**
 * Watches a pending upgrade socket for its peer's FIN (see lookForEnd). Only a TCP socket: an
 * in-process upgrade (injectWS) has a stream pair of its own, and the inject client drops it.
 */
function watchForEnd (socket: RawSocket): void {
  if (!(socket instanceof Socket)) return
  socket.on('readable', lookForEnd)
  socket.on('end', dropEnded)
}

/**
 * Stops watching once ws owns the socket: with its 'data' listener there, Node puts the stream
 * back into flowing mode (on the next tick) and ws gets whatever was buffered meanwhile.
 */
function unwatch (socket: RawSocket): void {
  socket.off('readable', lookForEnd)
  socket.off('end', dropEnded)
}

export function endRefusedUpgrades (fastify: FastifyInstance): void {
  const pending = new Set<RawSocket>()
  // The socket each upgrade came on, by its request: `request.socket` is not enough, since
  // @fastify/websocket's injectWS emits a plain request object without one.
  const socketOf = new WeakMap<IncomingMessage, RawSocket>()
  let closing = false

  // One listener shared by every pending socket (not a closure each), taken off again once the
  // socket is a WebSocket: an open connection keeps nothing from its upgrade.
  // Sockets that became WebSockets: weakly held, an open connection keeps nothing here.
  const upgraded = new WeakSet<RawSocket>()

  function forget (this: RawSocket): void {
    pending.delete(this)
  }

  // Registered after @fastify/websocket's own listener, so by now Fastify has answered any
  // upgrade that came in while closing (503) and the socket can be ended behind the answer.
  const onUpgrade = (request: IncomingMessage, socket: RawSocket): void => {
    if (closing) {
      end(socket)
      return
    }
    // A route without asynchronous hooks (an app's own websocket route) is a WebSocket already:
    // Fastify answered it within @fastify/websocket's listener, before this one. Watching it now
    // would stop its reads.
    if (upgraded.has(socket)) return
    pending.add(socket)
    if (request.socket !== socket) socketOf.set(request, socket)
    socket.on('close', forget)
    watchForEnd(socket)
    corkForThisTurn(socket)
  }
  fastify.server.on('upgrade', onUpgrade)
  fastify.websocketServer.on('connection', (_ws: WebSocket, request: IncomingMessage) => {
    const socket = (request.socket as RawSocket | null | undefined) ?? socketOf.get(request)
    if (socket === undefined || socket === null) return
    upgraded.add(socket)
    pending.delete(socket)
    socket.off('close', forget)
    unwatch(socket)
  })

  fastify.addHook('onResponse', async (request) => {
    // Node's flag, not the header: a keep-alive request may carry `Upgrade: h2c` and stay HTTP.
    if ((request.raw as IncomingMessage & { upgrade?: boolean }).upgrade !== true) return
    const socket = request.raw.socket as RawSocket | null
    if (socket !== null) end(socket)
  })

  // preClose, not onClose: Fastify's server.close() runs before plugins' onClose hooks and
  // would wait for these sockets forever.
  fastify.addHook('preClose', async () => {
    closing = true
    for (const socket of pending) end(socket)
    pending.clear()
  })
  fastify.addHook('onClose', async () => {
    fastify.server.off('upgrade', onUpgrade)
  })
}
