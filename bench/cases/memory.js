// @ts-check
// Case 3, idle memory per connection: the server's heapUsed and RSS after full GC
// (global.gc(), server runs with --expose-gc) with N idle connections, each subscribed to one
// channel, minus the same figures with 0 connections, divided by N. Fresh servers every
// round; N grows within a round (e.g. 1,000 then 10,000) by opening more connections.
import { openSessions, closeSessions, interleave, connectClients } from '../lib/procs.js'
import { medianOfRounds } from '../lib/stats.js'

/**
 * @param {import('../run.js').Ctx} ctx
 * @param {import('../lib/variants.js').Variant[]} variants
 */
export async function memory (ctx, variants) {
  const { ns, rounds } = ctx.config.memory
  /** @type {Record<string, Record<string, Array<Record<string, number>>>>} */
  const measured = {}
  /** @type {Record<string, Error>} */
  const errors = {}
  for (let r = 0; r < rounds; r++) {
    const todo = variants.filter((v) => !errors[v.key])
    /** @type {Map<string, any>} */
    const bases = new Map()
    const sessions = await openSessions(todo, {}, async (s) => {
      bases.set(s.variant.key, await s.server.call('memory', {}, 30000))
    })
    try {
      let have = 0
      for (const n of ns) {
        await interleave(sessions, 1, async (s) => {
          const base = bases.get(s.variant.key)
          const c = await connectClients(s, n, have)
          // Let the accept/upgrade garbage settle before measuring.
          await new Promise((resolve) => setTimeout(resolve, 200))
          const m = await s.server.call('memory', {}, 30000)
          const row = {
            heapPerConn: (m.heapUsed - base.heapUsed) / n,
            rssPerConn: (m.rss - base.rss) / n,
            externalPerConn: (m.external - base.external) / n,
            baseHeap: base.heapUsed,
            baseRss: base.rss,
            connectMs: c.ms
          }
          ;((measured[s.variant.key] ??= {})[n] ??= []).push(row)
          ctx.log(`  ${s.variant.label} round ${r + 1} N=${n}: heap ${Math.round(row.heapPerConn)} B/conn, rss ${Math.round(row.rssPerConn)} B/conn (connected in ${(c.ms / 1000).toFixed(1)} s)`)
        })
        have = n
      }
    } finally {
      await closeSessions(sessions)
    }
    for (const s of sessions) if (s.error) errors[s.variant.key] = s.error
  }
  /** @type {Record<string, any>} */
  const out = {}
  for (const v of variants) {
    const err = errors[v.key]
    if (err) { out[v.key] = { error: err.message, ...(/** @type {any} */ (err).startFailure ? { startFailure: true } : {}) }; continue }
    /** @type {Record<string, any>} */
    const byN = {}
    for (const [n, rows] of Object.entries(measured[v.key] ?? {})) byN[n] = { rounds: rows, median: medianOfRounds(rows) }
    out[v.key] = { config: { ns, rounds }, byN }
  }
  return out
}
