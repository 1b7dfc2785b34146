// @ts-check
// Entry of a server child process: `node --expose-gc bench/servers/main.js <variant>`.
// Loads the variant module and answers the runner's commands over IPC (see lib/rpc.js).
// The same command code drives all variants, so they are measured the same way.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { serve } from '../lib/rpc.js'
import { now } from '../lib/clock.js'
import { makePayload } from '../lib/payload.js'

const variant = process.argv[2]
const modules = {
  channels: () => import('./channels.js'),
  handwritten: () => import('./handwritten.js'),
  socketio: () => import('./socketio.js')
}

/** @type {{ port: number, path: string, broadcast: (channel: string, event: string, data: unknown) => unknown, connections: () => number, close: () => Promise<unknown> } | null} */
let server = null
let cpuMark = process.cpuUsage()
// Event-loop delay since the last mark: shows a server-side stall.
const loopDelay = monitorEventLoopDelay({ resolution: 5 })
loopDelay.enable()

// Inbound case bookkeeping: the handler calls onInbound(); inboundWait resolves at `expected`.
let inboundCount = 0
let inboundExpected = Infinity
let inboundLastT = 0
/** @type {(() => void) | null} */
let inboundDone = null
function onInbound () {
  if (++inboundCount === inboundExpected) {
    inboundLastT = now()
    inboundDone?.()
  }
}

function markCpu () { cpuMark = process.cpuUsage(); loopDelay.reset() }
function cpuSinceMark () {
  const d = process.cpuUsage(cpuMark)
  return { cpuUserMs: d.user / 1000, cpuSystemMs: d.system / 1000, cpuMs: (d.user + d.system) / 1000, loopDelayMaxMs: loopDelay.max / 1e6 }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function requireServer () {
  if (!server) throw new Error('server not started')
  return server
}

async function fullGc () {
  if (typeof global.gc !== 'function') throw new Error('run the server with --expose-gc')
  // Several passes with turns of the event loop in between, so that weak callbacks and
  // finalizers (closed sockets, buffers) run and their memory is released.
  for (let i = 0; i < 4; i++) {
    global.gc()
    await sleep(50)
  }
}

serve({
  /** @param {{ inbound?: 'schema' | 'plain' }} args */
  async start (args) {
    const load = modules[/** @type {keyof typeof modules} */ (variant)]
    if (!load) throw new Error(`unknown variant ${variant}`)
    const mod = await load()
    server = await mod.start({ host: '127.0.0.1', inbound: args.inbound, onInbound })
    return { port: server.port, path: server.path, pid: process.pid }
  },

  connections () {
    return requireServer().connections()
  },

  /**
   * Broadcasts `count` payloads of `size` bytes back to back. Payloads are built before the
   * clock starts. A broadcast that returns a Promise (fastify-channels) is not awaited one by
   * one: all are started in the same loop, as the other variants do, and awaited together.
   * @param {{ channel: string, event: string, count: number, size: number }} args
   */
  async burst ({ channel, event, count, size }) {
    const s = requireServer()
    const payloads = Array.from({ length: count }, (_, i) => makePayload(i, 0, size))
    markCpu()
    const t0 = now()
    /** @type {unknown[]} */
    const pending = []
    for (let i = 0; i < count; i++) {
      const r = s.broadcast(channel, event, payloads[i])
      if (r && typeof (/** @type {any} */ (r).then) === 'function') pending.push(r)
    }
    const tLoop = now()
    if (pending.length) await Promise.all(pending)
    return { t0, tLoop, tSettled: now() }
  },

  /**
   * Broadcasts `count` payloads at `rate` per second on an absolute schedule (no drift);
   * each payload carries its send time in `t`.
   * @param {{ channel: string, event: string, count: number, size: number, rate: number }} args
   */
  async paced ({ channel, event, count, size, rate }) {
    const s = requireServer()
    const interval = 1000 / rate
    markCpu()
    const t0 = now()
    /** @type {unknown[]} */
    const pending = []
    let late = 0
    for (let i = 0; i < count; i++) {
      const due = t0 + i * interval
      const wait = due - now()
      if (wait > 1) await sleep(wait)
      else if (wait < -interval) late++
      const r = s.broadcast(channel, event, makePayload(i, now(), size))
      if (r && typeof (/** @type {any} */ (r).then) === 'function') pending.push(r)
    }
    await Promise.all(pending)
    return { t0, tEnd: now(), late }
  },

  cpu () {
    return cpuSinceMark()
  },

  /** Starts a CPU (and event-loop delay) measurement: `cpu` reports what was used since. */
  mark () {
    markCpu()
    return true
  },

  /** Heap and RSS after full GC. */
  async memory () {
    await fullGc()
    const m = process.memoryUsage()
    return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers }
  },

  /** @param {{ expected: number }} args */
  inboundArm ({ expected }) {
    inboundCount = 0
    inboundExpected = expected
    inboundLastT = 0
    inboundDone = null
    markCpu()
    return true
  },

  /** @param {{ timeoutMs: number }} args */
  async inboundWait ({ timeoutMs }) {
    if (inboundCount < inboundExpected) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, timeoutMs)
        inboundDone = () => { clearTimeout(timer); resolve(undefined) }
      })
    }
    return { count: inboundCount, expected: inboundExpected, lastT: inboundLastT, ...cpuSinceMark() }
  },

  async stop () {
    if (server) await Promise.race([server.close(), sleep(3000)])
    setImmediate(() => process.exit(0))
    return true
  }
})
