#!/usr/bin/env node
// @ts-check
// Presence benchmark: `node bench/presence/run.js [--n 1000] [--observers 3] [--churn-seconds 3]
// [--json FILE]`. Needs `npm run build` (dist/) and, for the Redis rows, Redis on REDIS_URL.
//
// 1. Crowd: N sockets subscribe to one presence channel and track at once; O observers (on
//    another node for Redis) count the presence frames and bytes they get until their folded
//    state has N keys, and the time from the first join sent to that moment; then every tracker
//    closes and the same is measured until the state is empty. Server memory (RSS and heap, after
//    a GC) before and after the crowd joined; for Redis also the MEMORY USAGE of the channel's hash.
// 2. Churn: C sockets subscribe/unsubscribe in a loop for S seconds: a plain channel (no
//    presence), a presence channel, and a presence channel with a track on every join;
//    five interleaved rounds. Reported: the median joins per second, and the median over rounds
//    of each round's ratio to plain.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { startNode } from './nodes.js'
import { Redis } from 'ioredis'

const { values: flags } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    observers: { type: 'string', default: '3' },
    churners: { type: 'string', default: '50' },
    'churn-seconds': { type: 'string', default: '2' },
    json: { type: 'string' }
  }
})
const N = Number(flags.n)
const O = Number(flags.observers)
const C = Number(flags.churners)
const churnMs = Number(flags['churn-seconds']) * 1000
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** @typedef {import('./nodes.js').Node} Node */

/** A raw socket: resolves after the welcome. @returns {Promise<WebSocket>} */
function open (/** @type {number} */ port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
    ws.once('message', () => resolve(ws))
    ws.once('error', reject)
  })
}

/** Folds presence frames of `channel`; counts frames and bytes. */
class Observer {
  /** @param {WebSocket} ws @param {string} channel */
  constructor (ws, channel) {
    this.ws = ws
    /** @type {Map<string, Set<string>>} */
    this.state = new Map()
    this.frames = 0
    this.bytes = 0
    /** @type {(() => void) | undefined} */
    this.onChange = undefined
    ws.on('message', (/** @type {Buffer} */ data) => {
      const frame = JSON.parse(data.toString())
      if ((frame.type !== 'presence' && frame.type !== 'presence_diff') || frame.channel !== channel) return
      this.frames++
      this.bytes += data.length
      if (frame.type === 'presence') this.state = new Map()
      for (const [key, entries] of Object.entries(frame.leaves ?? {})) {
        const refs = this.state.get(key)
        for (const { ref } of /** @type {any[]} */ (entries)) refs?.delete(ref)
        if (refs?.size === 0) this.state.delete(key)
      }
      for (const [key, entries] of Object.entries(frame.joins ?? frame.state)) {
        let refs = this.state.get(key)
        if (refs === undefined) this.state.set(key, refs = new Set())
        for (const { ref } of /** @type {any[]} */ (entries)) refs.add(ref)
      }
      this.onChange?.()
    })
  }

  /** @param {(size: number) => boolean} done */
  until (done, timeoutMs = 60000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`observer stuck at ${this.state.size} keys`)), timeoutMs)
      const check = () => { if (done(this.state.size)) { clearTimeout(timer); this.onChange = undefined; resolve(undefined) } }
      this.onChange = check
      check()
    })
  }
}

async function subscribed (/** @type {WebSocket} */ ws, /** @type {string} */ channel) {
  await new Promise((resolve) => {
    const on = (/** @type {Buffer} */ data) => {
      const frame = JSON.parse(data.toString())
      if (frame.type === 'subscribed' && frame.channel === channel) { ws.off('message', on); resolve(undefined) }
    }
    ws.on('message', on)
    ws.send(JSON.stringify({ type: 'subscribe', channel, id: 1 }))
  })
}

/** One crowd run: trackers on `trackerNode`, observers on `observerNode`. */
async function crowd (/** @type {Node} */ trackerNode, /** @type {Node} */ observerNode, /** @type {string} */ label, /** @type {string} */ prefix) {
  const channel = `crowd-${randomBytes(4).toString('hex')}`
  const observers = []
  for (let i = 0; i < O; i++) {
    const ws = await open(observerNode.port)
    const observer = new Observer(ws, channel)
    await subscribed(ws, channel)
    observers.push(observer)
  }
  const trackers = []
  for (let i = 0; i < N; i++) trackers.push(await open(trackerNode.port))
  const before = await trackerNode.ask('memory')
  const started = performance.now()
  for (const [i, ws] of trackers.entries()) {
    ws.send(JSON.stringify({ type: 'subscribe', channel }))
    ws.send(JSON.stringify({ type: 'message', event: 'join', channel, data: { key: `user-${i}`, meta: { name: `User ${i}`, device: 'web' } } }))
  }
  const joinTimes = await Promise.all(observers.map(async (o) => { await o.until((n) => n === N); return performance.now() - started }))
  const joinFrames = observers.map((o) => o.frames - 1) // minus the initial empty presence frame
  const joinBytes = observers.map((o) => o.bytes)
  const after = await trackerNode.ask('memory')
  let redisBytes
  if (prefix !== '') {
    const redis = new Redis(redisUrl)
    redisBytes = await redis.call('MEMORY', 'USAGE', `${prefix}:presence:{${channel}}`, 'SAMPLES', '0')
    redis.disconnect()
  }
  for (const o of observers) { o.frames = 0; o.bytes = 0 }
  const leaveStart = performance.now()
  for (const ws of trackers) ws.terminate()
  const leaveTimes = await Promise.all(observers.map(async (o) => { await o.until((n) => n === 0); return performance.now() - leaveStart }))
  const result = {
    label,
    n: N,
    join: { frames: Math.max(...joinFrames), bytes: Math.max(...joinBytes), ms: Math.round(Math.max(...joinTimes)) },
    leave: { frames: Math.max(...observers.map((o) => o.frames)), bytes: Math.max(...observers.map((o) => o.bytes)), ms: Math.round(Math.max(...leaveTimes)) },
    serverMemory: {
      rssDeltaMB: +((after.usage.rss - before.usage.rss) / 1048576).toFixed(1),
      heapDeltaMB: +((after.usage.heapUsed - before.usage.heapUsed) / 1048576).toFixed(1)
    },
    redisHashBytes: redisBytes
  }
  for (const o of observers) o.ws.terminate()
  return result
}

