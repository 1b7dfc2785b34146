// @ts-check
// The server of the volatile case: variant (a) with `slow` subscribers that stopped reading.
// They are ws clients in this same process, paused right after their welcome: what they do not
// read stays in the kernel, so what grows in this process is the server's queue for them.
//
// Runner commands: start({ maxBufferedBytes }) → { port }; flood({ volatile, slow, count, size }):
// connects `slow` fresh stalled subscribers, broadcasts `count` payloads of `size` bytes, one
// per event-loop turn (a stream of cursor positions, not one burst), with or without
// `{ volatile: true }`, sampling the process's Buffer memory (external + arrayBuffers, after a
// full GC: what is held, every 5 broadcasts) as it goes; then cuts the subscribers off. Returns the peak growth over the memory before the flood,
// the growth at its end, and how many subscribers the server closed as slow consumers (1013).
import WebSocket from 'ws'
import { serve } from '../lib/rpc.js'
import { channelsEntry } from '../lib/variants.js'

const turn = () => new Promise((resolve) => setImmediate(resolve))
/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const bufferBytes = () => { const m = process.memoryUsage(); return m.external + m.arrayBuffers }
const gc = /** @type {(() => void) | undefined} */ (globalThis.gc)

/** @type {any} */
let app
let url = ''
let closedSlow = 0

/** A subscriber that stops reading once welcomed. @returns {Promise<WebSocket>} */
function stalled () {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.on('error', () => {})
    ws.once('message', () => { ws.pause(); resolve(ws) })
    ws.once('close', () => reject(new Error('closed before its welcome')))
  })
}

serve({
  async start (/** @type {{ maxBufferedBytes: number }} */ { maxBufferedBytes }) {
    const { default: fastifyChannels } = await import(channelsEntry().href)
    const { default: Fastify } = await import('fastify')
    app = Fastify({ logger: false })
    await app.register(fastifyChannels, { path: '/ws', client: false, rateLimit: false, heartbeat: false, compression: false, maxBufferedBytes })
    app.channels.on('disconnect', (/** @type {unknown} */ _socket, /** @type {{ code: number }} */ info) => { if (info.code === 1013) closedSlow++ })
    await app.listen({ host: '127.0.0.1', port: 0 })
    url = `ws://127.0.0.1:${app.server.address().port}/ws`
    return { port: app.server.address().port }
  },
  async flood (/** @type {{ volatile: boolean, slow: number, count: number, size: number }} */ { volatile, slow, count, size }) {
    const clients = await Promise.all(Array.from({ length: slow }, stalled))
    closedSlow = 0
    gc?.()
    const before = bufferBytes()
    let peak = 0
    const payload = 'x'.repeat(size)
    for (let i = 0; i < count; i++) {
      await app.broadcast(payload, volatile ? { volatile: true } : {})
      if (i % 5 === 4) {
        gc?.() // what is held, not garbage not yet collected
        peak = Math.max(peak, bufferBytes() - before)
      }
      await turn()
    }
    gc?.()
    const end = bufferBytes() - before
    peak = Math.max(peak, end)
    const closed = closedSlow
    for (const ws of clients) ws.terminate()
    await sleep(200)
    gc?.()
    return { peakMB: peak / 2 ** 20, endMB: end / 2 ** 20, closed }
  }
})
