#!/usr/bin/env node
// @ts-check
// The reconnect-storm bench: `node bench/storm/run.js [--clients 10000] [--procs 4] [--drain 0,1000]
// [--rounds 1] [--pin-b] [--json FILE]`. Needs `npm run build` (dist/) and Redis (BENCH_REDIS_URL, default
// redis://127.0.0.1:6379). See bench/README.md, "Reconnect storm".
//
// Two nodes (child processes) on one Redis, every channel `room-*` with history and presence.
// `--clients` bundled clients (dist/client) in `--procs` processes, each process from its own
// source address 127.0.0.2, .3, ... (a process holds one descriptor per client), behind an
// emulated load balancer (clients.js): user u subscribes to room-(u % rooms) and tracks itself
// there. Node B publishes `--rate` messages/s round robin over the rooms, each carrying its seq
// in its room and its send time.
//
// A round, for one `drainMs` (both nodes run with it):
//   fill      every client connects (to A or B at random), subscribes and tracks
//   before    `--before` s of steady traffic (the heartbeat ticks in it: `--heartbeat` ms)
//   storm     node A is restarted: fastify.close() (drainMs), then a new process on its port.
//             Timed until every client A had is subscribed again with `recovered: true`.
//   after     `--after` s more; then publishing stops and every client counts what it missed
//             (a gap in its room's seqs: lost) and got twice (duplicated).
// With `--drain 0,1000` the rounds of the two settings alternate (0 first, then 1000, ...).
//
// Node B's delivery latency is timed twice: at its load clients (which run at full CPU during a
// storm, so their figure holds their own wait too) and at a probe process (probe.js: 20 plain
// sockets straight to B, over every room, doing nothing else). `--pin-b` gives node B a CPU of
// its own (the probe shares it), everything else the others: B's figures then show its own work.
// `STORM_PROF=<dir>` writes CPU profiles of node B (<dir>) and of the first client process
// (<dir>/clients) when the round ends.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { canPin, spawnChild } from '../lib/rpc.js'
import { now } from '../lib/clock.js'
import { fdLimit } from '../lib/fds.js'
import { median, percentile } from '../lib/stats.js'
import { channelsEntry } from '../lib/variants.js'
import { redisCaseReady } from '../lib/redis-case.js'

const { values: flags } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    procs: { type: 'string', default: '4' },
    rooms: { type: 'string', default: '100' },
    rate: { type: 'string', default: '100' },
    drain: { type: 'string', default: '0,1000' },
    jitter: { type: 'string', default: '5000' },
    heartbeat: { type: 'string', default: '5000' },
    before: { type: 'string', default: '10' },
    after: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '25' },
    'timeout-seconds': { type: 'string', default: '120' },
    json: { type: 'string' },
    'pin-b': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (flags.help) {
  console.log('usage: node bench/storm/run.js [--clients 10000] [--procs 4] [--rooms 100] [--rate 100] [--drain 0,1000] [--jitter 5000] ' +
    '[--heartbeat 5000] [--before 10] [--after 5] [--rounds 1] [--concurrency 25] [--timeout-seconds 120] [--pin-b] [--json FILE]')
  process.exit(0)
}

const config = {
  clients: Number(flags.clients),
  procs: Number(flags.procs),
  rooms: Number(flags.rooms),
  rate: Number(flags.rate),
  drains: flags.drain.split(',').map(Number),
  reconnectJitter: Number(flags.jitter),
  heartbeat: Number(flags.heartbeat),
  beforeMs: Number(flags.before) * 1000,
  afterMs: Number(flags.after) * 1000,
  rounds: Number(flags.rounds),
  concurrency: Number(flags.concurrency),
  timeoutMs: Number(flags['timeout-seconds']) * 1000,
  pinB: flags['pin-b']
}

/**
 * With --pin-b, node B gets the last CPU to itself and every other child (node A, its restart,
 * the client processes) shares the others: B's latency then shows its own work, not its wait
 * for a CPU (Redis, a system service, is not pinned). Without it, nothing is pinned.
 */
