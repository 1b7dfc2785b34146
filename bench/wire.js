// @ts-check
// Wire efficiency, side by side in one run (issue 25). Each server variant runs in its own child
// process (pinned to CPU 0 when taskset exists; the clients run here, pinned to CPU 1), the rounds
// of the variants interleaved, figures are medians over rounds; compare the RATIOS, not the
// absolute figures (a shared machine).
//
//   node bench/wire.js [--quick] [--cases compression,paced,memory,burst] [--baseline <dir>]
//
// --baseline <dir>: the compression and memory cases also run "compression on" with the plugin
//              built in <dir> (a copy of an earlier dist/, inside this checkout so that its
//              imports resolve): a change against the code before it, side by side in one run.
//
// compression  1,000 subscribers whose clients offer permessage-deflate, 2 KB JSON documents:
//              bytes on the wire per delivery (what the clients' TCP sockets read) and server CPU
//              per delivery: channels plain / channels compression / Socket.IO perMessageDeflate.
// paced        2,000 subscribers, one publication every 10 ms: server CPU per delivery with
//              writeDelayMs 0 / 50 (and Socket.IO with deflate).
// memory       idle connections (clients offering deflate, each subscribed): server heap per
//              connection after full GC, compression off / on (and Socket.IO with deflate).
// burst        2,000 subscribers x 20 publications of ~100 bytes at once: server CPU per
//              delivery, channels / the "one frame, corked" limit (servers/corked.js).
import { fork, spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import WebSocket from 'ws'
import { io } from 'socket.io-client'

const self = fileURLToPath(import.meta.url)
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const casesArg = args.indexOf('--cases')
const cases = casesArg === -1 ? ['compression', 'paced', 'memory', 'burst'] : args[casesArg + 1].split(',')
const rounds = quick ? 2 : 4
const baselineArg = args.indexOf('--baseline')
const baseline = baselineArg === -1 ? undefined : new URL(`${args[baselineArg + 1].replace(/\/$/, '')}/plugin/index.js`, pathToFileURL(`${process.cwd()}/`)).href
/** The "compression on" variant with the baseline build, when one was given. */
const baselineVariants = baseline === undefined ? [] : [{ label: 'channels, compression on (baseline)', kind: 'channels', entry: baseline, options: { compression: true } }]

/** A 2 KB-ish JSON document that compresses like real data (repeated keys, varied values). */
export function document (bytes, seq) {
  const rows = []
  for (let i = 0; JSON.stringify(rows).length < bytes - 40; i++) {
    rows.push({ id: i, name: `player-${(i * 2654435761) % 9973}`, score: (i * 7919 + seq * 31) % 10007, online: i % 3 === 0 })
  }
  return { seq, rows }
}

// ---------------------------------------------------------------------------------------------
// server child

async function serve (variant) {
  const Fastify = (await import('fastify')).default
  const app = Fastify({ logger: false })
  /** @type {(data: unknown) => Promise<void> | void} */
  let publish
  if (variant.kind === 'channels') {
    const entry = variant.entry ?? process.env.BENCH_CHANNELS_ENTRY ?? new URL('../dist/plugin/index.js', import.meta.url).href
    const channels = (await import(entry)).default
    await app.register(channels, { client: false, rateLimit: false, heartbeat: false, maxChannels: 10, ...variant.options })
    publish = (data) => /** @type {any} */ (app).broadcastChannel('bench', data, { event: 'tick' })
  } else if (variant.kind === 'socketio') {
    const { Server } = await import('socket.io')
    const sio = new Server(app.server, { transports: ['websocket'], serveClient: false, perMessageDeflate: { threshold: 1024 } })
    sio.on('connection', (socket) => { socket.join('bench') })
    publish = (data) => { sio.to('bench').emit('tick', data) }
  } else {
    const corked = await import(pathToFileURL(new URL('./servers/corked.js', import.meta.url).pathname).href)
    publish = await corked.mount(app)
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = /** @type {import('node:net').AddressInfo} */ (app.server.address()).port
  let cpu = process.cpuUsage()
  process.on('message', async (/** @type {any} */ m) => {
    let reply
    if (m.cmd === 'burst') {
      const started = m.docs.map((/** @type {unknown} */ d) => publish(d))
      await Promise.all(started)
      reply = {}
    } else if (m.cmd === 'paced') {
      let i = 0
      await new Promise((resolve) => {
        const timer = setInterval(() => {
          const p = publish(m.docs[i % m.docs.length])
          if (p) p.catch(() => {})
          if (++i === m.count) { clearInterval(timer); resolve(undefined) }
        }, m.intervalMs)
      })
      reply = {}
    } else if (m.cmd === 'resetCpu') {
      cpu = process.cpuUsage()
      reply = {}
    } else if (m.cmd === 'cpu') {
      const used = process.cpuUsage(cpu)
      reply = { cpuUs: used.user + used.system }
    } else if (m.cmd === 'heap') {
      for (let i = 0; i < 6; i++) { globalThis.gc?.(); await new Promise((resolve) => setImmediate(resolve)) }
      reply = { heap: process.memoryUsage().heapUsed, external: process.memoryUsage().external, rss: process.memoryUsage().rss }
    }
    process.send?.({ id: m.id, ...reply })
  })
  process.send?.({ ready: true, port })
  process.on('disconnect', () => process.exit(0))
}

// ---------------------------------------------------------------------------------------------
// runner

const pin = spawnSync('taskset', ['-c', '1', 'true']).status === 0 && availableParallelism() > 1

async function startServer (variant) {
  const child = pin
    ? fork(self, ['--server', JSON.stringify(variant)], { execPath: 'taskset', execArgv: ['-c', '0', process.execPath, '--expose-gc'] })
    : fork(self, ['--server', JSON.stringify(variant)], { execArgv: ['--expose-gc'] })
  let nextId = 0
  /** @type {Map<number, (v: any) => void>} */
  const pending = new Map()
  const port = await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`server ${variant.label} exited with ${code}`)))
    child.on('message', (/** @type {any} */ m) => {
      if (m.ready) resolve(m.port)
      else pending.get(m.id)?.(m)
    })
  })
  return {
    variant,
    port,
    /** @param {Record<string, unknown>} m */
    call: (m) => new Promise((resolve) => { const id = ++nextId; pending.set(id, resolve); child.send({ ...m, id }) }),
    stop: () => { child.kill() }
  }
}

