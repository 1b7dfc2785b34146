// @ts-check
// The heartbeat bench's server (bench/heartbeat/run.js): fastify-channels with its heartbeat on,
// from the build named on the command line (argv[2]: a dist/plugin/index.js; default this
// repository's). Driven over IPC (lib/rpc.js): start { heartbeat }, paced { count, rate } (that
// many broadcasts to channel `probe`, each carrying its send time), mark / delay (this process's
// event-loop delay since the mark, and its longest `setImmediate` callbacks: the heartbeat runs
// each tick in one, so the longest of them is what one tick costs).
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import { serve } from '../lib/rpc.js'
import { now } from '../lib/clock.js'
import { channelsEntry } from '../lib/variants.js'
import { listenOnFreePort } from '../lib/listen.js'

// Every setImmediate callback is timed (CPU time: what it took, not how long the machine kept
// the process waiting). Installed before the plugin is loaded.
/** @type {number[]} */
let immediates = []
const originalSetImmediate = globalThis.setImmediate
globalThis.setImmediate = /** @type {any} */ function (/** @type {(...args: any[]) => void} */ fn, /** @type {any[]} */ ...args) {
  return originalSetImmediate(() => {
    const before = process.cpuUsage()
    fn(...args)
    const used = process.cpuUsage(before)
    const ms = (used.user + used.system) / 1000
    if (ms >= 0.5) immediates.push(ms)
  })
}

const entry = process.argv[2] ? pathToFileURL(process.argv[2]) : channelsEntry()
const mod = await import(entry.href)
/** @type {any} */
let app = null
const loopDelay = monitorEventLoopDelay({ resolution: 1 })
loopDelay.enable()

serve({
  /** @param {{ heartbeat: number }} args */
  async start ({ heartbeat }) {
    app = Fastify({ logger: false })
    await app.register(mod.default, { client: false, rateLimit: false, heartbeat })
    const port = await listenOnFreePort(app, '127.0.0.1')
    return { port, path: '/ws' }
  },

  connections () {
    return app.channels.stats().sockets
  },

  mark () {
    loopDelay.reset()
    immediates = []
    return true
  },

  delay () {
    const longest = immediates.sort((x, y) => y - x)
    return { p99Ms: loopDelay.percentile(99) / 1e6, maxMs: loopDelay.max / 1e6, longestImmediateMs: longest[0] ?? 0, immediatesOver5Ms: longest.filter((ms) => ms > 5).length }
  },

  /** @param {{ count: number, rate: number }} args */
  async paced ({ count, rate }) {
    const t0 = now()
    for (let i = 0; i < count; i++) {
      const wait = t0 + (i * 1000) / rate - now()
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
      app.broadcastChannel('probe', { seq: i, t: now(), pad: '' }, { event: 'tick' })
    }
    return true
  }
})