const cpuCount = os.cpus().length
/** `--cpu-prof` into `dir` when STORM_PROF is set (node B, the first client process), else nothing. @param {string} dir */
const profiled = (dir) => process.env.STORM_PROF ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []
/** @param {string} name */
const cpuOf = (name) => !config.pinB || !canPin() || cpuCount < 2 ? null : name === 'node B' ? cpuCount - 1 : `0-${cpuCount - 2}`

const nodeScript = fileURLToPath(new URL('./node.js', import.meta.url))
const clientsScript = fileURLToPath(new URL('./clients.js', import.meta.url))
const probeScript = fileURLToPath(new URL('./probe.js', import.meta.url))
/** the probe's sockets, straight to node B: together they subscribe to every room */
const probeSockets = 20
const log = (/** @type {string} */ line) => console.log(line)
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Share of all CPUs' time spent busy over `ms`. @param {number} ms */
async function cpuBusyPct (ms) {
  const sum = () => os.cpus().reduce((acc, c) => {
    acc.idle += c.times.idle
    acc.total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq
    return acc
  }, { idle: 0, total: 0 })
  const a = sum()
  await sleep(ms)
  const b = sum()
  return b.total > a.total ? (1 - (b.idle - a.idle) / (b.total - a.total)) * 100 : 0
}

/**
 * CPU seconds Redis has used so far (user + system, from INFO cpu): Redis serves both nodes.
 * @param {Redis} redis
 */
async function redisCpuSeconds (redis) {
  const info = await redis.info('cpu')
  const field = (/** @type {string} */ name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN)
  return field('used_cpu_user') + field('used_cpu_sys')
}

/** p50/p99/max of `values` (unsorted). @param {number[]} values */
function spread (values) {
  const sorted = Float64Array.from(values).sort()
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN }
}

/**
 * The frames every client process received in one phase, by type, added up.
 * @param {{ frames: Record<string, Record<string, number>> }[]} results @param {string} phase
 */
function sumFrames (results, phase) {
  /** @type {Record<string, number>} */
  const total = {}
  for (const r of results) {
    for (const [type, n] of Object.entries(r.frames[phase] ?? {})) total[type] = (total[type] ?? 0) + n
  }
  return total
}

