#!/usr/bin/env node
// @ts-check
// The heartbeat bench: does the server's heartbeat show in the delivery latency?
// `node bench/heartbeat/run.js [--idle 10000] [--interval 2000] [--seconds 10] [--rounds 3]
// [--baseline path/to/other/dist/plugin/index.js]`. Needs `npm run build`.
//
// One server holds `--idle` idle sockets (from 4 client processes on 127.0.0.2-5; each answers
// pings, as browsers do) and pings them every `--interval` ms. 20 probe sockets get 50
// broadcasts a second for `--seconds`; reported: their delivery latency p50/p99/max, and the
// server's own event-loop delay p99/max over the same time. The same with the heartbeat of
// `--baseline` (another build, e.g. the one before the pings were spread over the interval),
// rounds interleaved. Also the CPU time of the server's longest `setImmediate` callbacks: the
// heartbeat runs each of its ticks in one, so the longest is what one tick costs. Without `--baseline` the second setting is this build with the heartbeat
// at an interval longer than the run (no tick at all): what the latency is without pings.
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import os from 'node:os'
import { spawnChild } from '../lib/rpc.js'
import { median } from '../lib/stats.js'

const { values: flags } = parseArgs({
  options: {
    idle: { type: 'string', default: '10000' },
    interval: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    baseline: { type: 'string' }
  }
})
const idle = Number(flags.idle)
const interval = Number(flags.interval)
const seconds = Number(flags.seconds)
const rate = 50
const probes = 20
const serverScript = fileURLToPath(new URL('./server.js', import.meta.url))
const clientScript = fileURLToPath(new URL('../clients/main.js', import.meta.url))
const thisBuild = fileURLToPath(new URL('../../dist/plugin/index.js', import.meta.url))

const settings = flags.baseline
  ? [{ label: 'this build', entry: thisBuild, heartbeat: interval }, { label: 'baseline build', entry: flags.baseline, heartbeat: interval }]
  : [{ label: `heartbeat ${interval} ms`, entry: thisBuild, heartbeat: interval }, { label: 'no tick during the run', entry: thisBuild, heartbeat: 3_600_000 }]

/** @param {{ label: string, entry: string, heartbeat: number }} setting */
async function open (setting) {
  const server = await spawnChild(serverScript, { name: `server ${setting.label}`, args: [setting.entry], cpu: 0 })
  const { port, path } = await server.call('start', { heartbeat: setting.heartbeat })
  const url = `ws://127.0.0.1:${port}${path}`
  const fillers = []
  for (let i = 0; i < 4; i++) {
    const client = await spawnChild(clientScript, { name: `idle ${i + 1}`, cpu: 1 })
    fillers.push(client)
  }
  await Promise.all(fillers.map((client, i) => client.call('connect', {
    kind: 'frames', url, n: Math.ceil(idle / 4), channel: 'idle', concurrency: 50, timeoutMs: 60000, localAddress: `127.0.0.${i + 2}`
  }, 600_000)))
  const probe = await spawnChild(clientScript, { name: 'probe', cpu: 1 })
  await probe.call('connect', { kind: 'frames', url, n: probes, channel: 'probe', concurrency: 10, timeoutMs: 30000 })
  return { setting, server, children: [server, ...fillers, probe], probe }
}

const sessions = []
console.log(`heartbeat bench: ${idle} idle sockets, heartbeat ${interval} ms, ${probes} probes at ${rate}/s for ${seconds} s; ` +
  `load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
try {
  for (const setting of settings) sessions.push(await open(setting))
  /** @type {Record<string, any[]>} */
  const rows = {}
  for (let r = 0; r < Number(flags.rounds); r++) {
    for (const s of r % 2 === 0 ? sessions : [...sessions].reverse()) {
      const count = seconds * rate
      await s.probe.call('arm', { mode: 'latency', perSocket: count })
      await s.server.call('mark')
      await s.server.call('paced', { count, rate }, (seconds + 30) * 1000)
      const got = await s.probe.call('wait', { timeoutMs: 30000 }, 60000)
      const delay = await s.server.call('delay')
      const row = {
        p50: got.latency?.p50,
        p99: got.latency?.p99,
        max: got.latency?.max,
        loopP99: delay.p99Ms,
        loopMax: delay.maxMs,
        longestTickMs: delay.longestImmediateMs,
        ticksOver5Ms: delay.immediatesOver5Ms,
        worstTicks: got.latency?.worstTicks
      }
      ;(rows[s.setting.label] ??= []).push(row)
      console.log(`  ${s.setting.label} round ${r + 1}: delivery p50 ${row.p50?.toFixed(2)} ms, p99 ${row.p99?.toFixed(2)} ms, max ${row.max?.toFixed(1)} ms; ` +
        `server event-loop delay p99 ${row.loopP99.toFixed(1)} ms, max ${row.loopMax.toFixed(1)} ms; ` +
        `longest setImmediate ${row.longestTickMs.toFixed(1)} ms CPU, ${row.ticksOver5Ms} over 5 ms`)
    }
  }
  console.log('\n| setting | delivery p50 ms | delivery p99 ms | delivery max ms | server loop delay p99 ms | max ms | longest tick, CPU ms | ticks over 5 ms |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const [label, list] of Object.entries(rows)) {
    const m = (/** @type {string} */ key) => median(list.map((row) => row[key])).toFixed(1)
    console.log(`| ${label} | ${m('p50')} | ${m('p99')} | ${m('max')} | ${m('loopP99')} | ${m('loopMax')} | ${m('longestTickMs')} | ${m('ticksOver5Ms')} |`)
  }
} finally {
  await Promise.all(sessions.flatMap((s) => s.children.map((child) => child.kill())))
}