/** A client set: n subscribers; counts deliveries and the bytes their TCP sockets read. */
async function connectClients (server, n, { deflate = true } = {}) {
  const conns = []
  const state = { delivered: 0, waiters: /** @type {Array<() => void>} */ ([]) }
  const tick = () => { state.delivered++; if (state.waiters.length > 0 && state.delivered >= state.target) state.waiters.splice(0).forEach((f) => f()) }
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => new Promise((resolve, reject) => {
      if (server.variant.kind === 'socketio') {
        const socket = io(`http://127.0.0.1:${server.port}`, { transports: ['websocket'], forceNew: true, reconnection: false, perMessageDeflate: deflate ? { threshold: 1024 } : false })
        socket.on('tick', tick)
        socket.on('connect', () => {
          const ws = /** @type {any} */ (socket.io.engine.transport).ws
          conns.push({ bytes: () => ws._socket.bytesRead, close: () => socket.disconnect() })
          resolve(undefined)
        })
        socket.on('connect_error', reject)
      } else {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { perMessageDeflate: deflate })
        ws.on('message', (data) => {
          const text = data.toString()
          if (text.startsWith('{"type":"message"')) tick()
          else if (text.startsWith('{"type":"subscribed"')) resolve(undefined)
          else if (text.startsWith('{"type":"welcome"')) ws.send('{"type":"subscribe","channel":"bench","id":1}')
        })
        ws.on('error', reject)
        conns.push({ bytes: () => /** @type {any} */ (ws)._socket.bytesRead, close: () => ws.close() })
      }
    })))
  }
  return {
    /** Resolves once `count` more deliveries arrived. */
    expect (count) {
      state.target = state.delivered + count
      return new Promise((resolve) => { state.waiters.push(resolve) })
    },
    bytes: () => conns.reduce((sum, c) => sum + c.bytes(), 0),
    close: () => { for (const c of conns) c.close() }
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Interleaved rounds: each round runs every variant, a different one first. */
async function interleave (sessions, n, fn) {
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < sessions.length; k++) await fn(sessions[(r + k) % sessions.length], r)
  }
}

async function withSessions (variants, n, opts, fn) {
  const sessions = []
  try {
    for (const variant of variants) {
      const server = await startServer(variant)
      sessions.push({ server, clients: await connectClients(server, n, opts), rows: [] })
    }
    await fn(sessions)
  } finally {
    for (const s of sessions) { s.clients?.close(); s.server.stop() }
  }
  return sessions
}

function report (title, sessions, columns) {
  console.log(`\n${title}`)
  const base = sessions[0]
  for (const s of sessions) {
    const cells = columns.map(([name, key, digits]) => {
      const value = median(s.rows.map((row) => row[key]))
      const ratio = value / median(base.rows.map((row) => row[key]))
      return `${name} ${value.toFixed(digits)} (${ratio.toFixed(2)}x)`
    })
    console.log(`  ${s.server.variant.label.padEnd(34)} ${cells.join('   ')}`)
  }
}