/** @param {number} drainMs @param {number} round */
async function runRound (drainMs, round) {
  /** @type {import('../lib/rpc.js').Child[]} */
  const children = []
  const prefix = `bench-storm-${randomBytes(4).toString('hex')}`
  const spawnNode = async (/** @type {string} */ name, /** @type {number} */ port) => {
    const node = await spawnChild(nodeScript, { name, cpu: cpuOf(name), nodeFlags: name === 'node B' ? profiled(`${process.env.STORM_PROF}`) : [] })
    children.push(node)
    const started = await node.call('start', { port, prefix, drainMs, heartbeat: config.heartbeat }, 30_000)
    return { node, port: /** @type {number} */ (started.port) }
  }
  try {
    const a = await spawnNode('node A', 0)
    const b = await spawnNode('node B', 0)
    const upstreams = [`ws://127.0.0.1:${a.port}`, `ws://127.0.0.1:${b.port}`]
    const procs = []
    for (let i = 0; i < config.procs; i++) {
      const proc = await spawnChild(clientsScript, { name: `clients ${i + 1}`, cpu: cpuOf('clients'), nodeFlags: ['--max-old-space-size=4096', ...(i === 0 ? profiled(`${process.env.STORM_PROF}/clients`) : [])] })
      children.push(proc)
      procs.push(proc)
    }
    // Light, so it may share node B's CPU when B has one of its own.
    const probe = await spawnChild(probeScript, { name: 'probe', cpu: cpuOf('node B') })
    children.push(probe)
    await probe.call('connect', { url: `${upstreams[1]}/ws`, rooms: config.rooms, sockets: probeSockets }, 30_000)
    const shares = procs.map((_, i) => Math.floor(config.clients / config.procs) + (i < config.clients % config.procs ? 1 : 0))

    // ---- fill
    const fillStart = now()
    const redisCpuAtFill = await redisCpuSeconds(redis)
    let firstUser = 0
    const fills = await Promise.all(procs.map((proc, i) => {
      const args = {
        n: shares[i],
        firstUser,
        upstreams,
        localAddress: `127.0.0.${i + 2}`,
        rooms: config.rooms,
        reconnectJitter: config.reconnectJitter,
        concurrency: config.concurrency
      }
      firstUser += shares[i]
      return proc.call('connect', args, 60_000 + shares[i] * 100)
    }))
    const fillMs = now() - fillStart
    const fillCpu = {
      clientsMs: fills.reduce((n, f) => n + f.cpuMs, 0),
      redisMs: (await redisCpuSeconds(redis) - redisCpuAtFill) * 1000
    }
    log(`  fill: ${config.clients} clients connected, subscribed and tracked in ${(fillMs / 1000).toFixed(1)} s`)

    // ---- before
    await b.node.call('publish', { rooms: config.rooms, rate: config.rate })
    await sleep(1000) // the publisher's first messages reach everyone
    const everyone = () => [a.node, b.node, probe, ...procs]
    await Promise.all(everyone().map((child) => child.call('phase', { name: 'before' })))
    await sleep(config.beforeMs)

    // ---- storm
    await Promise.all([b.node, probe, ...procs].map((child) => child.call('phase', { name: 'storm' })))
    const stormAt = now()
    const redisCpuAtStorm = await redisCpuSeconds(redis)
    await Promise.all(procs.map((proc) => proc.call('mark')))
    const closing = a.node.call('close', {}, 60_000)
    /** @type {{ node: import('../lib/rpc.js').Child, port: number } | undefined} */
    let restarted
    let restartedAt = 0
    const restart = closing.then(async (closed) => {
      await a.node.kill()
      try {
        restarted = await spawnNode('node A\'', a.port)
        restartedAt = now()
      } catch (err) {
        // The clients go on without it (the balancer sends them all to B): reported, not fatal.
        log(`  node A' did not start: ${/** @type {Error} */ (err).message.split('\n')[0]}`)
      }
      return closed
    })
    /** @type {any} */
    let status = { dropped: 0, back: 0, open: 0, clients: 0, maxRecoveredAt: 0 }
    let restartDone = false
    restart.then(() => { restartDone = true }, () => {})
    for (;;) {
      await sleep(250)
      const each = await Promise.all(procs.map((proc) => proc.call('status')))
      status = {
        clients: each.reduce((n, s) => n + s.clients, 0),
        open: each.reduce((n, s) => n + s.open, 0),
        dropped: each.reduce((n, s) => n + s.dropped, 0),
        back: each.reduce((n, s) => n + s.back, 0),
        maxRecoveredAt: Math.max(...each.map((s) => s.maxRecoveredAt))
      }
      if (restartDone && status.dropped > 0 && status.back === status.dropped && status.open === status.clients) break
      if (now() - stormAt > config.timeoutMs) {
        log(`  TIMEOUT: ${status.back} of ${status.dropped} dropped clients back, ${status.open} of ${status.clients} open`)
        break
      }
    }
    const closed = await restart
    const doneAt = now()
    const redisStormCpuMs = (await redisCpuSeconds(redis) - redisCpuAtStorm) * 1000

    // ---- after
    const nodesAfter = () => [b.node, ...(restarted ? [restarted.node] : [])]
    await Promise.all([...nodesAfter(), probe, ...procs].map((child) => child.call('phase', { name: 'after' })))
    await sleep(config.afterMs)
    const published = await b.node.call('stopPublishing')
    await sleep(2000) // the last publications reach every client
    await Promise.all([...nodesAfter()].map((child) => child.call('phase', { name: 'end' })))
    const results = await Promise.all(procs.map((proc) => proc.call('finish', { seqs: published.seqs }, 60_000)))
    const probed = await probe.call('finish')
    const probeBefore = spread(probed.samples.before ?? [])
    const probeStorm = spread(probed.samples.storm ?? [])
    const bStats = await b.node.call('stats')
    const restartedStats = restarted ? await restarted.node.call('stats') : { phases: [] }

    // ---- figures
    const recoveries = results.flatMap((r) => r.recoveries)
    const recoveryMs = recoveries.filter((r) => r.recoveredAt !== 0).map((r) => r.recoveredAt - stormAt)
    const latency = (/** @type {string} */ phase, /** @type {number} */ node) => spread(results.flatMap((r) => r.samples[phase]?.[node] ?? []))
    const phaseOf = (/** @type {any} */ stats, /** @type {string} */ name) => stats.phases.find((/** @type {any} */ p) => p.name === name) ?? {}
    const bBefore = phaseOf(bStats, 'before')
    const bStorm = phaseOf(bStats, 'storm')
    const closeBefore = phaseOf(closed, 'before')
    // The fill: from each node's start to the `before` phase (connects, subscribes, tracks).
    const nodesFillCpuMs = phaseOf(closed, 'start').cpuMs + phaseOf(bStats, 'start').cpuMs
    const row = {
      drainMs,
      round,
      clients: config.clients,
      fillSeconds: fillMs / 1000,
      fillPerClientMs: {
        nodes: nodesFillCpuMs / config.clients,
        clients: fillCpu.clientsMs / config.clients,
        redis: fillCpu.redisMs / config.clients
      },
      droppedClients: status.dropped,
      recoveredClients: status.back,
      recoveredFalse: results.reduce((n, r) => n + r.recoveredFalse, 0),
      allRecoveredSeconds: (status.maxRecoveredAt - stormAt) / 1000,
      recoveryP50Seconds: spread(recoveryMs).p50 / 1000,
      recoveryP99Seconds: spread(recoveryMs).p99 / 1000,
      closeSeconds: (closed.closedAt - closed.closingAt) / 1000,
      closeDisconnects: closed.disconnects,
      closeFinishes: closed.finishes,
      restartedAfterSeconds: (restartedAt - stormAt) / 1000,
      lost: results.reduce((n, r) => n + r.lost, 0),
      duplicated: results.reduce((n, r) => n + r.duplicated, 0),
      publications: published.seqs.reduce((/** @type {number} */ n, /** @type {number} */ s) => n + s, 0),
      publishFailures: published.failures,
      connectsWhileClosing: closed.whileClosing.connects,
      upgradesRefusedWhileClosing: closed.whileClosing.refusedUpgrades,
      clientSawRefusedUpgrade: results.reduce((n, r) => n + r.counts.refusedAtUpgrade[0] + r.counts.refusedAtUpgrade[1], 0),
      failovers: results.reduce((n, r) => n + r.counts.failovers, 0),
      probeLatencyBefore: probeBefore,
      probeLatencyStorm: probeStorm,
      probeP99StormOverBefore: probeStorm.p99 / probeBefore.p99,
      probeSocketsClosed: probed.closed,
      bLatencyBefore: latency('before', 1),
      bLatencyStorm: latency('storm', 1),
      aLatencyBefore: latency('before', 0),
      bP99StormOverBefore: latency('storm', 1).p99 / latency('before', 1).p99,
      bLoopDelayBefore: { p99: bBefore.loopDelayP99Ms, max: bBefore.loopDelayMaxMs },
      bLoopDelayStorm: { p99: bStorm.loopDelayP99Ms, max: bStorm.loopDelayMaxMs },
      aLoopDelayBefore: { p99: closeBefore.loopDelayP99Ms, max: closeBefore.loopDelayMaxMs },
      bSocketsAfterStorm: phaseOf(bStats, 'after').sockets,
      restartedSocketsAfterStorm: phaseOf(restartedStats, 'after').sockets,
      bPeakRssMb: Math.max(...bStats.phases.map((/** @type {any} */ p) => p.peakRssMb ?? 0)),
      restartedPeakRssMb: Math.max(0, ...restartedStats.phases.map((/** @type {any} */ p) => p.peakRssMb ?? 0)),
      clientsPeakRssMb: results.reduce((n, r) => n + r.peakRssMb, 0),
      bStormCpuMs: bStorm.cpuMs,
      bStormMs: bStorm.ms,
      clientsCpuMsSinceStorm: results.reduce((n, r) => n + r.cpuMs, 0),
      clientFramesStorm: sumFrames(results, 'storm'),
      redisStormCpuMs,
      clientsLoopDelayMaxMs: Math.max(...results.map((r) => r.loopDelayMaxMs)),
      stormSeconds: (doneAt - stormAt) / 1000
    }
    log(`  drainMs ${drainMs}: ${row.recoveredClients}/${row.droppedClients} back in ${row.allRecoveredSeconds.toFixed(2)} s ` +
      `(p50 ${row.recoveryP50Seconds.toFixed(2)} s), lost ${row.lost}, duplicated ${row.duplicated}, recovered:false ${row.recoveredFalse}; ` +
      `B p99 at the probe ${row.probeLatencyBefore.p99.toFixed(1)} → ${row.probeLatencyStorm.p99.toFixed(1)} ms (${row.probeP99StormOverBefore.toFixed(2)}x), ` +
      `at its load clients ${row.bLatencyBefore.p99.toFixed(1)} → ${row.bLatencyStorm.p99.toFixed(1)} ms (${row.bP99StormOverBefore.toFixed(2)}x); ` +
      `refused by the closing node: ${row.connectsWhileClosing + row.upgradesRefusedWhileClosing}`)
    return row
  } finally {
    if (process.env.STORM_PROF) {
      await Promise.all(children.map((child) => child.call('exit', {}, 5000).catch(() => {})))
      await sleep(5000)
    }
    await Promise.all(children.map((child) => child.kill()))
  }
}

