// @ts-check
// Case 1, burst fan-out: N subscribers on one channel, M payloads of ~size bytes broadcast
// back to back. Time runs from just before the first broadcast (server clock) to the moment
// the last subscriber got its last message (client clock; both are CLOCK_MONOTONIC).
// Reports deliveries/s = N*M / that time, the server's CPU time per delivery, and how busy
// each process was (a client near 100 % means the load generator set the pace).
import { openSessions, closeSessions, interleave, connectClients, collect } from '../lib/procs.js'
import { medianOfRounds } from '../lib/stats.js'

/**
 * @param {import('../run.js').Ctx} ctx
 * @param {import('../lib/variants.js').Variant[]} variants
 */
export async function burst (ctx, variants) {
  const { n, messages, size, rounds, warmup } = ctx.config.burst
  const deliveries = n * messages
  /** @type {Record<string, Array<Record<string, number>>>} */
  const measured = {}
  const sessions = await openSessions(variants, {}, async (s) => { await connectClients(s, n) })
  try {
    await interleave(sessions, warmup + rounds, async (s, r) => {
      const label = s.variant.label
      await s.client.call('arm', { mode: 'count', perSocket: messages })
      const sent = await s.server.call('burst', { channel: 'bench', event: 'tick', count: messages, size }, 60000)
      const got = await s.client.call('wait', { timeoutMs: 60000 }, 65000)
      const cpu = await s.server.call('cpu')
      if (!got.complete) throw new Error(`burst round ${r}: ${got.delivered}/${got.expected} deliveries (${got.socketsDone}/${got.sockets} sockets complete; unexpected closes: ${got.unexpectedCloses} ${got.closeSamples.join('; ')})`)
      if (got.badLast || got.extra) throw new Error(`burst round ${r}: ${got.badLast} sockets got a wrong last message, ${got.extra} extra deliveries`)
      const ms = got.tLast - sent.t0
      const row = {
        deliveriesPerSec: deliveries / (ms / 1000),
        ms,
        loopMs: sent.tLoop - sent.t0,
        serverCpuUsPerDelivery: (cpu.cpuMs * 1000) / deliveries,
        serverKernelShare: cpu.cpuSystemMs / cpu.cpuMs,
        // Busy share of each process over the round. Loopback receive work done in softirq
        // context is accounted to neither process, so neither reaches 100 % even when saturated.
        serverBusyPct: (cpu.cpuMs / ms) * 100,
        clientBusyPct: (got.cpuMs / ms) * 100
      }
      if (r >= warmup) (measured[s.variant.key] ??= []).push(row)
      ctx.log(`  ${label} ${r < warmup ? 'warm-up' : `round ${r - warmup + 1}`}: ${Math.round(row.deliveriesPerSec).toLocaleString('en-US')} deliveries/s (${ms.toFixed(1)} ms; server busy ${row.serverBusyPct.toFixed(0)} %, ${(row.serverKernelShare * 100).toFixed(0)} % of it kernel; client busy ${row.clientBusyPct.toFixed(0)} %)`)
    })
  } finally {
    await closeSessions(sessions)
  }
  return collect(sessions, (s) => {
    const rows = measured[s.variant.key] ?? []
    return { config: { n, messages, size }, rounds: rows, median: medianOfRounds(rows) }
  })
}
