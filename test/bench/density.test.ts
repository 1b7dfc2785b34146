/**
 * The density bench case runs end to end in a small size (100 connections, plugin and
 * hand-written loop): every figure comes out finite, the server saw every connection, the
 * broadcast reached all of them. A smoke test of the harness, not a measurement: the figures
 * themselves are for bench/README.md. (Like every run, it rewrites bench/results/latest.json.)
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { within } from '../helpers/deadline.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const built = join(root, 'dist', 'plugin', 'index.js')

t.test('node bench/run.js --quick --cases density runs and reports every figure', {
  skip: existsSync(built) ? false : 'dist/plugin/index.js is not built (npm run build)'
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'density-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'run.json')
  const child = spawn(process.execPath, ['bench/run.js', '--quick', '--cases', 'density', '--variants', 'a,b', '--json', out, '--max-minutes', '4'], {
    cwd: root,
    env: { ...process.env, BENCH_DENSITY_N: '100' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  // Inside tap's 300 s file timeout, past the run's own --max-minutes 4.
  const code = await within(new Promise<number | null>((resolve) => child.once('exit', resolve)), 270_000, 'the quick density run exits')
  t.equal(code, 0, `the run succeeds:\n${output}`)
  const results = JSON.parse(readFileSync(out, 'utf8')) as { cases: { density: Record<string, { error?: string, median?: Record<string, number> }> } }
  for (const key of ['a', 'b']) {
    const r = results.cases.density[key]
    t.notOk(r.error, `variant ${key} has no error`)
    const m = r.median as Record<string, number>
    t.equal(m.connections, 100)
    for (const figure of ['heapPerConn', 'rssPerConn', 'acceptPerSec', 'httpP99Ms', 'broadcastCpuMs', 'deliveryP99Ms']) {
      t.ok(Number.isFinite(m[figure]), `${key} ${figure} is a number (${m[figure]})`)
    }
    t.ok(m.heapPerConn > 0, `${key}: connections cost heap`)
    t.ok(m.httpRequests > 0, `${key}: HTTP was probed while filling`)
    t.equal(m.httpFailures, 0, `${key}: no HTTP probe failed`)
  }
  t.match(output, /density {2}heap B\/conn \(N=100, 4096 B headers\)/, 'the table has the density rows')
})
