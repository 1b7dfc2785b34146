// @ts-check
// Case 5, cross-node fan-out through Redis: variant (a) only, two setups measured in the same
// run with their rounds interleaved (as lib/procs.js does for the variants):
//
//   one node   one server (the default in-process broker); N subscribers on it; it broadcasts.
//   two nodes  two servers on one Redis (`redisBroker({ url, prefix })`); the N subscribers on
//              node 2, the broadcasts issued on node 1, so every delivery crosses Redis.
//
// Per setup: a burst round (M payloads back to back, deliveries/s = N*M / time from node 1's
// first broadcast to the last subscriber's last message, on the shared monotonic clock) and a
// paced round (latency p50/p90/p99/max). Reported: both setups' medians and two nodes / one node.
// With BENCH_CROSSNODE_BASELINE=<another build's dist/plugin/index.js> (main's, say), a third
// setup runs in the same interleaved rounds: two nodes of that build on the same Redis, so a
// change to the Redis broker is compared with its baseline under the same machine load.
// Skipped, with the reason, when Redis is not reachable (BENCH_REDIS_URL, default
// redis://127.0.0.1:6379) or the plugin is not built.
//
// This file is also the entry of its server children (`node bench/cases/crossnode.js server`):
// bench/servers/ starts variant (a) without a broker, so the case brings its own small server.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { serve } from '../lib/rpc.js'
import { now } from '../lib/clock.js'
import { makePayload } from '../lib/payload.js'
import { burstRound, openChildren, ratio, redisCaseReady } from '../lib/redis-case.js'
import { medianOfRounds } from '../lib/stats.js'
import { channelsEntry } from '../lib/variants.js'

const self = fileURLToPath(import.meta.url)
const clientScript = fileURLToPath(new URL('../clients/main.js', import.meta.url))
const channel = 'bench'
const event = 'tick'

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---- the server child ------------------------------------------------------------------

async function runServer () {
  /** @type {any} */
  let app = null
  let cpuMark = process.cpuUsage()
  const requireApp = () => {
    if (!app) throw new Error('server not started')
    return app
  }
  serve({
    /** @param {{ redisUrl?: string, prefix?: string, entry?: string }} args */
    async start ({ redisUrl, prefix, entry }) {
      const { default: fastifyChannels, redisBroker } = await import(entry ?? channelsEntry().href)
      const { default: Fastify } = await import('fastify')
      app = Fastify({ logger: false })
      const broker = redisUrl ? redisBroker({ url: redisUrl, prefix }) : undefined
      await app.register(fastifyChannels, { path: '/ws', client: false, rateLimit: false, heartbeat: false, broker })
      await app.listen({ host: '127.0.0.1', port: 0 })
      return { port: app.server.address().port, path: '/ws' }
    },
    connections: () => requireApp().channels.stats().sockets,
    markCpu () {
      cpuMark = process.cpuUsage()
      return true
    },
    cpu () {
      const d = process.cpuUsage(cpuMark)
      return { cpuMs: (d.user + d.system) / 1000 }
    },
    /** Same as bench/servers/main.js: payloads built first, all broadcasts started in one loop. */
    async burst (/** @type {{ count: number, size: number }} */ { count, size }) {
      const a = requireApp()
      const payloads = Array.from({ length: count }, (_, i) => makePayload(i, 0, size))
      cpuMark = process.cpuUsage()
      const t0 = now()
      const pending = []
      for (let i = 0; i < count; i++) pending.push(a.broadcastChannel(channel, payloads[i], { event }))
      await Promise.all(pending)
      return { t0 }
    },
    /** `count` broadcasts at `rate` per second on an absolute schedule, each carrying its send time. */
    async paced (/** @type {{ count: number, size: number, rate: number }} */ { count, size, rate }) {
      const a = requireApp()
      const interval = 1000 / rate
      cpuMark = process.cpuUsage()
      const t0 = now()
      const pending = []
      for (let i = 0; i < count; i++) {
        const wait = t0 + i * interval - now()
        if (wait > 1) await sleep(wait)
        pending.push(a.broadcastChannel(channel, makePayload(i, now(), size), { event }))
      }
      await Promise.all(pending)
      return { t0, tEnd: now() }
    },
    async stop () {
      if (app) await Promise.race([app.close(), sleep(3000)])
      setImmediate(() => process.exit(0))
      return true
    }
  })
}

// ---- the case --------------------------------------------------------------------------

/**
 * @typedef {{ key: 'oneNode' | 'twoNodes' | 'twoNodesBaseline', label: string, publisher: import('../lib/rpc.js').Child,
 *   receiver: import('../lib/rpc.js').Child, client: import('../lib/rpc.js').Child }} Setup
 */

