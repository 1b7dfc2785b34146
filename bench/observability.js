// @ts-check
// Observability costs, side by side in one run (issue 22). Each server variant runs in its own
// child process (pinned to CPU 0 when taskset exists; the clients run here, pinned to CPU 1), the
// rounds of the variants interleaved, figures are medians over rounds; compare the RATIOS, not
// the absolute figures (a shared machine). Loads the plugin from dist/: build first.
//
//   node bench/observability.js [--quick] [--cases burst,chat]
//
// burst  N subscribers x M publications at once from the server: server CPU per delivery.
// chat   C clients in one channel, each sends messages whose handler broadcasts them to the
//        channel (a handler run, a publication and C deliveries each): server CPU per delivery.
// events no sockets, in this process: what the events of one chat message cost (message
//        received, handler run, publication, delivery), with nobody subscribed, with the metrics
//        subscribed, with the metrics and spans (SDK) subscribed: ns per message. Steadier than
//        the socket cases on a busy machine, since it times only the code that differs.
//
// Variants (ratios against the first):
//   no tracing code path       @opentelemetry/api cannot be resolved (a loader hook hides it), metrics off
//   ... again (noise)          the same server a second time: how far two identical variants differ here
//   @opentelemetry/api, no SDK the API installed, no tracer provider registered: target <= 1.02x
//   metrics on                 `metrics: { path: false }` (prom-client), API hidden: target <= 1.05x
//   tracing on (SDK)           informational: a BasicTracerProvider that records every span and drops it
import { fork, spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { register } from 'node:module'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

const self = fileURLToPath(import.meta.url)
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const casesArg = args.indexOf('--cases')
const cases = casesArg === -1 ? ['burst', 'chat', 'events'] : args[casesArg + 1].split(',')
const rounds = quick ? 3 : 7

const variants = [
  { label: 'no tracing code path', hideOtel: true, options: {} },
  { label: 'no tracing code path, again (noise)', hideOtel: true, options: {} },
  { label: '@opentelemetry/api, no SDK', hideOtel: false, options: {} },
  { label: 'metrics on', hideOtel: true, options: { metrics: { path: false } } },
  { label: 'tracing on (SDK, spans dropped)', hideOtel: false, sdk: true, options: {} }
]

/** A resolve hook that makes `@opentelemetry/api` missing, as in an app that never installed it. */
const hideOtelHook = 'data:text/javascript,' + encodeURIComponent(`
export async function resolve (specifier, context, next) {
  if (specifier === '@opentelemetry/api') {
    throw Object.assign(new Error("Cannot find package '@opentelemetry/api'"), { code: 'ERR_MODULE_NOT_FOUND' })
  }
  return next(specifier, context)
}`)

// ---------------------------------------------------------------------------------------------
// server child

async function serve (variant) {
  if (variant.hideOtel) register(hideOtelHook)
  let otelVisible = true
  try { await import('@opentelemetry/api') } catch { otelVisible = false }
  if (variant.sdk) {
    const { trace } = await import('@opentelemetry/api')
    const { BasicTracerProvider, NoopSpanProcessor } = await import('@opentelemetry/sdk-trace-base')
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] }))
  }
  const Fastify = (await import('fastify')).default
  /** @type {any} */
  const app = Fastify({ logger: false })
  const entry = process.env.BENCH_CHANNELS_ENTRY ?? new URL('../dist/plugin/index.js', import.meta.url).href
  const channels = (await import(entry)).default
  await app.register(channels, { client: false, rateLimit: false, heartbeat: false, maxChannels: 10, ...variant.options })
  app.channels.on('message', { event: 'say', channel: 'bench' }, async (/** @type {any} */ socket, /** @type {unknown} */ data) => {
    await socket.sendAndBroadcastChannel(data, { channel: 'bench', event: 'tick' })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = /** @type {import('node:net').AddressInfo} */ (app.server.address()).port
  let cpu = process.cpuUsage()
  process.on('message', async (/** @type {any} */ m) => {
    let reply = {}
    if (m.cmd === 'burst') {
      await Promise.all(m.docs.map((/** @type {unknown} */ d) => app.broadcastChannel('bench', d, { event: 'tick' })))
    } else if (m.cmd === 'resetCpu') {
      cpu = process.cpuUsage()
    } else if (m.cmd === 'cpu') {
      const used = process.cpuUsage(cpu)
      reply = { cpuUs: used.user + used.system }
    }
    process.send?.({ id: m.id, ...reply })
  })
  process.send?.({ ready: true, port, otelVisible })
  process.on('disconnect', () => process.exit(0))
}

// ---------------------------------------------------------------------------------------------
// runner

const pin = spawnSync('taskset', ['-c', '1', 'true']).status === 0 && availableParallelism() > 1

async function startServer (variant) {
  const child = pin
    ? fork(self, ['--server', JSON.stringify(variant)], { execPath: 'taskset', execArgv: ['-c', '0', process.execPath] })
    : fork(self, ['--server', JSON.stringify(variant)])
  let nextId = 0
  /** @type {Map<number, (v: any) => void>} */
  const pending = new Map()
  const ready = await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`server ${variant.label} exited with ${code}`)))
    child.on('message', (/** @type {any} */ m) => {
      if (m.ready) resolve(m)
      else pending.get(m.id)?.(m)
    })
  })
  if (ready.otelVisible === variant.hideOtel) throw new Error(`${variant.label}: @opentelemetry/api is ${ready.otelVisible ? 'visible' : 'hidden'}, not as asked`)
  return {
    variant,
    port: ready.port,
    /** @param {Record<string, unknown>} m */
    call: (m) => new Promise((resolve) => { const id = ++nextId; pending.set(id, resolve); child.send({ ...m, id }) }),
    stop: () => { child.kill() }
  }
}

