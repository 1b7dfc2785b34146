// @ts-check
// Case 4, inbound validated messages/s, variant (a) only: the same 'echo' handler registered
// with a TypeBox schema vs without one (two server processes). C connections each write
// M frames {"type":"message","event":"echo","data":{...}} at once, pre-encoded, WITHOUT an id:
// no ack is sent back, so the case measures parse + validate + dispatch only. The handler
// counts calls; time runs from the client's first write to the server's last handler call.
import { withProcesses, connectClients } from '../lib/procs.js'
import { medianOfRounds } from '../lib/stats.js'
import { echoData } from '../lib/echo.js'

/**
 * @param {import('../run.js').Ctx} ctx
 * @param {import('../lib/variants.js').Variant} variant
 */
export async function inbound (ctx, variant) {
  const { conns, perSocket, rounds, warmup } = ctx.config.inbound
  const frame = JSON.stringify({ type: 'message', event: 'echo', data: echoData })
  const expected = conns * perSocket
  /** @type {Record<string, any>} */
  const modes = {}
  for (const mode of /** @type {const} */ (['plain', 'schema'])) {
    modes[mode] = await withProcesses(variant, { inbound: mode }, async (p) => {
      await connectClients(p, variant, conns)
      /** @type {Array<Record<string, number>>} */
      const measured = []
      for (let r = 0; r < warmup + rounds; r++) {
        await p.server.call('inboundArm', { expected })
        const sent = await p.client.call('blast', { frame, perSocket }, 30000)
        const got = await p.server.call('inboundWait', { timeoutMs: 60000 }, 65000)
        if (got.count !== expected) throw new Error(`inbound ${mode} round ${r}: handler ran ${got.count}/${expected} times`)
        const ms = got.lastT - sent.tStart
        const row = { msgsPerSec: expected / (ms / 1000), ms, serverCpuUsPerMsg: (got.cpuMs * 1000) / expected }
        if (r >= warmup) measured.push(row)
        ctx.log(`  ${variant.label} inbound ${mode} ${r < warmup ? 'warm-up' : `round ${r - warmup + 1}`}: ${Math.round(row.msgsPerSec).toLocaleString('en-US')} msgs/s`)
      }
      return { rounds: measured, median: medianOfRounds(measured) }
    })
  }
  return { config: { conns, perSocket, frameBytes: Buffer.byteLength(frame) }, ...modes }
}