async function compressionCase () {
  const n = quick ? 300 : 1000
  const count = quick ? 20 : 50
  const docs = Array.from({ length: count }, (_, i) => document(2048, i))
  console.log(`compression: ${n} subscribers offering deflate, ${count} documents of ${JSON.stringify(docs[0]).length} B per round`)
  const sessions = await withSessions([
    { label: 'channels, compression off', kind: 'channels', options: {} },
    { label: 'channels, compression on', kind: 'channels', options: { compression: true } },
    ...baselineVariants,
    { label: 'Socket.IO, perMessageDeflate', kind: 'socketio' }
  ], n, {}, async (sessions) => {
    await interleave(sessions, rounds + 1, async (s, r) => {
      const bytes0 = s.clients.bytes()
      await s.server.call({ cmd: 'resetCpu' })
      const arrived = s.clients.expect(n * count)
      await s.server.call({ cmd: 'burst', docs })
      await arrived
      const { cpuUs } = await s.server.call({ cmd: 'cpu' })
      if (r > 0) s.rows.push({ bytes: (s.clients.bytes() - bytes0) / (n * count), cpu: cpuUs / (n * count) })
    })
  })
  report('compression (ratios against channels, compression off)', sessions, [['bytes/delivery', 'bytes', 0], ['server CPU us/delivery', 'cpu', 2]])
}

async function pacedCase () {
  const n = quick ? 500 : 2000
  const count = quick ? 100 : 300
  const docs = Array.from({ length: 10 }, (_, i) => ({ seq: i, text: 'x'.repeat(80) }))
  console.log(`\npaced: ${n} subscribers, one publication every 10 ms, ${count} per round`)
  const sessions = await withSessions([
    { label: 'channels, writeDelayMs 0', kind: 'channels', options: {} },
    { label: 'channels, writeDelayMs 50', kind: 'channels', options: { writeDelayMs: 50 } }
  ], n, {}, async (sessions) => {
    await interleave(sessions, rounds, async (s) => {
      await s.server.call({ cmd: 'resetCpu' })
      const arrived = s.clients.expect(n * count)
      await s.server.call({ cmd: 'paced', docs, count, intervalMs: 10 })
      await arrived
      const { cpuUs } = await s.server.call({ cmd: 'cpu' })
      s.rows.push({ cpu: cpuUs / (n * count) })
    })
  })
  report('paced (ratios against writeDelayMs 0)', sessions, [['server CPU us/delivery', 'cpu', 3]])
}

async function memoryCase () {
  const n = quick ? 1000 : 5000
  console.log(`\nmemory: ${n} idle connections offering deflate, each subscribed`)
  const variants = [
    { label: 'channels, compression off', kind: 'channels', options: {} },
    { label: 'channels, compression on', kind: 'channels', options: { compression: true } },
    ...baselineVariants,
    { label: 'Socket.IO, perMessageDeflate', kind: 'socketio' }
  ]
  const rows = variants.map(() => /** @type {Array<{ heap: number, external: number }>} */ ([]))
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (r + k) % variants.length
      const server = await startServer(variants[v])
      const empty = await server.call({ cmd: 'heap' })
      const clients = await connectClients(server, n)
      // a few publications first, so that compression has been used on every socket
      const arrived = clients.expect(n * 3)
      await server.call({ cmd: 'burst', docs: [0, 1, 2].map((i) => document(2048, i)) })
      await arrived
      const full = await server.call({ cmd: 'heap' })
      rows[v].push({ heap: (full.heap - empty.heap) / n, external: (full.external - empty.external) / n })
      clients.close()
      server.stop()
    }
  }
  report('memory per idle connection (ratios against compression off)',
    variants.map((variant, v) => ({ server: { variant }, rows: rows[v] })), [['heap B', 'heap', 0], ['external B', 'external', 0]])
}

async function burstCase () {
  const n = quick ? 500 : 2000
  const count = 20
  const docs = Array.from({ length: count }, (_, i) => ({ seq: i, text: 'x'.repeat(80) }))
  console.log(`\nburst: ${n} subscribers x ${count} publications at once`)
  const sessions = await withSessions([
    { label: 'one frame, corked (limit)', kind: 'corked' },
    { label: 'channels', kind: 'channels', options: {} }
  ], n, { deflate: false }, async (sessions) => {
    await interleave(sessions, rounds * 2 + 1, async (s, r) => {
      await s.server.call({ cmd: 'resetCpu' })
      const arrived = s.clients.expect(n * count)
      await s.server.call({ cmd: 'burst', docs })
      await arrived
      const { cpuUs } = await s.server.call({ cmd: 'cpu' })
      if (r > 0) s.rows.push({ cpu: cpuUs / (n * count) })
    })
  })
  report('burst (ratios against the corked limit)', sessions, [['server CPU us/delivery', 'cpu', 3]])
}

if (args[0] === '--server') {
  await serve(JSON.parse(args[1]))
} else {
  console.log(`wire bench: ${rounds} rounds per variant, interleaved; ${pin ? 'server on CPU 0, clients on CPU 1' : 'not pinned'}`)
  const table = { compression: compressionCase, paced: pacedCase, memory: memoryCase, burst: burstCase }
  for (const name of cases) await table[name]()
  process.exit(0)
}
