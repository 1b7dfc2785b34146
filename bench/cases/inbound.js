// @ts-check
// Case 4, inbound validated messages/s, variant (a) only: the same 'echo' handler registered
// with a TypeBox schema vs without one (two server processes, rounds alternate between them).
// C connections each write M frames {"type":"message","event":"echo","data":{...}} at once,
// pre-encoded, WITHOUT an id: no ack is sent back, so the case measures parse + validate +
// dispatch only. The handler counts its calls; time runs from the client's first write to
// the server's last handler call.
import { openSessions, closeSessions, interleave, connectClients } from '../lib/procs.js'
import { medianOfRounds } from '../lib/stats.js'
import { echoData } from '../lib/echo.js'

/**
 * @param {import('../run.js').Ctx} ctx
 * @param {import('../lib/variants.js').Variant[]} variants only (a) is used
 */
export async function inbound (ctx, variants) {
  const variant = variants.find((v) => v.key === 'a')
  if (!variant) return {}
  const { conns, perSocket, rounds, warmup } = ctx.config.inbound
  const frame = JSON.stringify({ type: 'message', event: 'echo', data: echoData })
  const expected = conns * perSocket
  const modes = /** @type {const} */ (['plain', 'schema'])
  /** @type {Record<string, Array<Record<string, number>>>} */
  const measured = { plain: [], schema: [] }

  /** @type {import('../lib/procs.js').Session[]} */
  const sessions = []
  try {
    for (const mode of modes) {
      sessions.push(...await openSessions([variant], { inbound: mode }, async (s) => { await connectClients(s, conns) }))
    }
    await interleave(sessions, warmup + rounds, async (s, r) => {
      const mode = modes[sessions.indexOf(s)]
      await s.server.call('inboundArm', { expected })
      const sent = await s.client.call('blast', { frame, perSocket }, 30000)
      const got = await s.server.call('inboundWait', { timeoutMs: 60000 }, 65000)
      if (got.count !== expected) throw new Error(`inbound ${mode} round ${r}: handler ran ${got.count}/${expected} times`)
      const ms = got.lastT - sent.tStart
      const row = { msgsPerSec: expected / (ms / 1000), ms, serverCpuUsPerMsg: (got.cpuMs * 1000) / expected }
      if (r >= warmup) measured[mode].push(row)
      ctx.log(`  ${variant.label} ${mode === 'schema' ? 'TypeBox schema' : 'no schema'} ${r < warmup ? 'warm-up' : `round ${r - warmup + 1}`}: ${Math.round(row.msgsPerSec).toLocaleString('en-US')} msgs/s (${row.serverCpuUsPerMsg.toFixed(2)} us CPU/msg)`)
    })
  } finally {
    await closeSessions(sessions)
  }
  const failed = sessions.find((s) => s.error)
  if (failed?.error) return { a: { error: failed.error.message, ...(/** @type {any} */ (failed.error).startFailure ? { startFailure: true } : {}) } }
  return {
    a: {
      config: { conns, perSocket, frameBytes: Buffer.byteLength(frame) },
      plain: { rounds: measured.plain, median: medianOfRounds(measured.plain) },
      schema: { rounds: measured.schema, median: medianOfRounds(measured.schema) }
    }
  }
}
