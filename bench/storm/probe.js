// @ts-check
// The latency probe of the reconnect-storm bench (bench/storm/run.js): a few plain WebSockets,
// straight to node B (no balancer), that subscribe to every room between them and time each
// `tick` from its publication (the shared clock) to its arrival here. The load clients time
// their ticks too, but they run their event loops at full CPU during a storm, so their figures
// hold their own wait as much as node B's; this process does almost nothing and reads at once.
// Driven over IPC (lib/rpc.js):
//
//   connect   { url, rooms, sockets }: opens `sockets` sockets; socket i subscribes to the rooms
//             r with r % sockets === i, and resolves once every one has answered `subscribed`
//   phase     { name }: the phase the next samples belong to
//   finish    the samples per phase (ms), and how many sockets closed on their own
import WebSocket from 'ws'
import { serve } from '../lib/rpc.js'
import { now } from '../lib/clock.js'

let phase = 'fill'
/** @type {Record<string, number[]>} */
const samples = {}
/** @type {WebSocket[]} */
const sockets = []
let closed = 0

/**
 * @param {string} url
 * @param {string[]} rooms
 * @returns {Promise<void>} once every room has answered `subscribed`
 */
function open (url, rooms) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    sockets.push(ws)
    let waiting = rooms.length
    ws.on('open', () => {
      for (const [i, channel] of rooms.entries()) ws.send(JSON.stringify({ type: 'subscribe', channel, id: i + 1 }))
    })
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString())
      if (frame.type === 'message' && frame.event === 'tick') {
        (samples[phase] ??= []).push(now() - frame.data.t)
      } else if (frame.type === 'subscribed' && --waiting === 0) {
        resolve()
      } else if (frame.type === 'error') {
        reject(new Error(`probe: ${data.toString()}`))
      }
    })
    ws.on('error', reject)
    ws.on('close', () => { closed++ })
  })
}

serve({
  /** @param {{ url: string, rooms: number, sockets: number }} args */
  async connect ({ url, rooms, sockets: count }) {
    const opening = []
    for (let i = 0; i < count; i++) {
      const mine = []
      for (let r = i; r < rooms; r += count) mine.push(`room-${r}`)
      opening.push(open(url, mine))
    }
    await Promise.all(opening)
    return true
  },

  /** @param {{ name: string }} args */
  phase ({ name }) {
    phase = name
    return true
  },

  finish () {
    const closedByServer = closed
    for (const ws of sockets) ws.terminate()
    return { samples, closed: closedByServer }
  }
})
