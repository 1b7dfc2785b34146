#!/usr/bin/env node
// @ts-check
// A large presence channel on NATS: `node bench/presence/large-nats.js [--members 3000]
// [--churners 20] [--seconds 3] [--rounds 3] [--base PATH] [--json FILE]`. Needs `npm run build`
// (dist/) and NATS with JetStream on NATS_URL (default nats://127.0.0.1:4222).
//
// Two nodes on NATS (bench/presence/server.js). `--members` sockets on node A track in one
// channel (small meta: a name and a device), and one observer on node B waits until it sees them
// all. Then `--churners` sockets on node A subscribe, track and unsubscribe in a loop for
// `--seconds`: each loop is a join and a leave of the channel's presence. Reported per build:
// loops per second, the bytes the presence bucket republished to the nodes per change (counted
// on a plain NATS subscription to the channel's presence subject), and CPU ms per change on
// node A (the writer) and node B (a receiver).
//
// `--base PATH` adds a second build (the `dist/plugin/index.js` of another checkout, e.g. before
// a change), run in alternating rounds with this one; each figure's ratio is then taken per
// round (the two builds' runs back to back) and its median reported.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { startNode } from './nodes.js'
import { connect } from '@nats-io/transport-node'
import { median } from '../lib/stats.js'

const { values: flags } = parseArgs({
  options: {
    members: { type: 'string', default: '3000' },
    churners: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    base: { type: 'string' },
    json: { type: 'string' }
  }
})
const members = Number(flags.members)
const churners = Number(flags.churners)
const churnMs = Number(flags.seconds) * 1000
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222'
const builds = [{ label: 'this build', entry: undefined }, ...(flags.base === undefined ? [] : [{ label: 'base', entry: flags.base }])]

/** @typedef {import('./nodes.js').Node} Node */

/** A raw socket with a frame handler; resolves after the welcome. @returns {Promise<{ ws: WebSocket, request: (frame: any) => Promise<any> }>} */
async function open (/** @type {number} */ port) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
  await new Promise((resolve, reject) => { ws.once('message', resolve); ws.once('error', reject) })
  /** @type {Map<number, (frame: any) => void>} */
  const answers = new Map()
  ws.on('message', (/** @type {Buffer} */ data) => {
    const frame = JSON.parse(data.toString())
    if (frame.id !== undefined) { answers.get(frame.id)?.(frame); answers.delete(frame.id) }
  })
  let id = 0
  const request = (/** @type {any} */ frame) => new Promise((resolve) => { const want = ++id; answers.set(want, resolve); ws.send(JSON.stringify({ ...frame, id: want })) })
  return { ws, request }
}

/** An observer's count of the channel's members, from its presence frames. */
async function observe (/** @type {number} */ port, /** @type {string} */ channel) {
  const { ws, request } = await open(port)
  const keys = new Set()
  ws.on('message', (/** @type {Buffer} */ data) => {
    const frame = JSON.parse(data.toString())
    if (frame.channel !== channel) return
    for (const key of Object.keys(frame.leaves ?? {})) keys.delete(key)
    for (const key of Object.keys(frame.joins ?? frame.state ?? {})) keys.add(key)
  })
  await request({ type: 'subscribe', channel })
  return { ws, keys }
}

const cpuMs = (/** @type {any} */ a, /** @type {any} */ b) => (b.usage.user + b.usage.system - a.usage.user - a.usage.system) / 1000

/** One round for one build: fresh nodes on a fresh prefix. */
async function round (/** @type {{ label: string, entry: string | undefined }} */ build) {
  const prefix = `bench-large-${randomBytes(4).toString('hex')}`
  const a = await startNode('nats', prefix, build.entry)
  const b = await startNode('nats', prefix, build.entry)
  const channel = 'crowd-lobby'
  const observer = await observe(b.port, channel)
  const crowd = []
  for (let i = 0; i < members; i++) crowd.push(await open(a.port))
  await Promise.all(crowd.map(async ({ request }, i) => {
    await request({ type: 'subscribe', channel })
    await request({ type: 'message', event: 'join', channel, data: { key: `member-${i}`, meta: { name: `Member ${i}`, device: 'web' } } })
  }))
  const until = Date.now() + 60_000
  while (observer.keys.size < members && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50))
  if (observer.keys.size < members) throw new Error(`${build.label}: node B saw ${observer.keys.size} of ${members} members`)

  const nc = await connect({ servers: natsUrl })
  let republished = 0
  // the prefix and the channel are letters, digits and "-": their subject tokens are themselves
  nc.subscribe(`${prefix}.c.crowd-lobby.p.>`, { callback: (_err, msg) => { republished += msg.data.length } })
  await nc.flush()
  const churning = await Promise.all(Array.from({ length: churners }, async () => await open(a.port)))
  const cpuA = await a.ask('cpu')
  const cpuB = await b.ask('cpu')
  let loops = 0
  const deadline = performance.now() + churnMs
  await Promise.all(churning.map(async ({ request }, i) => {
    while (performance.now() < deadline) {
      await request({ type: 'subscribe', channel })
      await request({ type: 'message', event: 'join', channel, data: { key: `churner-${i}`, meta: { name: `Churner ${i}`, device: 'web' } } })
      await request({ type: 'unsubscribe', channel })
      loops++
    }
  }))
  await new Promise((resolve) => setTimeout(resolve, 300)) // the last changes' republish
  const changes = loops * 2
  const result = {
    build: build.label,
    loopsPerSecond: Math.round(loops / (churnMs / 1000)),
    bytesPerChange: Math.round(republished / changes),
    cpuMsPerChangeA: +(cpuMs(cpuA, await a.ask('cpu')) / changes).toFixed(3),
    cpuMsPerChangeB: +(cpuMs(cpuB, await b.ask('cpu')) / changes).toFixed(3)
  }
  await nc.close()
  for (const { ws } of [...churning, ...crowd, observer]) ws.terminate()
  await a.ask('close')
  await b.ask('close')
  return result
}

/** @type {Record<string, any[]>} */
const runs = Object.fromEntries(builds.map((build) => [build.label, []]))
for (let r = 0; r < Number(flags.rounds); r++) {
  // alternating which build goes first
  for (const build of r % 2 === 0 ? builds : [...builds].reverse()) {
    const result = await round(build)
    runs[build.label].push(result)
    console.log(`round ${r + 1}: ${JSON.stringify(result)}`)
  }
}
const figures = /** @type {const} */ (['loopsPerSecond', 'bytesPerChange', 'cpuMsPerChangeA', 'cpuMsPerChangeB'])
/** @type {Record<string, any>} */
const summary = { members, churners, seconds: churnMs / 1000, rounds: Number(flags.rounds), medians: {}, ratios: {} }
for (const build of builds) summary.medians[build.label] = Object.fromEntries(figures.map((f) => [f, median(runs[build.label].map((run) => run[f]))]))
if (builds.length === 2) {
  for (const f of figures) summary.ratios[f] = +median(runs['this build'].map((run, i) => run[f] / runs.base[i][f])).toFixed(2)
}
console.log(JSON.stringify(summary, null, 2))
if (flags.json !== undefined) writeFileSync(flags.json, JSON.stringify({ summary, runs }, null, 2))
process.exit(0)
