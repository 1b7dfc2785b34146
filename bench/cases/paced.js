// @ts-check
// Case 2, paced fan-out latency: `rate` broadcasts per second to N subscribers for `seconds`.
// Each payload carries its send time (server, shared monotonic clock); each subscriber records
// receive time minus send time. Reports p50/p90/p99/max over all deliveries of a round,
// median over rounds. The latency includes the load client's own queueing (one process
// reads all N sockets), the same for every variant.
import { openSessions, closeSessions, interleave, connectClients, collect } from '../lib/procs.js'
import { medianOfRounds } from '../lib/stats.js'

/**
 * @param {import('../run.js').Ctx} ctx
 * @param {import('../lib/variants.js').Variant[]} variants
 */
export async function paced (ctx, variants) {
  const { n, rate, seconds, size, rounds } = ctx.config.paced
  const count = Math.round(rate * seconds)
  /** @type {Record<string, Array<Record<string, number>>>} */
  const measured = {}
  const sessions = await openSessions(variants, {}, async (s) => {
    await connectClients(s, n)
    // Warm-up: a short burst so that the first paced round does not pay for JIT compilation.
    await s.client.call('arm', { mode: 'count', perSocket: 20 })
    await s.server.call('burst', { channel: 'bench', event: 'tick', count: 20, size }, 30000)
    const warm = await s.client.call('wait', { timeoutMs: 30000 }, 35000)
    if (!warm.complete) throw new Error(`paced warm-up: ${warm.delivered}/${warm.expected} deliveries`)
  })
  try {
    await interleave(sessions, rounds, async (s, r) => {
      await s.client.call('arm', { mode: 'latency', perSocket: count })
      const sent = await s.server.call('paced', { channel: 'bench', event: 'tick', count, size, rate }, seconds * 1000 + 30000)
      const got = await s.client.call('wait', { timeoutMs: 30000 }, 35000)
      const cpu = await s.server.call('cpu')
      if (!got.complete || !got.latency) throw new Error(`paced round ${r}: ${got.delivered}/${got.expected} deliveries (unexpected closes: ${got.unexpectedCloses} ${got.closeSamples.join('; ')})`)
      const row = {
        p50Ms: got.latency.p50,
        p90Ms: got.latency.p90,
        p99Ms: got.latency.p99,
        maxMs: got.latency.max,
        meanMs: got.latency.mean,
        lateTicks: sent.late,
        serverCpuPct: (cpu.cpuMs / (sent.tEnd - sent.t0)) * 100,
        // Longest event-loop stall of each process in the round: a latency spike that matches
        // one of these happened in that process (or the machine took its CPU away).
        serverLoopDelayMaxMs: cpu.loopDelayMaxMs,
        clientLoopDelayMaxMs: got.loopDelayMaxMs
      }
      ;(measured[s.variant.key] ??= []).push(row)
      ctx.log(`  ${s.variant.label} round ${r + 1}: p50 ${row.p50Ms.toFixed(2)} ms, p99 ${row.p99Ms.toFixed(2)} ms, max ${row.maxMs.toFixed(2)} ms (server CPU ${row.serverCpuPct.toFixed(0)} %; longest loop stall: server ${cpu.loopDelayMaxMs.toFixed(0)} ms, client ${got.loopDelayMaxMs.toFixed(0)} ms; worst ticks [seq, ms]: ${JSON.stringify(got.latency.worstTicks)})`)
    })
  } finally {
    await closeSessions(sessions)
  }
  return collect(sessions, (s) => {
    const rows = measured[s.variant.key] ?? []
    return { config: { n, rate, seconds, size }, rounds: rows, median: medianOfRounds(rows) }
  })
}
