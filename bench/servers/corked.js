// @ts-check
// The "one frame, corked" limit: what a fan-out cannot beat. The hand-written ws server with
// the two tricks the plugin uses and nothing else: one WebSocket frame built per message (ws's
// Sender.frame) and written as the same Buffer to every socket, each socket corked for the
// turn and uncorked once (one writev). No validation, no limits, no protocol beyond subscribe.
import fastifyWebsocket from '@fastify/websocket'
import WebSocket from 'ws'

const { Sender } = /** @type {any} */ (WebSocket)
const textFrame = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false }

/**
 * Mounts the limit server's route on `app` (path /ws) and returns its publish function.
 * @param {any} app
 */
export async function mount (app) {
  await app.register(fastifyWebsocket)
  /** @type {Set<any>} */
  const members = new Set()
  app.get('/ws', { websocket: true }, (/** @type {any} */ ws) => {
    ws.send('{"type":"welcome","sessionId":"x","protocol":1}')
    ws.on('message', (/** @type {Buffer} */ data) => {
      const frame = JSON.parse(data.toString())
      if (frame.type === 'subscribe') {
        members.add(ws)
        ws.send(JSON.stringify({ type: 'subscribed', channel: frame.channel, id: frame.id }))
      }
    })
    ws.on('close', () => { members.delete(ws) })
  })
  /** @type {any[]} */
  let corked = []
  const flush = () => {
    const sockets = corked
    corked = []
    for (const socket of sockets) socket.uncork()
  }
  return (/** @type {unknown} */ data) => {
    const [header, payload] = Sender.frame(Buffer.from(JSON.stringify({ type: 'message', event: 'tick', channel: 'bench', data })), textFrame)
    const bytes = Buffer.concat([header, payload])
    for (const ws of members) {
      const socket = ws._socket
      if (socket.writableCorked === 0) {
        socket.cork()
        if (corked.length === 0) setImmediate(flush)
        corked.push(socket)
      }
      socket.write(bytes)
    }
  }
}
