// @ts-check
// Variant (c): Socket.IO 4 with rooms, attached to a Fastify server the way fastify-socket.io
// does it. WebSocket transport only (no long-polling), so the comparison is socket to socket.
// Clients join with emit('subscribe', channel, ack); a broadcast is io.to(channel).emit(event, data)
// (Socket.IO encodes the packet once per broadcast and writes it to every member of the room).
import Fastify from 'fastify'
import { Server } from 'socket.io'
import { listenOnFreePort } from '../lib/listen.js'

/** @param {{ host: string }} opts */
export async function start (opts) {
  const app = Fastify({ logger: false })
  const io = new Server(app.server, { transports: ['websocket'], serveClient: false })

  io.on('connection', (socket) => {
    socket.on('subscribe', (channel, ack) => {
      if (typeof channel !== 'string') return
      socket.join(channel)
      if (typeof ack === 'function') ack({ channel })
    })
    socket.on('unsubscribe', (channel, ack) => {
      if (typeof channel !== 'string') return
      socket.leave(channel)
      if (typeof ack === 'function') ack({ channel })
    })
  })

  // The density case measures HTTP latency on this route while the sockets connect.
  app.get('/ping', async () => 'pong')

  const port = await listenOnFreePort(app, opts.host)

  return {
    port,
    path: '/',
    /** @param {string} channel @param {string} event @param {unknown} data */
    broadcast (channel, event, data) {
      io.to(channel).emit(event, data)
    },
    connections: () => io.engine.clientsCount,
    close: async () => {
      await new Promise((resolve) => io.close(() => resolve(undefined)))
      await app.close().catch(() => {})
    }
  }
}
