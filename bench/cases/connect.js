// @ts-check
// Case 8, connect: server CPU per accepted connection. `n` clients (2,000) open a WebSocket and
// subscribe to one channel, `concurrency` at a time; the server's CPU time (user + system) from
// just before the first connect until every client has its `subscribed`, divided by n. Then every
// client hangs up, and the server is given time to forget them before the next round; the rounds
// of the variants interleave, as in the other cases. What it covers for (a): the upgrade and its
// hooks (origin check, connection cap, the leftovers release), the welcome, the session's
// registration on the broker (the memory broker), the subscribe frame and its `subscribed`.
// (b) does the upgrade and the subscribe only: no welcome, no checks, no registry.
import { openSessions, closeSessions, interleave } from '../lib/procs.js'
import { median, medianOfRounds } from '../lib/stats.js'

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * @param {import('../run.js').Ctx} ctx
 * @param {import('../lib/variants.js').Variant[]} variants
 */
export async function connect (ctx, variants) {
  const { n, rounds, warmup, concurrency } = ctx.config.connect
  const sessions = await openSessions(variants, {}, async () => {})
  /** @type {Record<string, Array<Record<string, number>>>} */
  const measured = {}
  try {
    await interleave(sessions, warmup + rounds, async (s, r) => {
      await s.server.call('mark')
      const res = await s.client.call('connect', { kind: s.variant.client, url: s.url, n, channel: 'bench', concurrency, timeoutMs: 30000 }, 120000)
      const cpu = await s.server.call('cpu')
      await s.client.call('close')
      // The server sees the hang-ups and releases them before the next round (outside the clock).
      for (let i = 0; i < 100 && await s.server.call('connections') !== 0; i++) await sleep(50)
      await sleep(200)
      const row = { serverCpuUsPerConn: (cpu.cpuMs * 1000) / n, connectsPerSec: n / (res.ms / 1000), serverLoopDelayMaxMs: cpu.loopDelayMaxMs }
      const warm = r < warmup
      if (!warm) (measured[s.variant.key] ??= []).push(row)
      ctx.log(`  ${s.variant.label} round ${r + 1}${warm ? ' (warm-up)' : ''}: ${row.serverCpuUsPerConn.toFixed(0)} us server CPU per connection, ` +
        `${Math.round(row.connectsPerSec)} connects/s`)
    })
  } finally {
    await closeSessions(sessions)
  }
  /** @type {Record<string, any>} */
  const out = {}
  // Round by round, (a) over each other variant: the machine's load drifts between rounds, and a
  // ratio of two neighbouring measurements drifts less than a ratio of two medians.
  const paired = (/** @type {string} */ other) => {
    const mine = measured.a ?? []
    const theirs = measured[other] ?? []
    return median(mine.slice(0, theirs.length).map((row, i) => row.serverCpuUsPerConn / theirs[i].serverCpuUsPerConn))
  }
  for (const s of sessions) {
    out[s.variant.key] = s.error
      ? { error: s.error.message }
      : { config: { n, rounds, concurrency }, rounds: measured[s.variant.key] ?? [], median: medianOfRounds(measured[s.variant.key] ?? []) }
  }
  for (const other of ['b', 'c']) {
    if (out.a && !out.a.error && out[other] && !out[other].error) {
      out.a[`pairedCpuRatioOver${other.toUpperCase()}`] = paired(other)
      ctx.log(`  (a) / ${other === 'b' ? '(b) hand-written' : '(c) socket.io'}: server CPU per connection, median of the round-by-round ratios ${paired(other).toFixed(2)}`)
    }
  }
  return out
}
