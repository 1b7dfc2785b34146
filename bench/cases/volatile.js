// @ts-check
// Case 9, volatile sends, variant (a) only: `slow` subscribers that stopped reading get a flood
// of `count` broadcasts of `size` bytes, one per event-loop turn, with `{ volatile: true }` and
// without (bench/servers/volatile.js). Reported per mode, medians over rounds (the modes
// alternate): the peak growth of the server's Buffer memory during the flood, the growth at its
// end, and how many of the subscribers were closed as slow consumers (1013). Volatile frames
// are skipped while a socket has a queue, so its memory stays flat and nobody is closed; plain
// frames queue until each socket passes `maxBufferedBytes` and is closed.
import { fileURLToPath } from 'node:url'
import { openChildren, ratio } from '../lib/redis-case.js'
import { medianOfRounds } from '../lib/stats.js'

const serverScript = fileURLToPath(new URL('../servers/volatile.js', import.meta.url))

/** @param {import('../run.js').Ctx} ctx */
export async function volatile (ctx) {
  const cfg = ctx.config.volatile
  /** @type {{ volatile: Array<Record<string, number>>, plain: Array<Record<string, number>> }} */
  const measured = { volatile: [], plain: [] }
  /** @type {import('../lib/rpc.js').Child | undefined} */
  let server
  try {
    server = await openChildren(async (spawn) => await spawn(serverScript, { name: 'volatile server', cpu: 0, nodeFlags: ['--expose-gc'] }))
    await server.call('start', { maxBufferedBytes: cfg.maxBufferedBytes }, 30000)
    for (let r = 0; r < cfg.warmup + cfg.rounds; r++) {
      for (const mode of r % 2 ? ['plain', 'volatile'] : ['volatile', 'plain']) {
        const row = await server.call('flood', { volatile: mode === 'volatile', slow: cfg.slow, count: cfg.count, size: cfg.size }, 300000)
        const tag = r < cfg.warmup ? 'warm-up' : `round ${r - cfg.warmup + 1}`
        ctx.log(`  ${mode} ${tag}: peak +${row.peakMB.toFixed(1)} MB, end +${row.endMB.toFixed(1)} MB, ${row.closed}/${cfg.slow} slow consumers closed`)
        if (r >= cfg.warmup) measured[/** @type {'volatile' | 'plain'} */ (mode)].push(row)
      }
    }
  } catch (err) {
    const message = /** @type {Error} */ (err).message
    ctx.notes.push(`volatile: ${message}`)
    return { config: cfg, error: message }
  } finally {
    await server?.kill()
  }
  const v = medianOfRounds(measured.volatile)
  const p = medianOfRounds(measured.plain)
  return {
    config: cfg,
    volatile: { rounds: measured.volatile, median: v },
    plain: { rounds: measured.plain, median: p },
    ratios: { peakMemoryVolatileOverPlain: ratio(v.peakMB, p.peakMB) }
  }
}
