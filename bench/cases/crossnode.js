// @ts-check
// Case 5, cross-node fan-out through Redis: variant (a) only, up to four setups measured in the same
// run with their rounds interleaved (as lib/procs.js does for the variants):
//
//   one node   one server (the default in-process broker); N subscribers on it; it broadcasts.
//   two nodes  two servers on one Redis (`redisBroker({ url, prefix })`); the N subscribers on
//              node 2, the broadcasts issued on node 1, so every delivery crosses Redis.
//   two nodes on a Redis Cluster  the same, on an ioredis `Cluster` (`redisBroker({ redis: cluster,
//              prefix })`, sharded pub/sub).
//              The cluster: BENCH_REDIS_CLUSTER_URL (seed URLs as scripts/redis-cluster.sh prints
//              them), else 3 masters started with that script and stopped at the end; without
//              redis-server the setup is skipped with its reason.
//   two nodes via NATS  the same, on NATS with JetStream (`natsBroker({ servers, prefix })`):
//              BENCH_NATS_URL (default nats://127.0.0.1:4222); skipped with its reason when it
//              does not answer or has no JetStream. Its stream and buckets are deleted at the end.
//
// In every setup the N subscribers are spread over 6 channels, two on each master of a 3-master
// cluster made by redis-cli (equal slot ranges); a payload is broadcast once to each channel, so
// every socket still gets every payload (N*M deliveries) in order, from 6*M broadcasts.
// Per setup: a burst round (M payloads back to back, deliveries/s = N*M / time from node 1's
// first broadcast to the last subscriber's last message, on the shared monotonic clock) and a
// paced round (latency p50/p90/p99/max). Reported: each setup's medians, two nodes / one node,
// cluster / one Redis and NATS / one Redis.
// With BENCH_CROSSNODE_BASELINE=<another build's dist/plugin/index.js> (main's, say), a fourth
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
import { burstRound, openChildren, ratio, redisCaseReady, redisClusterReady } from '../lib/redis-case.js'
import { medianOfRounds } from '../lib/stats.js'
import { channelsEntry } from '../lib/variants.js'

const self = fileURLToPath(import.meta.url)
const clientScript = fileURLToPath(new URL('../clients/main.js', import.meta.url))
// slots 12217, 16280, 4091, 8154, 3967, 8030: two in each third of the 16384 (the {channel} hash tag)
const channels = ['bench-0', 'bench-1', 'bench-2', 'bench-3', 'bench-6', 'bench-7']
const event = 'tick'

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---- the server child ------------------------------------------------------------------

async function runServer () {
  /** @type {any} */
  let app = null
  /** @type {any} the app's own ioredis Cluster, closed at stop (the broker closes only its copies) */
  let cluster = null
  let cpuMark = process.cpuUsage()
  const requireApp = () => {
    if (!app) throw new Error('server not started')
    return app
  }
  serve({
    /** @param {{ redisUrl?: string, clusterSeeds?: string[], natsUrl?: string, prefix?: string, entry?: string }} args */
    async start ({ redisUrl, clusterSeeds, natsUrl, prefix, entry }) {
      const { default: fastifyChannels, redisBroker, natsBroker } = await import(entry ?? channelsEntry().href)
      const { default: Fastify } = await import('fastify')
      app = Fastify({ logger: false })
      if (clusterSeeds) {
        const { Cluster } = await import('ioredis')
        cluster = new Cluster(clusterSeeds.map((u) => ({ host: new URL(u).hostname, port: Number(new URL(u).port) })), { lazyConnect: true })
      }
      const broker = natsUrl
        ? natsBroker({ servers: natsUrl, prefix })
        : cluster ? redisBroker({ redis: cluster, prefix }) : redisUrl ? redisBroker({ url: redisUrl, prefix }) : undefined
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
      for (let i = 0; i < count; i++) for (const channel of channels) pending.push(a.broadcastChannel(channel, payloads[i], { event }))
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
        const payload = makePayload(i, now(), size)
        for (const channel of channels) pending.push(a.broadcastChannel(channel, payload, { event }))
      }
      await Promise.all(pending)
      return { t0, tEnd: now() }
    },
    async stop () {
      if (app) await Promise.race([app.close(), sleep(3000)])
      if (cluster) cluster.disconnect()
      setImmediate(() => process.exit(0))
      return true
    }
  })
}

// ---- the case --------------------------------------------------------------------------

/**
 * @typedef {{ key: 'oneNode' | 'twoNodes' | 'twoNodesCluster' | 'twoNodesNats' | 'twoNodesBaseline', label: string, publisher: import('../lib/rpc.js').Child,
 *   receiver: import('../lib/rpc.js').Child, client: import('../lib/rpc.js').Child }} Setup
 */