/** n subscribers of channel 'bench'; counts the deliveries they get. */
async function connectClients (server, n) {
  const sockets = []
  const state = { delivered: 0, target: 0, waiters: /** @type {Array<() => void>} */ ([]) }
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { perMessageDeflate: false })
      ws.on('message', (data) => {
        const text = data.toString()
        if (text.startsWith('{"type":"message"')) {
          if (++state.delivered >= state.target && state.waiters.length > 0) state.waiters.splice(0).forEach((f) => f())
        } else if (text.startsWith('{"type":"subscribed"')) resolve(undefined)
        else if (text.startsWith('{"type":"welcome"')) ws.send('{"type":"subscribe","channel":"bench","id":1}')
      })
      ws.on('error', reject)
      sockets.push(ws)
    })))
  }
  return {
    sockets,
    /** Resolves once `count` more deliveries arrived. */
    expect (count) {
      state.target = state.delivered + count
      return new Promise((resolve) => { state.waiters.push(resolve) })
    },
    close: () => { for (const ws of sockets) ws.close() }
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function withSessions (n, fn) {
  const sessions = []
  try {
    for (const variant of variants) {
      const server = await startServer(variant)
      sessions.push({ server, clients: await connectClients(server, n), rows: /** @type {number[]} */ ([]) })
    }
    for (let r = 0; r < rounds + 1; r++) {
      for (let k = 0; k < sessions.length; k++) {
        const s = sessions[(r + k) % sessions.length]
        await s.server.call({ cmd: 'resetCpu' })
        const deliveries = await fn(s)
        const { cpuUs } = await s.server.call({ cmd: 'cpu' })
        if (r > 0) s.rows.push(cpuUs / deliveries) // round 0 warms up
      }
    }
  } finally {
    for (const s of sessions) { s.clients?.close(); s.server.stop() }
  }
  const base = median(sessions[0].rows)
  for (const s of sessions) {
    const value = median(s.rows)
    console.log(`  ${s.server.variant.label.padEnd(34)} server CPU ${value.toFixed(3)} us/delivery (${(value / base).toFixed(3)}x)`)
  }
}

async function burstCase () {
  const n = quick ? 500 : 1000
  const count = quick ? 50 : 100
  const docs = Array.from({ length: count }, (_, i) => ({ seq: i, text: 'x'.repeat(80) }))
  console.log(`\nburst: ${n} subscribers x ${count} publications at once, ${rounds} rounds`)
  await withSessions(n, async (s) => {
    const arrived = s.clients.expect(n * count)
    await s.server.call({ cmd: 'burst', docs })
    await arrived
    return n * count
  })
}

async function chatCase () {
  const n = quick ? 50 : 100
  const perClient = quick ? 10 : 20
  console.log(`\nchat: ${n} clients in one channel, each sends ${perClient} messages a handler broadcasts to all, ${rounds} rounds`)
  const frame = JSON.stringify({ type: 'message', event: 'say', channel: 'bench', data: { text: 'x'.repeat(80) } })
  await withSessions(n, async (s) => {
    const deliveries = n * perClient * n
    const arrived = s.clients.expect(deliveries)
    for (const ws of s.clients.sockets) for (let i = 0; i < perClient; i++) ws.send(frame)
    await arrived
    return deliveries
  })
}

async function eventsCase () {
  const dist = new URL('../dist/plugin/observability/', import.meta.url).href
  const { events, handlerRunStart, handlerRunEnd, publicationStart, publicationEnd } = await import(`${dist}events.js`)
  const { startMetrics, loadPromClient } = await import(`${dist}metrics.js`)
  const { startTracing, loadOtelApi } = await import(`${dist}tracing.js`)
  /** The events of one chat message, as dispatch.ts and node/server.ts publish them. */
  const message = () => {
    if (events.messageReceived.hasSubscribers) events.messageReceived.publish({ nodeId: 'n', sessionId: 's', event: 'say', channel: 'bench', handled: true })
    const run = handlerRunStart('n', 's', 'say', 'bench')
    const publication = publicationStart('n', 'channels', 1)
    if (events.delivery.hasSubscribers) events.delivery.publish({ nodeId: 'n', kind: 'channels', count: 100, remote: false })
    if (publication) publicationEnd(publication, false)
    if (run) handlerRunEnd(run, false)
  }
  const n = quick ? 50_000 : 200_000
  const time = () => {
    for (let i = 0; i < n / 10; i++) message()
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) message()
    return Number(process.hrtime.bigint() - start) / n
  }
  const source = { nodeId: 'n', connections: () => 0, subscriptions: () => 0, holds: () => false }
  const api = await loadOtelApi()
  const { BasicTracerProvider, NoopSpanProcessor } = await import('@opentelemetry/sdk-trace-base')
  const rows = { 'nobody subscribed': [], 'metrics subscribed': [], 'metrics and spans subscribed': [] }
  console.log(`
events: ${n.toLocaleString('en-US')} chat messages' events in this process, ${rounds} rounds`)
  // One block per mode, in this order (a listener that comes and goes would leave the JIT's
  // code for the unsubscribed path deoptimised: not what an app sees).
  for (let r = 0; r < rounds; r++) rows['nobody subscribed'].push(time())
  const metrics = startMetrics(await loadPromClient(), source, undefined)
  for (let r = 0; r < rounds; r++) rows['metrics subscribed'].push(time())
  api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] }))
  const stopTracing = startTracing(api, 'n')
  for (let r = 0; r < rounds; r++) rows['metrics and spans subscribed'].push(time())
  stopTracing()
  metrics.stop()
  for (const [label, values] of Object.entries(rows)) console.log(`  ${label.padEnd(34)} ${median(values).toFixed(1)} ns per message`)
}

if (args[0] === '--server') {
  await serve(JSON.parse(args[1]))
} else {
  console.log(`observability bench: ${rounds} rounds per variant (+1 warm-up), interleaved; ${pin ? 'server on CPU 0, clients on CPU 1' : 'not pinned'}`)
  const table = { burst: burstCase, chat: chatCase, events: eventsCase }
  for (const name of cases) await table[name]()
  process.exit(0)
}
