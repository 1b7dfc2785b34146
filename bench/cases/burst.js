// @ts-check
// Case 1, burst fan-out: N subscribers on one channel, M payloads of ~size bytes broadcast
// back to back. Time runs from just before the first broadcast (server clock) to the moment
// the last subscriber got its last message (client clock; both are CLOCK_MONOTONIC).
// Reports deliveries/s = N*M / that time, and the server's CPU time per delivery.
import { withProcesses, connectClients } from '../lib/procs.js'
import { medianOfRounds } from '../lib/stats.js'

/**
 * @param {import('../run.js').Ctx} ctx
 * @param {import('../lib/variants.js').Variant} variant
 */
export async function burst (ctx, variant) {
  const { n, messages, size, rounds, warmup } = ctx.config.burst
  return withProcesses(variant, {}, async (p) => {
    await connectClients(p, variant, n)
    /** @type {Array<Record<string, number>>} */
    const measured = []
    for (let r = 0; r < warmup + rounds; r++) {
      await p.client.call('arm', { mode: 'count', perSocket: messages })
      const sent = await p.server.call('burst', { channel: 'bench', event: 'tick', count: messages, size }, 60000)
      const got = await p.client.call('wait', { timeoutMs: 60000 }, 65000)
      const cpu = await p.server.call('cpu')
      if (!got.complete) throw new Error(`burst round ${r}: ${got.delivered}/${got.expected} deliveries (${got.socketsDone}/${got.sockets} sockets complete, closes: ${got.unexpectedCloses} ${got.closeSamples.join('; ')})`)
      if (got.badLast || got.extra) throw new Error(`burst round ${r}: ${got.badLast} sockets got a wrong last message, ${got.extra} extra deliveries`)
      const ms = got.tLast - sent.t0
      const deliveries = n * messages
      const row = {
        deliveriesPerSec: deliveries / (ms / 1000),
        ms,
        loopMs: sent.tLoop - sent.t0,
        serverCpuUsPerDelivery: (cpu.cpuMs * 1000) / deliveries,
        serverKernelShare: cpu.cpuSystemMs / cpu.cpuMs,
        // Busy share of each process over the round: near 100 % for the client means the
        // load generator, not the server, set the pace.
        serverBusyPct: (cpu.cpuMs / ms) * 100,
        clientBusyPct: (got.cpuMs / ms) * 100
      }
      if (r >= warmup) measured.push(row)
      ctx.log(`  ${variant.label} burst ${r < warmup ? 'warm-up' : `round ${r - warmup + 1}`}: ${Math.round(row.deliveriesPerSec).toLocaleString('en-US')} deliveries/s (${ms.toFixed(1)} ms, server busy ${row.serverBusyPct.toFixed(0)} % (${(row.serverKernelShare * 100).toFixed(0)} % kernel), client busy ${row.clientBusyPct.toFixed(0)} %)`)
    }
    return { config: { n, messages, size }, rounds: measured, median: medianOfRounds(measured) }
  })
}