const labels = { oneNode: 'one node', twoNodes: 'two nodes via Redis', twoNodesCluster: 'two nodes on a Redis Cluster', twoNodesNats: 'two nodes via NATS', twoNodesBaseline: 'two nodes via Redis (baseline build)' }

/**
 * @param {Setup['key']} key
 * @param {{ redisUrl?: string, clusterSeeds?: string[], natsUrl?: string, prefix: string, entry?: string } | null} redis
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
    for (const [k, channel] of channels.entries()) {
      const share = Math.floor(n / channels.length) + (k < n % channels.length ? 1 : 0)
      await client.call('connect', { kind: 'frames', url, n: share, channel, concurrency: 100, timeoutMs: 20000 }, 60000 + share * 20)
    }
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
 * The NATS to run the NATS setup on (BENCH_NATS_URL, default nats://127.0.0.1:4222) and how to
 * delete what a prefix created there, or why there is none.
 * @returns {Promise<{ natsUrl: string, cleanup: (prefix: string) => Promise<void> } | { skipped: string }>}
 */
async function natsReady () {
  const natsUrl = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222'
  /** @type {any} */
  let nats
  /** @type {any} */
  let jetstream
  try {
    nats = await import('@nats-io/transport-node')
    jetstream = await import('@nats-io/jetstream')
  } catch {
    return { skipped: 'the @nats-io packages are not installed' }
  }
  const open = async () => {
    const nc = await nats.connect({ servers: natsUrl, timeout: 1000, reconnect: false })
    return { nc, jsm: await jetstream.jetstreamManager(nc, { timeout: 2000 }) }
  }
  try {
    const { nc } = await open()
    await nc.close()
  } catch (err) {
    return { skipped: `NATS with JetStream is not reachable at ${natsUrl} (set BENCH_NATS_URL): ${/** @type {Error} */ (err).message}` }
  }
  const cleanup = async (/** @type {string} */ prefix) => {
    // the plugin's names for a plain prefix: FC-<prefix>-history, KV_FC-<prefix>-nodes, KV_FC-<prefix>-presence
    try {
      const { nc, jsm } = await open()
      for (const name of [`FC-${prefix}-history`, `KV_FC-${prefix}-nodes`, `KV_FC-${prefix}-presence`]) await jsm.streams.delete(name).catch(() => {})
      await nc.close()
    } catch {}
  }
  return { natsUrl, cleanup }
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
  const cluster = await redisClusterReady()
  if ('skipped' in cluster) ctx.log(`  two nodes on a Redis Cluster SKIPPED — ${cluster.skipped}`)
  const nats = await natsReady()
  if ('skipped' in nats) ctx.log(`  two nodes via NATS SKIPPED — ${nats.skipped}`)
  const natsPrefix = `${prefix}-nats`
  /** @type {Setup[]} */
  const setups = []
  /** @type {Record<string, { burst: Array<Record<string, number>>, paced: Array<Record<string, number>> }>} */
  const measured = { oneNode: { burst: [], paced: [] }, twoNodes: { burst: [], paced: [] }, twoNodesCluster: { burst: [], paced: [] }, twoNodesNats: { burst: [], paced: [] }, twoNodesBaseline: { burst: [], paced: [] } }
  try {
    setups.push(await openSetup('oneNode', null, cfg.n))
    setups.push(await openSetup('twoNodes', { redisUrl, prefix }, cfg.n))
    if ('seeds' in cluster) setups.push(await openSetup('twoNodesCluster', { clusterSeeds: cluster.seeds, prefix: `${prefix}-cluster` }, cfg.n))
    if ('natsUrl' in nats) setups.push(await openSetup('twoNodesNats', { natsUrl: nats.natsUrl, prefix: natsPrefix }, cfg.n))
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
    if ('seeds' in cluster) await cluster.stop()
    if ('natsUrl' in nats) await nats.cleanup(natsPrefix)
  }

  const summary = (/** @type {Setup['key']} */ key) => ({
    burst: { rounds: measured[key].burst, median: medianOfRounds(measured[key].burst) },
    paced: { rounds: measured[key].paced, median: medianOfRounds(measured[key].paced) }
  })
  const oneNode = summary('oneNode')
  const twoNodes = summary('twoNodes')
  const twoNodesBaseline = baseline ? summary('twoNodesBaseline') : undefined
  const twoNodesCluster = 'seeds' in cluster ? summary('twoNodesCluster') : undefined
  const twoNodesNats = 'natsUrl' in nats ? summary('twoNodesNats') : undefined
  const ratios = {
    deliveriesPerSec: ratio(twoNodes.burst.median.deliveriesPerSec, oneNode.burst.median.deliveriesPerSec),
    baselineDeliveriesPerSec: twoNodesBaseline ? ratio(twoNodesBaseline.burst.median.deliveriesPerSec, oneNode.burst.median.deliveriesPerSec) : null,
    vsBaseline: twoNodesBaseline ? ratio(twoNodes.burst.median.deliveriesPerSec, twoNodesBaseline.burst.median.deliveriesPerSec) : null,
    // cluster / one Redis, both two nodes
    clusterDeliveriesPerSec: twoNodesCluster ? ratio(twoNodesCluster.burst.median.deliveriesPerSec, twoNodes.burst.median.deliveriesPerSec) : null,
    clusterP99: twoNodesCluster ? ratio(twoNodesCluster.paced.median.p99Ms, twoNodes.paced.median.p99Ms) : null,
    // NATS / one Redis, both two nodes
    natsDeliveriesPerSec: twoNodesNats ? ratio(twoNodesNats.burst.median.deliveriesPerSec, twoNodes.burst.median.deliveriesPerSec) : null,
    natsP99: twoNodesNats ? ratio(twoNodesNats.paced.median.p99Ms, twoNodes.paced.median.p99Ms) : null,
    serverCpuUsPerDelivery: ratio(twoNodes.burst.median.serverCpuUsPerDelivery, oneNode.burst.median.serverCpuUsPerDelivery),
    p50: ratio(twoNodes.paced.median.p50Ms, oneNode.paced.median.p50Ms),
    p99: ratio(twoNodes.paced.median.p99Ms, oneNode.paced.median.p99Ms)
  }
  const fmt = (/** @type {number | null | undefined} */ x, digits = 2) => (typeof x === 'number' ? x.toFixed(digits) : '-')
  ctx.log(`  median deliveries/s (${cfg.n}x${cfg.messages}): one node ${Math.round(oneNode.burst.median.deliveriesPerSec ?? NaN).toLocaleString('en-US')}, two nodes ${Math.round(twoNodes.burst.median.deliveriesPerSec ?? NaN).toLocaleString('en-US')} (two/one ${fmt(ratios.deliveriesPerSec)})`)
  if (twoNodesBaseline) {
    ctx.log(`  baseline build, two nodes ${Math.round(twoNodesBaseline.burst.median.deliveriesPerSec ?? NaN).toLocaleString('en-US')} (two/one ${fmt(ratios.baselineDeliveriesPerSec)}); this build / baseline ${fmt(ratios.vsBaseline)}`)
  }
  if (twoNodesCluster) {
    ctx.log(`  Redis Cluster, two nodes ${Math.round(twoNodesCluster.burst.median.deliveriesPerSec ?? NaN).toLocaleString('en-US')} deliveries/s, p99 ${fmt(twoNodesCluster.paced.median.p99Ms)} ms; cluster / one Redis: deliveries/s ${fmt(ratios.clusterDeliveriesPerSec)}, p99 ${fmt(ratios.clusterP99)}`)
  }
  if (twoNodesNats) {
    ctx.log(`  NATS, two nodes ${Math.round(twoNodesNats.burst.median.deliveriesPerSec ?? NaN).toLocaleString('en-US')} deliveries/s, p99 ${fmt(twoNodesNats.paced.median.p99Ms)} ms; NATS / one Redis: deliveries/s ${fmt(ratios.natsDeliveriesPerSec)}, p99 ${fmt(ratios.natsP99)}`)
  }
  ctx.log(`  median paced latency (${cfg.rate}/s): p50 ${fmt(oneNode.paced.median.p50Ms)} vs ${fmt(twoNodes.paced.median.p50Ms)} ms, p99 ${fmt(oneNode.paced.median.p99Ms)} vs ${fmt(twoNodes.paced.median.p99Ms)} ms (two/one ${fmt(ratios.p50)}, ${fmt(ratios.p99)})`)
  return {
    config: cfg,
    redis: redisUrl,
    note: 'both nodes are pinned to the server CPU, so two nodes share what one node had alone; Redis itself is not pinned',
    oneNode,
    twoNodes,
    channels,
    ...(twoNodesCluster && 'seeds' in cluster ? { cluster: cluster.seeds, twoNodesCluster } : { clusterSkipped: 'skipped' in cluster ? cluster.skipped : undefined }),
    ...(twoNodesNats && 'natsUrl' in nats ? { nats: nats.natsUrl, twoNodesNats } : { natsSkipped: 'skipped' in nats ? nats.skipped : undefined }),
    ...(twoNodesBaseline ? { baseline, twoNodesBaseline } : {}),
    ratios
  }
}

if (process.argv[1] === self && process.argv[2] === 'server') await runServer()
