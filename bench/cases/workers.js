// @ts-check
// Case 7, one port on 1 worker process against 2 (node:cluster), variant (a) only, both on the
// same Redis broker (bench/servers/workers.js). The same load for both: `n` subscribers
// connected through the one port (round robin spreads them over the workers), then bursts of
// `messages` broadcasts issued by the workers (each its share) to all subscribers.
// Reported per setup: deliveries/s (n × messages over the time from the first broadcast to the
// last delivery) and the CPU of all worker processes per delivery, and two / one.
// Nothing is pinned: the workers are meant to use both CPUs (the load client shares them, so
// on a 2-CPU machine the gain is a lower bound). Skipped when Redis is not reachable.
import { existsSync } from 'node:fs'
import { createConnection } from 'node:net'
import { fileURLToPath } from 'node:url'
import { spawnChild } from '../lib/rpc.js'
import { medianOfRounds } from '../lib/stats.js'
import { channelsEntry } from '../lib/variants.js'

const serverScript = fileURLToPath(new URL('../servers/workers.js', import.meta.url))
const clientScript = fileURLToPath(new URL('../clients/main.js', import.meta.url))

/** Whether a Redis answers PING at `url` within a second. @param {string} url @returns {Promise<boolean>} */
function redisAnswers (url) {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname || '127.0.0.1', port: Number(port || 6379) })
    const done = (/** @type {boolean} */ ok) => { socket.destroy(); resolve(ok) }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (chunk) => done(chunk.toString().startsWith('+PONG')))
  })
}

/**
 * @param {number} workers
 * @param {{ n: number }} cfg
 * @param {string} redisUrl
 */
async function openSetup (workers, cfg, redisUrl) {
  /** @type {import('../lib/rpc.js').Child[]} */
  const started = []
  try {
    const server = await spawnChild(serverScript, { name: `${workers} worker(s)`, cpu: null })
    started.push(server)
    const prefix = `bench-workers-${workers}-${process.pid}-${Date.now()}`
    const address = await server.call('start', { workers, redisUrl, prefix }, 60000)
    const client = await spawnChild(clientScript, { name: `load client (${workers} workers)`, cpu: null, nodeFlags: ['--max-old-space-size=4096'] })
    started.push(client)
    await client.call('connect', { kind: 'frames', url: `ws://127.0.0.1:${address.port}${address.path}`, n: cfg.n, channel: 'bench', concurrency: 50, timeoutMs: 60000 }, 300000)
    const perWorker = await server.call('perWorker')
    const total = perWorker.reduce((/** @type {number} */ a, /** @type {number} */ b) => a + b, 0)
    if (total !== cfg.n) throw new Error(`the workers see ${total} connections, expected ${cfg.n}`)
    return { workers, server, client, perWorker }
  } catch (err) {
    await Promise.all(started.map((c) => c.kill()))
    throw err
  }
}

/**
 * @param {{ server: import('../lib/rpc.js').Child, client: import('../lib/rpc.js').Child, workers: number }} s
 * @param {{ n: number, messages: number, size: number }} cfg
 */
async function burstRound (s, cfg) {
  await s.client.call('arm', { mode: 'count', perSocket: cfg.messages })
  await s.server.call('markCpu')
  const sent = await s.server.call('burst', { count: cfg.messages, size: cfg.size }, 120000)
  const got = await s.client.call('wait', { timeoutMs: 120000 }, 125000)
  // Several workers publish at once, so the last message a socket gets need not be the last seq.
  if (!got.complete) throw new Error(`${s.workers} workers: ${got.delivered}/${got.expected} deliveries`)
  if (got.extra) throw new Error(`${s.workers} workers: ${got.extra} extra deliveries`)
  const ms = got.tLast - sent.t0
  const { cpuMs } = await s.server.call('cpu')
  return { deliveriesPerSec: (cfg.n * cfg.messages) / (ms / 1000), ms, serverCpuUsPerDelivery: (cpuMs * 1000) / (cfg.n * cfg.messages) }
}

/** @param {number | undefined} x @param {number | undefined} y */
const ratio = (x, y) => (typeof x === 'number' && typeof y === 'number' && y !== 0 ? x / y : null)

/** @param {import('../run.js').Ctx} ctx */
export async function workers (ctx) {
  const cfg = ctx.config.workers
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const entry = fileURLToPath(channelsEntry())
  if (!existsSync(entry)) return { skipped: `${entry} does not exist: build the plugin first (npm run build)` }
  if (!await redisAnswers(redisUrl)) return { skipped: `Redis is not reachable at ${redisUrl} (set BENCH_REDIS_URL)` }

  /** @type {Awaited<ReturnType<typeof openSetup>>[]} */
  const setups = []
  /** @type {Record<number, Array<Record<string, number>>>} */
  const measured = { 1: [], 2: [] }
  try {
    for (const w of [1, 2]) {
      const s = await openSetup(w, cfg, redisUrl)
      setups.push(s)
      ctx.log(`  ${w} worker(s): ${cfg.n} subscribers, per worker ${s.perWorker.join(' / ')}`)
    }
    for (let r = 0; r < cfg.warmup + cfg.rounds; r++) {
      for (const s of r % 2 ? [...setups].reverse() : setups) {
        const row = await burstRound(s, cfg)
        const tag = r < cfg.warmup ? 'warm-up' : `round ${r - cfg.warmup + 1}`
        ctx.log(`  ${s.workers} worker(s) ${tag}: ${Math.round(row.deliveriesPerSec).toLocaleString('en-US')} deliveries/s, ${row.serverCpuUsPerDelivery.toFixed(2)} CPU us/delivery (all workers)`)
        if (r >= cfg.warmup) measured[s.workers].push(row)
      }
    }
  } catch (err) {
    const message = /** @type {Error} */ (err).message
    ctx.notes.push(`workers: ${message}`)
    return { config: cfg, error: message }
  } finally {
    await Promise.all(setups.flatMap((s) => [s.client.kill(), s.server.kill()]))
  }
  const one = medianOfRounds(measured[1])
  const two = medianOfRounds(measured[2])
  return {
    config: cfg,
    one: { rounds: measured[1], median: one },
    two: { rounds: measured[2], median: two },
    ratios: {
      deliveriesPerSecTwoOverOne: ratio(two.deliveriesPerSec, one.deliveriesPerSec),
      cpuPerDeliveryTwoOverOne: ratio(two.serverCpuUsPerDelivery, one.serverCpuUsPerDelivery)
    }
  }
}
