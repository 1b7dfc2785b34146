// @ts-check
// Case 7, one port on 1 worker process against 2 (node:cluster), variant (a) only, both on the
// same Redis broker (bench/servers/workers.js). The same load for both: `n` subscribers
// connected through the one port (round robin spreads them over the workers), then bursts of
// `messages` broadcasts issued by the workers (each its share) to all subscribers.
// Reported per setup: deliveries/s (n × messages over the time from the first broadcast to the
// last delivery) and the CPU of all worker processes per delivery, and two / one.
// Nothing is pinned: the workers are meant to use both CPUs (the load client shares them, so
// on a 2-CPU machine the gain is a lower bound). Skipped when Redis is not reachable.
import { fileURLToPath } from 'node:url'
import { burstRound, openChildren, ratio, redisCaseReady } from '../lib/redis-case.js'
import { medianOfRounds } from '../lib/stats.js'

const serverScript = fileURLToPath(new URL('../servers/workers.js', import.meta.url))
const clientScript = fileURLToPath(new URL('../clients/main.js', import.meta.url))

/**
 * @param {number} workers
 * @param {{ n: number }} cfg
 * @param {string} redisUrl
 */
async function openSetup (workers, cfg, redisUrl) {
  return await openChildren(async (spawn) => {
    const server = await spawn(serverScript, { name: `${workers} worker(s)`, cpu: null })
    const prefix = `bench-workers-${workers}-${process.pid}-${Date.now()}`
    const address = await server.call('start', { workers, redisUrl, prefix }, 60000)
    const client = await spawn(clientScript, { name: `load client (${workers} workers)`, cpu: null, nodeFlags: ['--max-old-space-size=4096'] })
    await client.call('connect', { kind: 'frames', url: `ws://127.0.0.1:${address.port}${address.path}`, n: cfg.n, channel: 'bench', concurrency: 50, timeoutMs: 60000 }, 300000)
    const perWorker = await server.call('perWorker')
    const total = perWorker.reduce((/** @type {number} */ a, /** @type {number} */ b) => a + b, 0)
    if (total !== cfg.n) throw new Error(`the workers see ${total} connections, expected ${cfg.n}`)
    return { workers, server, client, perWorker }
  })
}

/** @param {import('../run.js').Ctx} ctx */
export async function workers (ctx) {
  const cfg = ctx.config.workers
  const ready = await redisCaseReady(ctx)
  if ('skipped' in ready) return { skipped: ready.skipped }
  const { redisUrl } = ready

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
        // Several workers publish at once, so the last message a socket gets need not be the last one sent.
        const row = await burstRound({ ...s, label: `${s.workers} worker(s)`, publisher: s.server, servers: [s.server], inOrder: false, timeoutMs: 120000 }, cfg)
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
