#!/usr/bin/env node
// @ts-check
// The bench runner: `node bench/run.js [--quick] [--cases burst,paced,memory,inbound,crossnode,density,workers,connect,volatile]
// [--variants a,b,c] [--json out.json] [--max-minutes N]`.
// Starts every server and load client as a child process (see lib/procs.js), runs each case
// for each variant, prints a table of medians and ratios, and writes
// bench/results/latest.json (and --json, if given). See bench/README.md.
import { parseArgs } from 'node:util'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import os from 'node:os'
import { variants, channelsEntry } from './lib/variants.js'
import { canPin } from './lib/rpc.js'
import { fdLimit as readFdLimit } from './lib/fds.js'
import { computeRatios, formatTable } from './lib/report.js'
import { burst } from './cases/burst.js'
import { paced } from './cases/paced.js'
import { memory } from './cases/memory.js'
import { inbound } from './cases/inbound.js'
import { crossnode } from './cases/crossnode.js'
import { density } from './cases/density.js'
import { workers } from './cases/workers.js'
import { connect } from './cases/connect.js'
import { volatile } from './cases/volatile.js'

const configs = {
  full: {
    burst: { n: 1000, messages: 200, size: 100, rounds: 5, warmup: 1 },
    paced: { n: 1000, rate: 20, seconds: 5, size: 100, rounds: 5 },
    memory: { ns: [1000, 10000], rounds: 3 },
    inbound: { conns: 50, perSocket: 4000, rounds: 5, warmup: 2 },
    // n is capped below the open-files limit (see fdLimit below); 4 client processes hold a
    // quarter each, from 127.0.0.2-5.
    density: { n: 19000, clients: 4, headerBytes: 4096, concurrency: 50, probeMs: 20 },
    workers: { n: 2000, messages: 100, size: 100, rounds: 3, warmup: 1 },
    connect: { n: 2000, rounds: 11, warmup: 2, concurrency: 50 },
    volatile: { slow: 20, count: 2000, size: 16384, maxBufferedBytes: 4194304, rounds: 3, warmup: 1 }
  },
  quick: {
    burst: { n: 500, messages: 100, size: 100, rounds: 3, warmup: 1 },
    paced: { n: 500, rate: 20, seconds: 2, size: 100, rounds: 3 },
    memory: { ns: [1000], rounds: 1 },
    inbound: { conns: 20, perSocket: 5000, rounds: 3, warmup: 2 },
    density: { n: 600, clients: 2, headerBytes: 4096, concurrency: 20, probeMs: 20 },
    workers: { n: 300, messages: 50, size: 100, rounds: 1, warmup: 1 },
    connect: { n: 500, rounds: 3, warmup: 1, concurrency: 50 },
    volatile: { slow: 10, count: 1500, size: 16384, maxBufferedBytes: 4194304, rounds: 1, warmup: 0 }
  }
}

/** @typedef {{ config: typeof configs.full, log: (line: string) => void, notes: string[] }} Ctx */

const caseFns = { burst, paced, memory, inbound, density, connect }
const allCases = ['burst', 'paced', 'memory', 'inbound', 'crossnode', 'density', 'workers', 'connect', 'volatile']
const benchDir = dirname(fileURLToPath(import.meta.url))
const distEntry = fileURLToPath(channelsEntry())

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    cases: { type: 'string' },
    variants: { type: 'string' },
    json: { type: 'string' },
    'max-minutes': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

if (flags.help) {
  console.log('usage: node bench/run.js [--quick] [--cases burst,paced,memory,inbound,crossnode,density,workers,connect,volatile] [--variants a,b,c] [--json out.json] [--max-minutes N]')
  process.exit(0)
}

/** Share of all CPUs' time spent busy over `ms`, from os.cpus() counters. @param {number} ms */
async function cpuBusyPct (ms) {
  const sum = () => os.cpus().reduce((acc, c) => {
    const t = c.times
    acc.idle += t.idle
    acc.total += t.user + t.nice + t.sys + t.idle + t.irq
    return acc
  }, { idle: 0, total: 0 })
  const a = sum()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const b = sum()
  return b.total > a.total ? (1 - (b.idle - a.idle) / (b.total - a.total)) * 100 : 0
}

