// @ts-check
// One node of the reconnect-storm bench (bench/storm/run.js): fastify-channels from dist/ on a
// Redis broker, history and presence on the `room-*` channels, the heartbeat on. Started by the
// runner as a child process (lib/rpc.js) and driven over IPC:
//
//   start     { port, prefix, drainMs, heartbeat }: listens on 127.0.0.1:port (0: a free one)
//   publish   { rooms, rate }: publishes `rate` messages/s round robin over room-0..room-(rooms-1),
//             each { seq, t }: seq counts the room's publications from 1, t is the shared clock
//   stopPublishing: stops, returns every room's last seq and how many publications failed
//   phase     { name }: starts a new measurement phase (event-loop delay, peak RSS, CPU)
//   stats     the phases so far and the sockets held
//   close     fastify.close(), timed; counts what reached the node while it was closing
//
// Clients track their presence with a `track` message ({ key }, no id) after every subscribed.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Fastify from 'fastify'
import { serve } from '../lib/rpc.js'
import { now } from '../lib/clock.js'
import { channelsEntry } from '../lib/variants.js'

const mod = await import(channelsEntry().href)
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** @type {any} */
let app = null
/** when fastify.close() began, on the shared clock (0: not closing) */
let closingAt = 0
/** what reached this node after its close began */
const whileClosing = { connects: 0, refusedUpgrades: 0 }
/** when each socket's disconnect and finish handlers ran, ms after the close began */
const closeTimes = { disconnect: /** @type {number[]} */ ([]), finish: /** @type {number[]} */ ([]) }

// ---- phases: event-loop delay, peak RSS and CPU of this node between two `phase` calls ----------

const loopDelay = monitorEventLoopDelay({ resolution: 2 })
loopDelay.enable()
/** @type {Array<Record<string, any>>} */
const phases = []
/** @type {{ name: string, startedAt: number, cpu: NodeJS.CpuUsage, peakRss: number }} */
let current = { name: 'start', startedAt: now(), cpu: process.cpuUsage(), peakRss: process.memoryUsage.rss() }
const rssTimer = setInterval(() => { current.peakRss = Math.max(current.peakRss, process.memoryUsage.rss()) }, 100)
rssTimer.unref()

function endPhase () {
  const cpu = process.cpuUsage(current.cpu)
  phases.push({
    name: current.name,
    ms: now() - current.startedAt,
    cpuMs: (cpu.user + cpu.system) / 1000,
    peakRssMb: Math.max(current.peakRss, process.memoryUsage.rss()) / 1048576,
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loopDelayMaxMs: loopDelay.max / 1e6,
    sockets: app?.channels.stats().sockets ?? 0
  })
}

// ---- the publisher -----------------------------------------------------------------------------

let publishing = false
/** @type {number[]} */
let seqs = []
let failures = 0

/** @param {{ rooms: number, rate: number }} args */
async function publishLoop ({ rooms, rate }) {
  seqs = new Array(rooms).fill(0)
  const interval = 1000 / rate
  const t0 = now()
  for (let i = 0; ; i++) {
    const wait = t0 + i * interval - now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    if (!publishing) break // set by stopPublishing, between two turns
    const room = i % rooms
    const seq = ++seqs[room]
    // Not awaited one by one: the schedule holds while Redis is busy. A failure is logged by the
    // plugin and the publication is never delivered (the clients then count it lost).
    app.broadcastChannel(`room-${room}`, { seq, t: now() }, { event: 'tick' }).catch(() => { failures++ })
  }
}

serve({
  /** @param {{ port: number, prefix: string, drainMs: number, heartbeat: number | false }} args */
  async start ({ port, prefix, drainMs, heartbeat }) {
    // A node restarted in the middle of a storm on a loaded machine may take more than
    // Fastify's default 10 s to reach Redis: it still starts.
    app = Fastify({ logger: { level: 'warn' }, pluginTimeout: 120_000 })
    await app.register(mod.default, {
      client: false,
      heartbeat,
      drainMs,
      history: { channel: /^room-/ },
      presence: /^room-/,
      broker: mod.redisBroker({ url: redisUrl, prefix })
    })
    app.channels.on('message', { event: 'track' }, async (/** @type {any} */ socket, /** @type {any} */ data, /** @type {any} */ meta) => {
      await socket.track(meta.channel, String(data.key))
    })
    app.channels.on('connect', () => { if (closingAt !== 0) whileClosing.connects++ })
    app.channels.on('disconnect', () => { if (closingAt !== 0) closeTimes.disconnect.push(now() - closingAt) })
    app.channels.on('finish', () => { if (closingAt !== 0) closeTimes.finish.push(now() - closingAt) })
    app.addHook('onResponse', async (/** @type {any} */ request, /** @type {any} */ reply) => {
      if (closingAt !== 0 && request.raw.upgrade === true && reply.statusCode !== 101) whileClosing.refusedUpgrades++
    })
    await app.listen({ host: '127.0.0.1', port })
    return { port: app.server.address().port, pid: process.pid }
  },

  /** @param {{ rooms: number, rate: number }} args */
  publish (args) {
    publishing = true
    publishLoop(args).catch((err) => { console.error(err) })
    return true
  },

  async stopPublishing () {
    publishing = false
    await new Promise((resolve) => setTimeout(resolve, 50))
    return { seqs, failures }
  },

  /** @param {{ name: string }} args */
  phase ({ name }) {
    endPhase()
    loopDelay.reset()
    current = { name, startedAt: now(), cpu: process.cpuUsage(), peakRss: process.memoryUsage.rss() }
    return true
  },

  stats () {
    return { phases, sockets: app?.channels.stats().sockets ?? 0 }
  },

  async close () {
    closingAt = now()
    await app.close()
    endPhase()
    /** @param {number[]} times */
    const summary = (times) => {
      const sorted = times.sort((x, y) => x - y)
      return { count: sorted.length, first: sorted[0], p50: sorted[sorted.length >> 1], last: sorted.at(-1) }
    }
    return { closingAt, closedAt: now(), whileClosing, phases, disconnects: summary(closeTimes.disconnect), finishes: summary(closeTimes.finish) }
  }
})
