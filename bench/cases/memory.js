// @ts-check
// Case 3, idle memory per connection: the server's heapUsed and RSS after full GC
// (global.gc(), server runs with --expose-gc) with N idle connections, each subscribed to one
// channel, minus the same figures with 0 connections, divided by N. A fresh server per round;
// N grows within a round (e.g. 1,000 then 10,000) by opening more connections.
import { withProcesses, connectClients } from '../lib/procs.js'
import { medianOfRounds } from '../lib/stats.js'

/**
 * @param {import('../run.js').Ctx} ctx
 * @param {import('../lib/variants.js').Variant} variant
 */
export async function memory (ctx, variant) {
  const { ns, rounds } = ctx.config.memory
  /** @type {Record<string, Array<Record<string, number>>>} */
  const byN = {}
  for (let r = 0; r < rounds; r++) {
    await withProcesses(variant, {}, async (p) => {
      const base = await p.server.call('memory', {}, 30000)
      let have = 0
      for (const n of ns) {
        const c = await connectClients(p, variant, n, have)
        have = n
        // Let the accept/upgrade garbage settle before measuring.
        await new Promise((resolve) => setTimeout(resolve, 200))
        const m = await p.server.call('memory', {}, 30000)
        const row = {
          heapPerConn: (m.heapUsed - base.heapUsed) / n,
          rssPerConn: (m.rss - base.rss) / n,
          externalPerConn: (m.external - base.external) / n,
          baseHeap: base.heapUsed,
          baseRss: base.rss,
          connectMs: c.ms
        }
        ;(byN[n] ??= []).push(row)
        ctx.log(`  ${variant.label} memory round ${r + 1} N=${n}: heap ${Math.round(row.heapPerConn)} B/conn, rss ${Math.round(row.rssPerConn)} B/conn`)
      }
    })
  }
  /** @type {Record<string, { rounds: Array<Record<string, number>>, median: Record<string, number> }>} */
  const out = {}
  for (const [n, rows] of Object.entries(byN)) out[n] = { rounds: rows, median: medianOfRounds(rows) }
  return { config: { ns, rounds }, byN: out }
}