// ---- main ----------------------------------------------------------------------------------------

const ready = await redisCaseReady({ config: /** @type {any} */ ({}), log, notes: [] })
if ('skipped' in ready) process.exit(0)
if (!existsSync(fileURLToPath(new URL('../../dist/client/index.js', import.meta.url))) || !existsSync(fileURLToPath(channelsEntry()))) {
  log('SKIPPED — build first: npm run build')
  process.exit(0)
}
const perProc = Math.ceil(config.clients / config.procs)
if (perProc + 200 > fdLimit()) {
  log(`--procs ${config.procs} puts ${perProc} clients in one process; the open-files limit is ${fdLimit()}: use more --procs`)
  process.exit(1)
}
const redis = new Redis(ready.redisUrl, { lazyConnect: true })
await redis.connect()
const busy = await cpuBusyPct(1000)
const machine = { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg(), busyPctBefore: busy }
log(`reconnect storm: ${config.clients} clients in ${config.procs} processes, ${config.rooms} rooms, ${config.rate} publications/s, ` +
  `jitter ${config.reconnectJitter} ms, heartbeat ${config.heartbeat} ms; drainMs ${config.drains.join(' vs ')}, ${config.rounds} round(s)`)
log(`machine: ${machine.cpus} CPUs, load average ${machine.loadavg.map((l) => l.toFixed(1)).join(' ')}, ${busy.toFixed(0)} % busy before the run` +
  (cpuOf('node B') === null ? '' : `; node B alone on CPU ${cpuOf('node B')}, the other processes on ${cpuOf('clients')}`))