const labels = { oneNode: 'one node', twoNodes: 'two nodes via Redis', twoNodesBaseline: 'two nodes via Redis (baseline build)' }

/**
 * @param {Setup['key']} key
 * @param {{ redisUrl: string, prefix: string, entry?: string } | null} redis
 * @param {number} n
 * @returns {Promise<Setup>}
 */
async function openSetup (key, redis, n) {
  const label = labels[key]
  return await openChildren(async (spawn) => {
    const spawnServer = async (/** @type {string} */ name) => {
      const child = await spawn(self, { name: `crossnode ${name}`, args: ['server'], cpu: 0 })
      return { child, address: await child.call('start', redis ?? {}, 20000) }
    }
    const publisher = await spawnServer(redis ? 'node 1' : 'single node')
    const receiver = redis ? await spawnServer('node 2') : publisher
    const client = await spawn(clientScript, { name: `crossnode load client (${label})`, cpu: 1, nodeFlags: ['--max-old-space-size=4096'] })
    const url = `ws://127.0.0.1:${receiver.address.port}${receiver.address.path}`
    await client.call('connect', { kind: 'frames', url, n, channel, concurrency: 100, timeoutMs: 20000 }, 60000 + n * 20)
    const seen = await receiver.child.call('connections')
    if (seen !== n) throw new Error(`${label}: the receiving node sees ${seen} connections, expected ${n}`)
    return { key, label, publisher: publisher.child, receiver: receiver.child, client }
  })
}

/** @param {Setup} s */
async function closeSetup (s) {
  await Promise.all([s.client.kill(), s.publisher.kill(), s.receiver === s.publisher ? undefined : s.receiver.kill()])
}

/**
 * @param {Setup} s
 * @param {{ n: number, messages: number, size: number }} cfg
 */
async function crossnodeBurst (s, cfg) {
  // CPU of node 1 + node 2 for two nodes; one publisher, so every socket's last message is the last sent
  const servers = s.receiver === s.publisher ? [s.publisher] : [s.publisher, s.receiver]
  return await burstRound({ ...s, servers, inOrder: true, timeoutMs: 60000 }, cfg)
}

/**
 * @param {Setup} s
 * @param {{ rate: number, seconds: number, size: number }} cfg
 */
async function pacedRound (s, { rate, seconds, size }) {
  const count = Math.round(rate * seconds)
  await s.client.call('arm', { mode: 'latency', perSocket: count })
  await s.publisher.call('paced', { count, size, rate }, seconds * 1000 + 30000)
  const got = await s.client.call('wait', { timeoutMs: 30000 }, 35000)
  if (!got.complete || !got.latency) throw new Error(`${s.label} paced: ${got.delivered}/${got.expected} deliveries`)
  return { p50Ms: got.latency.p50, p90Ms: got.latency.p90, p99Ms: got.latency.p99, maxMs: got.latency.max }
}

/**
 * @param {import('../run.js').Ctx} ctx
 * @returns {Promise<null | Record<string, unknown>>}
 */