const log = (/** @type {string} */ line) => process.stdout.write(line + '\n')
const selectedCases = flags.cases ? flags.cases.split(',').map((s) => s.trim()).filter(Boolean) : allCases
for (const c of selectedCases) {
  if (!allCases.includes(c)) { console.error(`unknown case '${c}' (known: ${allCases.join(', ')})`); process.exit(2) }
}
const selectedVariants = flags.variants ? flags.variants.split(',').map((s) => s.trim()) : ['a', 'b', 'c']
const config = structuredClone(flags.quick ? configs.quick : configs.full)
/** @type {string[]} */
const notes = []

// BENCH_DENSITY_N: another N for the density case (test/bench/density.test.ts runs it small).
if (process.env.BENCH_DENSITY_N) config.density.n = Number(process.env.BENCH_DENSITY_N)

// Every connection costs one descriptor in the client and one in the server process.
const fdLimit = readFdLimit()
if (Number.isFinite(fdLimit)) {
  const maxN = fdLimit - 256
  const wanted = config.memory.ns
  config.memory.ns = [...new Set(wanted.map((n) => Math.min(n, maxN)))]
  if (wanted.some((n) => n > maxN)) {
    notes.push(`ulimit -n is ${fdLimit}: memory case capped at ${maxN} connections (wanted ${wanted.join(', ')}); raise the hard limit (ulimit -Hn, limits.conf) and rerun`)
  }
  // The density server holds every connection itself; its clients are spread over processes.
  const maxDensity = fdLimit - 500
  if (config.density.n > maxDensity) {
    notes.push(`ulimit -n is ${fdLimit}: density case capped at ${maxDensity} connections (wanted ${config.density.n})`)
    config.density.n = maxDensity
  }
  const perClient = Math.ceil(config.density.n / config.density.clients)
  if (perClient > fdLimit - 256) config.density.clients = Math.ceil(config.density.n / (fdLimit - 256))
}

/** @type {Record<string, { label: string, skipped?: string }>} */
const variantStatus = {}
for (const v of variants) variantStatus[v.key] = { label: v.label }
for (const key of ['a', 'b', 'c']) {
  if (!selectedVariants.includes(key)) variantStatus[key].skipped = 'not selected (--variants)'
}
if (!variantStatus.a.skipped && !existsSync(distEntry)) {
  variantStatus.a.skipped = `${distEntry} does not exist: build the plugin first (npm run build)`
}

// Other work on the machine (a test run, a build) skews every figure: measure how busy the
// CPUs are for one second before starting, and say so up front.
const machineBusyPct = await cpuBusyPct(1000)
if (machineBusyPct > 20) {
  notes.push(`the machine was ${machineBusyPct.toFixed(0)} % busy before the run started: other processes compete with the pinned server and client; rerun on an idle machine for figures to quote`)
}

const pinned = canPin() && os.availableParallelism() >= 2
if (!pinned) notes.push('taskset not available or fewer than 2 CPUs: processes are not pinned, figures are noisier')

const results = {
  meta: {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model,
    pinned: pinned ? 'server on CPU 0, load client on CPU 1' : 'no',
    mode: flags.quick ? 'quick' : 'full',
    fdLimit,
    machineBusyPctAtStart: Math.round(machineBusyPct),
    config
  },
  variants: variantStatus,
  notes,
  /** @type {Record<string, any>} */
  cases: {},
  /** @type {Record<string, any>} */
  ratios: {},
  errors: /** @type {string[]} */ ([])
}

/** @param {string} text */
function firstLines (text, n = 4) {
  const lines = String(text).split('\n')
  return lines.length > n ? [...lines.slice(0, n), `    ... (${lines.length - n} more lines in the JSON)`].join('\n') : text
}

