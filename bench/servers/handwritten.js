// @ts-check
// Variant (b): what a user writes by hand with Fastify + @fastify/websocket.
// A Map<channel, Set<WebSocket>>, the same subscribe/unsubscribe frames as fastify-channels,
// and per broadcast ONE JSON.stringify, then socket.send(str) to each subscriber.
// No validation, no acks for messages, no limits: the floor a framework is measured against.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { listenOnFreePort } from '../lib/listen.js'

/** @param {{ host: string }} opts */
export async function start (opts) {
  const app = Fastify({ logger: false })
  await app.register(websocket)

  /** @type {Map<string, Set<import('ws').WebSocket>>} */
  const channels = new Map()

  app.get('/ws', { websocket: true }, (socket) => {
    /** @type {Set<string>} */
    const mine = new Set()
    socket.on('message', (raw, isBinary) => {
      if (isBinary) return
      let frame
      try { frame = JSON.parse(raw.toString()) } catch { return }
      if (frame === null || typeof frame !== 'object' || typeof frame.channel !== 'string') return
      const { type, channel, id } = frame
      if (type === 'subscribe') {
        let set = channels.get(channel)
        if (!set) channels.set(channel, (set = new Set()))
        set.add(socket)
        mine.add(channel)
        socket.send(JSON.stringify({ type: 'subscribed', channel, id }))
      } else if (type === 'unsubscribe') {
        leave(channel)
        socket.send(JSON.stringify({ type: 'unsubscribed', channel, id }))
      }
    })
    socket.on('close', () => { for (const channel of mine) leave(channel) })

    /** @param {string} channel */
    function leave (channel) {
      mine.delete(channel)
      const set = channels.get(channel)
      if (!set) return
      set.delete(socket)
      if (set.size === 0) channels.delete(channel)
    }
  })

  // The density case measures HTTP latency on this route while the sockets connect.
  app.get('/ping', async () => 'pong')

  const port = await listenOnFreePort(app, opts.host)

  return {
    port,
    path: '/ws',
    /** @param {string} channel @param {string} event @param {unknown} data */
    broadcast (channel, event, data) {
      const set = channels.get(channel)
      if (!set) return
      const str = JSON.stringify({ type: 'message', event, channel, data })
      for (const socket of set) socket.send(str)
    },
    connections: () => app.websocketServer.clients.size,
    close: () => app.close()
  }
}