export async function crossnode (ctx) {
  const { burst, paced } = ctx.config
  /** @type {any} */
  const own = /** @type {any} */ (ctx.config).crossnode ?? {}
  const cfg = {
    n: own.n ?? burst.n,
    messages: own.messages ?? burst.messages,
    size: own.size ?? burst.size,
    rounds: own.rounds ?? burst.rounds,
    warmup: own.warmup ?? burst.warmup,
    rate: own.rate ?? paced.rate,
    seconds: own.seconds ?? paced.seconds
  }
  const ready = await redisCaseReady(ctx)
  if ('skipped' in ready) return { skipped: ready.skipped }
  const { redisUrl } = ready

  const prefix = `bench-crossnode-${process.pid}-${Date.now()}`
  const baseline = process.env.BENCH_CROSSNODE_BASELINE
  if (baseline && !existsSync(baseline)) {
    const skipped = `BENCH_CROSSNODE_BASELINE=${baseline} does not exist`
    ctx.log(`  SKIPPED — ${skipped}`)
    return { skipped }
  }
  /** @type {Setup[]} */
  const setups = []
  /** @type {Record<string, { burst: Array<Record<string, number>>, paced: Array<Record<string, number>> }>} */
  const measured = { oneNode: { burst: [], paced: [] }, twoNodes: { burst: [], paced: [] }, twoNodesBaseline: { burst: [], paced: [] } }
  try {
    setups.push(await openSetup('oneNode', null, cfg.n))
    setups.push(await openSetup('twoNodes', { redisUrl, prefix }, cfg.n))
    if (baseline) setups.push(await openSetup('twoNodesBaseline', { redisUrl, prefix: `${prefix}-baseline`, entry: pathToFileURL(baseline).href }, cfg.n))
    const total = cfg.warmup + cfg.rounds
    for (let r = 0; r < total; r++) {
      // interleaved, the first setup rotating, so a disturbance spreads over all of them
      const shift = r % setups.length
      for (const s of [...setups.slice(shift), ...setups.slice(0, shift)]) {
        const row = await crossnodeBurst(s, cfg)
        const tag = r < cfg.warmup ? 'warm-up' : `round ${r - cfg.warmup + 1}`
        ctx.log(`  ${s.label} burst ${tag}: ${Math.round(row.deliveriesPerSec).toLocaleString('en-US')} deliveries/s (${row.ms.toFixed(1)} ms; ${row.serverCpuUsPerDelivery.toFixed(2)} server CPU us/delivery)`)
        if (r < cfg.warmup) continue
        measured[s.key].burst.push(row)
        const lat = await pacedRound(s, cfg)
        ctx.log(`  ${s.label} paced ${tag}: p50 ${lat.p50Ms.toFixed(2)} ms, p99 ${lat.p99Ms.toFixed(2)} ms, max ${lat.maxMs.toFixed(2)} ms`)
        measured[s.key].paced.push(lat)
      }
    }
  } catch (err) {
    const message = /** @type {Error} */ (err).message
    ctx.log(`  ERROR ${message}`)
    ctx.notes.push(`crossnode: ${message}`)
    return { config: cfg, error: message }
  } finally {
    await Promise.all(setups.map(closeSetup))
  }

  const summary = (/** @type {Setup['key']} */ key) => ({
    burst: { rounds: measured[key].burst, median: medianOfRounds(measured[key].burst) },
    paced: { rounds: measured[key].paced, median: medianOfRounds(measured[key].paced) }
  })
  const oneNode = summary('oneNode')
  const twoNodes = summary('twoNodes')
  const twoNodesBaseline = baseline ? summary('twoNodesBaseline') : undefined
  const ratios = {
    deliveriesPerSec: ratio(twoNodes.burst.median.deliveriesPerSec, oneNode.burst.median.deliveriesPerSec),
    baselineDeliveriesPerSec: twoNodesBaseline ? ratio(twoNodesBaseline.burst.median.deliveriesPerSec, oneNode.burst.median.deliveriesPerSec) : null,
    vsBaseline: twoNodesBaseline ? ratio(twoNodes.burst.median.deliveriesPerSec, twoNodesBaseline.burst.median.deliveriesPerSec) : null,
    serverCpuUsPerDelivery: ratio(twoNodes.burst.median.serverCpuUsPerDelivery, oneNode.burst.median.serverCpuUsPerDelivery),
    p50: ratio(twoNodes.paced.median.p50Ms, oneNode.paced.median.p50Ms),
    p99: ratio(twoNodes.paced.median.p99Ms, oneNode.paced.median.p99Ms)
  }
  const fmt = (/** @type {number | null | undefined} */ x, digits = 2) => (typeof x === 'number' ? x.toFixed(digits) : '-')
  ctx.log(`  median deliveries/s (${cfg.n}x${cfg.messages}): one node ${Math.round(oneNode.burst.median.deliveriesPerSec ?? NaN).toLocaleString('en-US')}, two nodes ${Math.round(twoNodes.burst.median.deliveriesPerSec ?? NaN).toLocaleString('en-US')} (two/one ${fmt(ratios.deliveriesPerSec)})`)
  if (twoNodesBaseline) {
    ctx.log(`  baseline build, two nodes ${Math.round(twoNodesBaseline.burst.median.deliveriesPerSec ?? NaN).toLocaleString('en-US')} (two/one ${fmt(ratios.baselineDeliveriesPerSec)}); this build / baseline ${fmt(ratios.vsBaseline)}`)
  }
  ctx.log(`  median paced latency (${cfg.rate}/s): p50 ${fmt(oneNode.paced.median.p50Ms)} vs ${fmt(twoNodes.paced.median.p50Ms)} ms, p99 ${fmt(oneNode.paced.median.p99Ms)} vs ${fmt(twoNodes.paced.median.p99Ms)} ms (two/one ${fmt(ratios.p50)}, ${fmt(ratios.p99)})`)
  return {
    config: cfg,
    redis: redisUrl,
    note: 'both nodes are pinned to the server CPU, so two nodes share what one node had alone; Redis itself is not pinned',
    oneNode,
    twoNodes,
    ...(twoNodesBaseline ? { baseline, twoNodesBaseline } : {}),
    ratios
  }
}

if (process.argv[1] === self && process.argv[2] === 'server') await runServer()
