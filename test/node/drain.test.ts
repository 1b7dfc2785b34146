/**
 * Draining a node on `fastify.close()` (plugin/node/drain.ts and the close path of
 * plugin/register.ts): the listener closes first, upgrades still in the app's hooks get 503,
 * the sockets get 1001 in batches spread over `drainMs`, then `finish` handlers run.
 */
import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import net, { type AddressInfo } from 'node:net'
import { once } from 'node:events'
import fastifyChannels from '../../plugin/index.js'
import { drain, drainBatches, drainStepMs } from '../../plugin/node/drain.js'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient, type CloseInfo } from '../helpers/server.js'

/** A `gone` promise that never settles. */
const never = new Promise<void>(() => {})

t.test('drainBatches: one batch per step of drainMs, never more batches than sockets, at least one', async (t) => {
  t.equal(drainStepMs, 10)
  t.equal(drainBatches(10_000, 1000), 100, '10,000 sockets over 1 s: 100 batches')
  t.equal(drainBatches(300, 1000), 100)
  t.equal(drainBatches(5, 1000), 5, 'one socket per batch when there are few')
  t.equal(drainBatches(300, 0), 1, 'drainMs 0: all at once')
  t.equal(drainBatches(300, 9), 1, 'under one step: all at once')
  t.equal(drainBatches(300, 25), 2)
  t.equal(drainBatches(0, 1000), 1)
})

t.test('drain closes every item once, in order, the first batch at once and the batches evenly spaced', async (t) => {
  const items = Array.from({ length: 250 }, (_, i) => i)
  const closedAt: number[] = []
  const start = performance.now()
  const running = drain(items, 200, (item) => { closedAt[item] = performance.now() - start }, never)
  const synchronous = closedAt.filter((at) => at !== undefined).length
  t.equal(synchronous, 12, 'the first batch (250 over 20 batches: items 0 to 11) is closed before drain() returns')
  await running
  t.equal(closedAt.length, 250, 'every item closed')
  t.ok(closedAt.every((at) => at !== undefined), 'none skipped')
  t.ok(closedAt.every((at, i) => i === 0 || at >= closedAt[i - 1]), 'in order')
  // Batch k of 20 is due 10k ms after the start: item i (in batch floor(i * 20 / 250)) never
  // goes early; lateness is bounded only loosely, as the machine may be loaded.
  for (let i = 0; i < items.length; i++) {
    const due = Math.floor((i * 20) / 250) * 10
    if (closedAt[i] < due - 2) t.fail(`item ${i} closed at ${closedAt[i].toFixed(1)} ms, before its batch was due (${due} ms)`)
  }
  t.ok(closedAt[249] >= 188, `the last batch is due at 190 ms (closed at ${closedAt[249].toFixed(1)} ms)`)
})

t.test('drain stops as soon as every item is gone', async (t) => {
  let closed = 0
  let allGone = (): void => {}
  const gone = new Promise<void>((resolve) => { allGone = resolve })
  const start = performance.now()
  const running = drain(Array.from({ length: 100 }, (_, i) => i), 60_000, () => { closed++ }, gone)
  t.equal(closed, 1, 'the first batch (one item: 100 batches over 60 s)')
  setTimeout(allGone, 50)
  await running
  t.equal(closed, 1, 'no batch after that')
  t.ok(performance.now() - start < 3000, `without waiting for the next batch, 600 ms later (${Math.round(performance.now() - start)} ms)`)
})

t.test('a late wake-up closes every batch due by then: a busy event loop does not stretch the drain', async (t) => {
  // 100 items over 200 ms (20 batches of 5, 10 ms apart). The first batch holds the event loop
  // for 150 ms, as closing thousands of sockets with their disconnect sequences can: by the
  // next wake-up 15 batches are due, and they go together.
  let wakeUps = 0
  let inWakeUp = false
  let closed = 0
  const start = performance.now()
  await drain(Array.from({ length: 100 }, (_, i) => i), 200, (item) => {
    // The closes of one wake-up run in one synchronous stretch.
    if (!inWakeUp) {
      wakeUps++
      inWakeUp = true
      queueMicrotask(() => { inWakeUp = false })
    }
    if (item === 0) {
      const until = performance.now() + 150
      while (performance.now() < until) { /* busy */ }
    }
    closed++
  }, never)
  const ms = performance.now() - start
  t.equal(closed, 100)
  t.ok(ms < 1000, `the drain still ends near 200 ms (${Math.round(ms)} ms), not one loop turn per batch later`)
  // The first, one for the 15 batches due after the stall, then the last 4 one by one (a loaded
  // machine may split a few more); one per batch would be 20.
  t.ok(wakeUps <= 12, `the batches due during the stall went in one go (${wakeUps} wake-ups for 20 batches)`)
})