function writeResults () {
  results.ratios = computeRatios(results.cases)
  const json = JSON.stringify(results, null, 2) + '\n'
  const latest = resolve(benchDir, 'results/latest.json')
  mkdirSync(dirname(latest), { recursive: true })
  writeFileSync(latest, json)
  if (flags.json) {
    mkdirSync(dirname(resolve(flags.json)), { recursive: true })
    writeFileSync(resolve(flags.json), json)
  }
  return latest
}

// The whole run is bounded: past the deadline, write what we have and exit (children are
// killed by the exit handler in lib/rpc.js).
const maxMinutes = Number(flags['max-minutes'] ?? (flags.quick ? 5 : 40))
const watchdog = setTimeout(() => {
  results.errors.push(`run aborted after ${maxMinutes} minutes (--max-minutes)`)
  console.error(`\nbench: aborted after ${maxMinutes} minutes; partial results in ${writeResults()}`)
  process.exit(1)
}, maxMinutes * 60_000)
watchdog.unref()

/** @type {Ctx} */
const ctx = { config, log, notes }

log(`fastify-channels bench (${results.meta.mode}) — node ${process.version}, ${results.meta.cpus} CPUs, pinned: ${results.meta.pinned}`)
for (const v of variants) if (variantStatus[v.key].skipped) log(`${v.label}: SKIPPED — ${variantStatus[v.key].skipped}`)
for (const note of notes) log(`note: ${note}`)

for (const caseName of selectedCases) {
  log(`\n# ${caseName}`)
  if (caseName === 'crossnode') {
    const r = await crossnode(ctx)
    if (r === null) log('  not implemented yet (bench/cases/crossnode.js)')
    else results.cases.crossnode = r
    continue
  }
  if (caseName === 'volatile') {
    const r = await volatile(ctx)
    if (r.error) results.errors.push(`volatile: ${r.error}`)
    results.cases.volatile = r
    continue
  }
  if (caseName === 'workers') {
    const r = await workers(ctx)
    if (r.skipped) log(`  SKIPPED — ${r.skipped}`)
    if (r.error) results.errors.push(`workers: ${r.error}`)
    results.cases.workers = r
    continue
  }
  const fn = caseFns[/** @type {keyof typeof caseFns} */ (caseName)]
  /** @type {Record<string, any>} */
  const byVariant = (results.cases[caseName] = {})
  const wanted = variants.filter((v) => caseName !== 'inbound' || v.key === 'a')
  for (const v of wanted) {
    const reason = variantStatus[v.key].skipped
    if (reason) byVariant[v.key] = { skipped: reason }
  }
  const active = wanted.filter((v) => !variantStatus[v.key].skipped)
  if (active.length === 0) { log('  nothing to run'); continue }
  try {
    Object.assign(byVariant, await fn(ctx, active))
  } catch (err) {
    // A bug in the harness itself: record it and go on with the next case.
    const message = /** @type {Error} */ (err).stack ?? String(err)
    for (const v of active) byVariant[v.key] = { error: message }
  }
  for (const v of active) {
    const r = byVariant[v.key]
    if (!r?.error) continue
    results.errors.push(`${caseName} ${v.label}: ${r.error}`)
    log(`  ${v.label}: ERROR ${firstLines(r.error)}`)
    // A server that cannot start will not start for the next case either.
    if (r.startFailure) variantStatus[v.key].skipped = r.error
  }
}

const latest = writeResults()
log('\n' + formatTable(results))
if (notes.length) log('\nnotes:\n' + notes.map((n) => `- ${n}`).join('\n'))
log('\nratios: a/b and a/c. Throughput (deliveries/s, msgs/s): above 1 means (a) is faster. Latency, CPU and memory: below 1 means (a) is better.')
log(`results: ${latest}${flags.json ? ` and ${resolve(flags.json)}` : ''}`)
if (results.errors.length) {
  log(`\n${results.errors.length} error(s):\n` + results.errors.map((e) => `- ${firstLines(e)}`).join('\n'))
  process.exitCode = 1
}
clearTimeout(watchdog)
