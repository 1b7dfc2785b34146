// @ts-check
// Entry of the load-client child process: `node bench/clients/main.js`.
// The same code drives every variant; only the connection module differs
// (frames.js for (a)/(b), socketio.js for (c)). It counts deliveries per connection and
// records when the last connection got its last message, on the clock shared with the server.
import { serve } from '../lib/rpc.js'
import { now } from '../lib/clock.js'
import { percentile } from '../lib/stats.js'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import * as frames from './frames.js'
import * as socketio from './socketio.js'

const kinds = { frames, socketio }

/** @type {typeof frames | typeof socketio} */
let kind = frames
/** @type {import('./frames.js').Conn[]} */
const conns = []
let closing = false
let unexpectedCloses = 0
/** @type {string[]} */
const closeSamples = []

// Round state.
let mode = /** @type {'count' | 'latency'} */ ('count')
let perSocket = 0
let socketsDone = 0
let badLast = 0
let extra = 0
let unexpected = 0
let tLast = 0
/** @type {Float64Array} */
let latencies = new Float64Array(0)
let latCount = 0
/** Worst latency per payload sequence number: shows whether a spike hit one tick or many. */
let maxBySeq = new Float64Array(0)
/** @type {(() => void) | null} */
let roundDone = null
let cpuMark = process.cpuUsage()
// Event-loop delay of this process over a round: a long stall here shows up as latency.
const loopDelay = monitorEventLoopDelay({ resolution: 5 })
loopDelay.enable()

/** @param {import('./frames.js').Conn} conn @param {any} msg */
function onTick (conn, msg) {
  if (mode === 'count') {
    const n = ++conn.n
    if (n === perSocket) {
      // Check the last delivery only (cheap): it must be the last payload, so none was lost
      // or reordered at the tail.
      const data = kind.decodeTick(msg)
      if (!data || data.seq !== perSocket - 1) badLast++
      if (++socketsDone === conns.length) finish()
    } else if (n > perSocket) extra++
    return
  }
  const data = kind.decodeTick(msg)
  if (!data) { unexpected++; return }
  const lat = now() - data.t
  if (latCount < latencies.length) latencies[latCount++] = lat
  if (data.seq < maxBySeq.length && lat > maxBySeq[data.seq]) maxBySeq[data.seq] = lat
  if (++conn.n === perSocket && ++socketsDone === conns.length) finish()
}

function finish () {
  tLast = now()
  roundDone?.()
}

/** @param {import('./frames.js').Conn} _conn @param {number} code @param {string} reason */
function onClose (_conn, code, reason) {
  if (closing) return
  unexpectedCloses++
  if (closeSamples.length < 5) closeSamples.push(`${code} ${reason}`.trim())
}

serve({
  /**
   * Opens `n` more connections, each subscribed to `channel`, `concurrency` at a time, from
   * `localAddress` (127.0.0.x: each source address has its own ephemeral ports) and with an
   * `x-bench-pad` header of `headerBytes` bytes.
   * @param {{ kind: 'frames' | 'socketio', url: string, n: number, channel: string, concurrency?: number, timeoutMs?: number, localAddress?: string, headerBytes?: number }} args
   */
  async connect (args) {
    kind = kinds[args.kind]
    if (!kind) throw new Error(`unknown client kind ${args.kind}`)
    const t0 = now()
    const headers = args.headerBytes ? { 'x-bench-pad': 'x'.repeat(args.headerBytes) } : undefined
    let started = 0
    const worker = async () => {
      while (started < args.n) {
        started++
        conns.push(await kind.connectOne({ url: args.url, channel: args.channel, timeoutMs: args.timeoutMs ?? 10000, localAddress: args.localAddress, headers, onTick, onClose }))
      }
    }
    await Promise.all(Array.from({ length: Math.min(args.n, args.concurrency ?? 100) }, worker))
    return { total: conns.length, ms: now() - t0 }
  },

  /**
   * Prepares a round: every connection expects `perSocket` deliveries.
   * @param {{ mode: 'count' | 'latency', perSocket: number }} args
   */
  arm (args) {
    mode = args.mode
    perSocket = args.perSocket
    socketsDone = 0
    badLast = 0
    extra = 0
    unexpected = 0
    tLast = 0
    roundDone = null
    for (const c of conns) c.n = 0
    cpuMark = process.cpuUsage()
    loopDelay.reset()
    latCount = 0
    latencies = mode === 'latency' ? new Float64Array(conns.length * perSocket) : new Float64Array(0)
    maxBySeq = new Float64Array(mode === 'latency' ? perSocket : 0)
    return true
  },

  /**
   * Resolves when every connection got its deliveries, or at the timeout (complete: false).
   * With `raw`, the latency samples themselves come back too (to merge several client processes).
   */
  async wait (/** @type {{ timeoutMs: number, raw?: boolean }} */ { timeoutMs, raw }) {
    if (socketsDone < conns.length) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, timeoutMs)
        roundDone = () => { clearTimeout(timer); resolve(undefined) }
      })
    }
    const cpu = process.cpuUsage(cpuMark)
    let delivered = 0
    for (const c of conns) delivered += Math.min(c.n, perSocket)
    /** @type {{ count: number, p50: number, p90: number, p99: number, max: number, mean: number, worstTicks: number[][] } | null} */
    let latency = null
    if (mode === 'latency' && latCount > 0) {
      const sorted = latencies.subarray(0, latCount).sort()
      let sum = 0
      for (const v of sorted) sum += v
      latency = {
        count: latCount,
        p50: percentile(sorted, 50),
        p90: percentile(sorted, 90),
        p99: percentile(sorted, 99),
        max: sorted[sorted.length - 1],
        mean: sum / latCount,
        // The 3 worst ticks as [seq, ms]: one spike vs a steady tail.
        worstTicks: [...maxBySeq.entries()].sort((x, y) => y[1] - x[1]).slice(0, 3).map(([seq, ms]) => [seq, Math.round(ms * 100) / 100])
      }
    }
    return {
      complete: socketsDone === conns.length,
      sockets: conns.length,
      socketsDone,
      delivered,
      expected: conns.length * perSocket,
      tLast,
      badLast,
      extra,
      unexpected,
      unexpectedCloses,
      closeSamples,
      latency,
      ...(raw ? { samples: Array.from(latencies.subarray(0, latCount)) } : {}),
      cpuMs: (cpu.user + cpu.system) / 1000,
      loopDelayMaxMs: loopDelay.max / 1e6
    }
  },

  /**
   * Inbound case: every connection writes `perSocket` copies of `frame` at once.
   * @param {{ frame: string, perSocket: number }} args
   */
  blast ({ frame, perSocket }) {
    const buf = frames.encodeFrames(frame, perSocket)
    const tStart = now()
    for (const c of conns) c.sendRaw(buf)
    return { tStart, tWritten: now(), bytesPerSocket: buf.length }
  },

  memory () {
    const m = process.memoryUsage()
    return { heapUsed: m.heapUsed, rss: m.rss }
  },

  async close () {
    closing = true
    for (const c of conns) c.close()
    conns.length = 0
    return true
  }
})