t.test('drain with drainMs 0 closes everything synchronously', async (t) => {
  let closed = 0
  const running = drain(Array.from({ length: 500 }, (_, i) => i), 0, () => { closed++ }, never)
  t.equal(closed, 500)
  await running
})

interface Closed extends CloseInfo {
  /** ms after fastify.close() was called */
  at: number
}

/** Opens `n` sockets, 50 at a time (a loaded machine accepts a few hundred at once slowly). */
async function openMany (url: string, n: number): Promise<TestClient[]> {
  const clients: TestClient[] = []
  while (clients.length < n) {
    const batch = Math.min(50, n - clients.length)
    clients.push(...await Promise.all(Array.from({ length: batch }, () => TestClient.connect(url))))
  }
  return clients
}

/** Closes the app while `clients` are connected; each close's time (from the call) and code. */
async function closeAndRecord (app: { close: () => Promise<void> }, clients: TestClient[]): Promise<{ closes: Closed[], closeMs: number }> {
  const closes: Closed[] = []
  const start = performance.now()
  for (const client of clients) {
    client.ws.once('close', (code: number, reason: Buffer) => { closes.push({ code, reason: reason.toString(), at: performance.now() - start }) })
  }
  await app.close()
  const closeMs = performance.now() - start
  await within(Promise.all(clients.map((client) => client.closed)), 5000, 'every client saw its socket close')
  return { closes, closeMs }
}

/** Share of `closes` in each of `parts` equal slices of [0, spanMs). */
function histogram (closes: Closed[], spanMs: number, parts: number): number[] {
  const counts = new Array<number>(parts).fill(0)
  for (const { at } of closes) counts[Math.min(parts - 1, Math.floor((at / spanMs) * parts))]++
  return counts.map((count) => count / closes.length)
}

t.test('fastify.close() closes 300 sockets with 1001 spread evenly over drainMs, then runs their finish handlers', async (t) => {
  const drainMs = 1000
  let finished = 0
  // When the server closed each socket (its socket.close() was called), ms after fastify.close():
  // what the drain did, apart from how late the clients (in this same process) read it.
  const closeCalls: number[] = []
  let closingAt = 0
  const { app, url } = await startApp({ drainMs, heartbeat: false }, (app) => {
    app.channels.on('connect', (socket) => {
      const close = socket.close.bind(socket)
      socket.close = (code, reason) => {
        closeCalls.push(performance.now() - closingAt)
        close(code, reason)
      }
    })
    app.channels.on('finish', () => { finished++ })
  })
  const clients = await openMany(url, 300)
  t.equal(app.channels.stats().sockets, 300)
  closingAt = performance.now()
  const { closes, closeMs } = await closeAndRecord(app, clients)
  t.equal(finished, 300, 'every finish handler ran before fastify.close() resolved')
  t.equal(closes.length, 300)
  t.ok(closes.every(({ code, reason }) => code === 1001 && reason === 'server shutting down'), 'every socket got 1001 "server shutting down"')
  t.equal(closeCalls.length, 300, 'each socket closed once by the drain')
  const calls = closeCalls.map((at) => ({ at, code: 1001, reason: '' }))
  const first = Math.min(...closeCalls)
  const last = Math.max(...closeCalls)
  t.ok(first < 100 && last >= 0.8 * drainMs && last < drainMs + 500, `the closes span drainMs (${Math.round(first)}–${Math.round(last)} ms)`)
  // Five equal slices of drainMs hold 20 % of the closes each. A busy event loop (this process
  // also runs the 300 clients) closes the batches due meanwhile together, so each slice must
  // only hold between 5 and 45 %; one loop would put all of them in the first.
  const shares = histogram(calls, drainMs, 5)
  t.ok(shares.every((share) => share >= 0.05 && share <= 0.45), `evenly spread: ${shares.map((s) => (s * 100).toFixed(0) + '%').join(' ')}`)
  const received = closes.map(({ at }) => at)
  t.ok(Math.max(...received) - Math.min(...received) >= 0.5 * drainMs, 'and the clients saw them spread too')
  t.ok(closeMs >= drainMs - 20, `fastify.close() lasted the drain (${Math.round(closeMs)} ms)`)
  t.ok(closeMs < drainMs + 10_000, 'and not much longer')
})

t.test('drainMs: 0 closes every socket at once, as before', async (t) => {
  const { app, url } = await startApp({ drainMs: 0, heartbeat: false })
  const clients = await openMany(url, 300)
  const { closes } = await closeAndRecord(app, clients)
  t.ok(closes.every(({ code }) => code === 1001), 'every socket got 1001')
  const ats = closes.map(({ at }) => at)
  const spread = Math.max(...ats) - Math.min(...ats)
  // One loop closes all 300; what spreads them is only the client process reading them. The
  // drained run above spans at least 800 ms.
  t.ok(spread < 400, `all within one burst (${Math.round(spread)} ms)`)
})