/** Subscribe/unsubscribe in a loop on C sockets for churnMs; returns joins per second. */
async function churn (/** @type {Node} */ node, /** @type {'plain' | 'presence' | 'tracked'} */ mode) {
  const channel = mode === 'plain' ? 'plain-channel' : `churn-${mode}`
  const sockets = await Promise.all(Array.from({ length: C }, () => open(node.port)))
  let joins = 0
  const deadline = performance.now() + churnMs
  await Promise.all(sockets.map(async (ws, i) => {
    let id = 1
    /** @type {((frame: any) => void) | undefined} */
    let waiter
    ws.on('message', (/** @type {Buffer} */ data) => waiter?.(JSON.parse(data.toString())))
    const answer = (/** @type {number} */ want) => new Promise((resolve) => { waiter = (f) => { if (f.id === want) resolve(f) } })
    while (performance.now() < deadline) {
      let want = ++id
      let answered = answer(want)
      ws.send(JSON.stringify({ type: 'subscribe', channel, id: want }))
      await answered
      if (mode === 'tracked') {
        want = ++id
        answered = answer(want)
        ws.send(JSON.stringify({ type: 'message', event: 'join', channel, data: { key: `user-${i}` }, id: want }))
        await answered
      }
      want = ++id
      answered = answer(want)
      ws.send(JSON.stringify({ type: 'unsubscribe', channel, id: want }))
      await answered
      joins++
    }
  }))
  for (const ws of sockets) ws.terminate()
  return Math.round(joins / (churnMs / 1000))
}

const results = { machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, n: N, observers: O, crowd: /** @type {any[]} */ ([]), churn: /** @type {Record<string, any>} */ ({}) }

const memoryNode = await startNode('memory', '')
results.crowd.push(await crowd(memoryNode, memoryNode, 'memory broker (one node)', ''))

let redisOk = true
try {
  const probe = new Redis(redisUrl, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true })
  probe.on('error', () => {})
  await probe.connect()
  probe.disconnect()
} catch { redisOk = false }
const nodes = [memoryNode]
if (redisOk) {
  const prefix = `bench-presence-${randomBytes(4).toString('hex')}`
  const a = await startNode('redis', prefix)
  const b = await startNode('redis', prefix)
  nodes.push(a, b)
  results.crowd.push(await crowd(a, b, 'redis broker (trackers on node A, observers on node B)', prefix))
} else {
  console.log(`Redis not reachable at ${redisUrl}: the Redis rows are skipped`)
}

// Churn on the memory node: `plain-*` channels there have no presence (the baseline).
/** @type {Record<string, number[]>} */
const rounds = { plain: [], presence: [], tracked: [] }
const order = /** @type {const} */ (['plain', 'presence', 'tracked'])
// Interleaved rounds, a different mode first each time, so a disturbance hits all of them.
for (let round = 0; round < 5; round++) {
  for (let i = 0; i < order.length; i++) {
    const mode = order[(i + round) % order.length]
    rounds[mode].push(await churn(memoryNode, mode))
  }
}
const median = (/** @type {number[]} */ xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
results.churn.rounds = rounds
results.churn.plain = median(rounds.plain)
results.churn.presence = median(rounds.presence)
results.churn.tracked = median(rounds.tracked)
// Ratios within each round (the modes of one round ran back to back), then their median.
const ratios = (/** @type {string} */ mode) => rounds[mode].map((value, i) => value / rounds.plain[i])
results.churn.ratios = {
  presenceToPlain: +median(ratios('presence')).toFixed(2),
  trackedToPlain: +median(ratios('tracked')).toFixed(2)
}
for (const node of nodes) await node.ask('close')

if (results.crowd.length === 2) {
  const [m, r] = results.crowd
  results.crowd.push({ label: 'ratio redis / memory', join: { frames: +(r.join.frames / m.join.frames).toFixed(2), bytes: +(r.join.bytes / m.join.bytes).toFixed(2), ms: +(r.join.ms / m.join.ms).toFixed(2) } })
}
console.log(JSON.stringify(results, null, 2))
if (flags.json !== undefined) writeFileSync(flags.json, JSON.stringify(results, null, 2))