/** @type {any[]} */
const rows = []
for (let r = 0; r < config.rounds; r++) {
  for (const drainMs of config.drains) {
    try {
      rows.push(await runRound(drainMs, r + 1))
    } catch (err) {
      log(`  drainMs ${drainMs}, round ${r + 1}: ERROR ${/** @type {Error} */ (err).message}`)
      rows.push({ drainMs, round: r + 1, error: /** @type {Error} */ (err).message })
    }
    await sleep(2000) // the kernel reaps the closed sockets
  }
}

// One column per drainMs: the median over its rounds of each figure.
const fields = [
  ['clients dropped by the restart', 'droppedClients', 0],
  ['all back and recovered, s after the restart', 'allRecoveredSeconds', 2],
  ['recovered, p50 s', 'recoveryP50Seconds', 2],
  ['recovered: false', 'recoveredFalse', 0],
  ['messages lost', 'lost', 0],
  ['messages duplicated', 'duplicated', 0],
  ['connects refused by the closing node (503 or 101 then 1001)', 'refused', 0],
  ['connects failed over (refused by the kernel, sent to the other node)', 'failovers', 0],
  ['node A fastify.close(), s', 'closeSeconds', 2],
  ['node B delivery at the probe, p50 ms, before', 'probeP50Before', 1],
  ['node B delivery at the probe, p50 ms, storm', 'probeP50Storm', 1],
  ['node B delivery at the probe, p99 ms, before', 'probeP99Before', 1],
  ['node B delivery at the probe, p99 ms, storm', 'probeP99Storm', 1],
  ['node B delivery at the probe, p99 storm / before', 'probeP99StormOverBefore', 2],
  ['node B delivery at its load clients, p50 ms, before', 'bP50Before', 1],
  ['node B delivery at its load clients, p50 ms, storm', 'bP50Storm', 1],
  ['node B delivery at its load clients, p99 ms, before', 'bP99Before', 1],
  ['node B delivery at its load clients, p99 ms, storm', 'bP99Storm', 1],
  ['node B delivery at its load clients, p99 storm / before', 'bP99StormOverBefore', 2],
  ['node B event-loop delay max ms, before', 'bLoopMaxBefore', 1],
  ['node B event-loop delay max ms, storm', 'bLoopMaxStorm', 1],
  ['node B peak RSS MB', 'bPeakRssMb', 0],
  ['node B CPU s during the storm', 'bStormCpuSeconds', 2],
  ['client processes CPU s, restart to end', 'clientsCpuSeconds', 2],
  ['Redis CPU s, restart to all back', 'redisStormCpuSeconds', 2],
  ['frames to the clients from the restart to the end: messages (tick)', 'framesTick', 0],
  ['… presence_diff', 'framesPresenceDiff', 0],
  ['… every other type (welcome, subscribed, presence, replies)', 'framesOther', 0],
  ['fill: CPU ms per client, both nodes', 'fillNodesMs', 2],
  ['fill: CPU ms per client, client processes', 'fillClientsMs', 2],
  ['fill: CPU ms per client, Redis', 'fillRedisMs', 2]
]
/** @param {any} row */
const flat = (row) => ({
  ...row,
  refused: row.connectsWhileClosing + row.upgradesRefusedWhileClosing,
  probeP50Before: row.probeLatencyBefore?.p50,
  probeP50Storm: row.probeLatencyStorm?.p50,
  probeP99Before: row.probeLatencyBefore?.p99,
  probeP99Storm: row.probeLatencyStorm?.p99,
  bP50Before: row.bLatencyBefore?.p50,
  bP50Storm: row.bLatencyStorm?.p50,
  bP99Before: row.bLatencyBefore?.p99,
  bP99Storm: row.bLatencyStorm?.p99,
  bLoopMaxBefore: row.bLoopDelayBefore?.max,
  bLoopMaxStorm: row.bLoopDelayStorm?.max,
  bStormCpuSeconds: row.bStormCpuMs / 1000,
  clientsCpuSeconds: row.clientsCpuMsSinceStorm / 1000,
  redisStormCpuSeconds: row.redisStormCpuMs / 1000,
  framesTick: row.clientFramesStorm?.message,
  framesPresenceDiff: row.clientFramesStorm?.presence_diff,
  framesOther: Object.entries(row.clientFramesStorm ?? {}).reduce((n, [type, count]) => type === 'message' || type === 'presence_diff' ? n : n + count, 0),
  fillNodesMs: row.fillPerClientMs?.nodes,
  fillClientsMs: row.fillPerClientMs?.clients,
  fillRedisMs: row.fillPerClientMs?.redis
})
const columns = config.drains.map((drainMs) => rows.filter((row) => row.drainMs === drainMs && row.error === undefined).map(flat))
log(`\n| figure | ${config.drains.map((d) => `drainMs ${d}`).join(' | ')} |`)
log(`|---|${config.drains.map(() => '---:').join('|')}|`)
for (const [label, key, digits] of fields) {
  log(`| ${label} | ${columns.map((col) => {
    const value = median(col.map((row) => row[key]))
    return Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: Number(digits), maximumFractionDigits: Number(digits) }) : 'n/a'
  }).join(' | ')} |`)
}

const out = { config, machine, machineAfter: { loadavg: os.loadavg() }, rows }
const file = flags.json ?? fileURLToPath(new URL('../results/storm-latest.json', import.meta.url))
mkdirSync(dirname(file), { recursive: true })
writeFileSync(file, JSON.stringify(out, null, 2))
log(`\nwritten to ${file}`)
redis.disconnect()