t.test('a closing node stops accepting connections before its first batch, while the drain still runs', async (t) => {
  const { app, url, port } = await startApp({ drainMs: 2000, heartbeat: false })
  const clients = await openMany(url, 20)
  const closing = app.close()
  const firstClose = await within(Promise.race(clients.map((client) => client.closed)), 3000, 'the first batch closes a socket')
  t.equal(firstClose.code, 1001)
  t.ok(clients.some((client) => client.ws.readyState === client.ws.OPEN), 'the drain is still under way')
  // A new TCP connection is refused by the kernel: nobody listens any more.
  const socket = net.connect({ port, host: '127.0.0.1' })
  const [error] = await within(once(socket, 'error'), 3000, 'a new connection fails at once') as [NodeJS.ErrnoException]
  t.equal(error.code, 'ECONNREFUSED', 'refused, not accepted and left hanging')
  await t.rejects(TestClient.open(url), { code: 'ECONNREFUSED' }, 'a WebSocket client is refused too')
  await closing
  t.ok(clients.every((client) => client.ws.readyState === client.ws.CLOSED))
})

/** Sends a WebSocket upgrade with `x-hold` over raw TCP; resolves with all the server wrote once it hung up. */
async function heldUpgrade (port: number): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  let answer = ''
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString() })
  socket.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nx-hold: 1\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  try {
    await once(socket, 'close')
  } finally {
    socket.destroy()
  }
  return answer
}

for (const return503OnClosing of [true, false]) {
  t.test(`an upgrade that is in the app's hooks when fastify.close() begins gets 503 (return503OnClosing: ${String(return503OnClosing)})`, async (t) => {
    let arrived = (): void => {}
    const inHook = new Promise<void>((resolve) => { arrived = resolve })
    let release = (): void => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    const { app, url, port } = await startApp({ drainMs: 500, heartbeat: false }, (app) => {
      app.addHook('onRequest', async (request) => {
        if (request.headers['x-hold'] === undefined) return
        arrived()
        await held
      })
    }, { return503OnClosing })
    const open = await TestClient.connect(url)
    const late = heldUpgrade(port)
    await within(inHook, 3000, 'the upgrade reaches the app\'s hook')
    const closing = app.close()
    t.equal((await within(open.closed, 3000, 'the drain closes the open socket')).code, 1001)
    release() // fastify.close() has begun: the held upgrade goes on through the route's hooks
    const answer = await within(late, 3000, 'the held upgrade is answered and its connection ended')
    t.match(answer, /^HTTP\/1.1 503 Service Unavailable\r\n/, 'answered 503, no 101')
    t.match(answer, /\r\nconnection: close\r\n/i)
    t.same(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), {
      statusCode: 503,
      code: 'FST_CHANNELS_SHUTTING_DOWN',
      error: 'Service Unavailable',
      message: 'this server is shutting down; reconnect, to another server or later'
    })
    await closing
  })
}

t.test('with no sockets, fastify.close() does not wait for drainMs', async (t) => {
  const { app } = await startApp({ drainMs: 60_000, heartbeat: false })
  const start = performance.now()
  await app.close()
  t.ok(performance.now() - start < 5000, `closed at once (${Math.round(performance.now() - start)} ms)`)
})

t.test('sockets that leave on their own during the drain end it early', async (t) => {
  const { app, url } = await startApp({ drainMs: 60_000, heartbeat: false })
  const clients = await openMany(url, 10)
  const start = performance.now()
  const closing = app.close()
  // The first batch (one socket) is closed by the server; the other nine leave themselves.
  for (const client of clients) client.close()
  await within(closing, 15_000, 'fastify.close() completes once every socket is gone')
  // The second batch would be due 6 s after the first.
  t.ok(performance.now() - start < 4000, `without waiting for the next batch (${Math.round(performance.now() - start)} ms)`)
})

t.test('with the app\'s own @fastify/websocket, a preClose that leaves the sockets to the plugin keeps the drain', async (t) => {
  const app = Fastify()
  // Its default preClose would close every socket at once, with no code (1005), before the drain.
  await app.register(fastifyWebsocket, { preClose: (done) => done() })
  await app.register(fastifyChannels, { client: false, heartbeat: false, drainMs: 500 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const clients = await openMany(`ws://127.0.0.1:${port}/ws`, 20)
  const { closes } = await closeAndRecord(app, clients)
  t.ok(closes.every(({ code }) => code === 1001), 'every socket got 1001 from the drain')
  const ats = closes.map(({ at }) => at)
  t.ok(Math.max(...ats) - Math.min(...ats) >= 300, `spread over the drain (${Math.round(Math.min(...ats))}–${Math.round(Math.max(...ats))} ms)`)
})
