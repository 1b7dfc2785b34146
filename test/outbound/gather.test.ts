/**
 * `writeDelayMs`: a socket's frames are gathered for up to that many ms and written in one
 * writev; order holds with acks and ws's own control frames; the slow-consumer limit counts
 * gathered bytes; a close sends the gathered frames first, a terminate drops them. gather()
 * itself on loopback TCP sockets: one timer per delay value shared by the sockets of a batch,
 * each of its corks released by one uncork, none for a socket uncorked early or destroyed.
 */
import t from 'tap'
import { once } from 'node:events'
import net, { type AddressInfo, type Socket } from 'node:net'
import WebSocket from 'ws'
import type { ChannelSocket } from '../../plugin/index.js'
import { startApp, TestClient, until, type Frame } from '../helpers/server.js'
import { spyFlushes } from './socket-spies.js'
import { gather } from '../../plugin/outbound/gather.js'

const isMessage = (frame: Frame): boolean => frame.type === 'message'
type ServerSocket = ChannelSocket & { ws: WebSocket }

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function gatheringApp (t: { teardown (fn: () => unknown): void }, writeDelayMs: number, extra: Record<string, unknown> = {}) {
  const sockets: ServerSocket[] = []
  const disconnects: number[] = []
  const { app, url } = await startApp({ heartbeat: false, writeDelayMs, ...extra }, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket as ServerSocket) })
    app.channels.on('disconnect', (_socket, { code }) => { disconnects.push(code) })
    app.channels.on('message', { event: 'mix' }, (socket) => {
      socket.send('direct')
      ;(socket as ServerSocket).ws.ping()
      socket.sendAndBroadcastChannel('broadcast', { channel: 'room' }).catch(() => {})
      return 'ack'
    })
    app.channels.on('message', { event: 'bye' }, (socket) => {
      socket.send('last words')
      socket.close(4000, 'bye')
    })
  })
  t.teardown(() => app.close())
  return { app, url, sockets, disconnects }
}

t.test('frames sent a few ms apart leave in one writev once the 200 ms delay is over', async (t) => {
  const { app, url, sockets } = await gatheringApp(t, 200)
  const client = await TestClient.connect(url)
  await client.subscribe('room')
  await sleep(220) // whatever the welcome and the ack started is released
  const flushes = spyFlushes(sockets[0].request.raw.socket)
  const arrivals: number[] = []
  client.ws.on('message', () => { arrivals.push(performance.now()) })
  const start = performance.now()
  for (let seq = 0; seq < 10; seq++) {
    await app.broadcastChannel('room', { seq })
    await sleep(3)
  }
  t.same(flushes, [], 'nothing written while gathering')
  for (let seq = 0; seq < 10; seq++) t.same((await client.next(isMessage)).data, { seq })
  t.same(flushes, [10], 'all ten in one writev')
  t.ok(arrivals[0] - start >= 190, `the first frame waited for the delay (${(arrivals[0] - start).toFixed(1)} ms)`)
  client.close()
})

t.test('order holds across a direct send, ws\'s ping, a broadcast and the ack', async (t) => {
  const { url } = await gatheringApp(t, 20)
  const client = await TestClient.connect(url)
  await client.subscribe('room')
  const events: string[] = []
  client.ws.on('ping', () => { events.push('ping') })
  client.ws.on('message', (data) => { events.push(String((JSON.parse(data.toString()) as Frame).data)) })
  const reply = await client.request({ type: 'message', event: 'mix', id: 9 })
  t.same(reply, { type: 'ack', id: 9, data: 'ack' })
  t.same(events, ['direct', 'ping', 'broadcast', 'ack'])
  client.close()
})

t.test('a close sends the gathered frames first, then the close frame', async (t) => {
  const { url } = await gatheringApp(t, 50)
  const client = await TestClient.connect(url)
  client.ws.send(JSON.stringify({ type: 'message', event: 'bye' }))
  const closed = await client.closed
  t.equal(closed.code, 4000)
  t.same(client.frames.filter(isMessage).map((frame) => frame.data), ['last words'])
})

t.test('gathered bytes count against maxBufferedBytes: a reading peer is not cut off, one that stopped reading is', async (t) => {
  const { app, url, disconnects } = await gatheringApp(t, 50, { maxBufferedBytes: 16 * 1024 })
  const reader = await TestClient.connect(url)
  await reader.subscribe('room')
  const padding = 'p'.repeat(4096)
  for (let seq = 0; seq < 10; seq++) await app.broadcastChannel('room', { seq, padding })
  for (let seq = 0; seq < 10; seq++) t.equal(((await reader.next(isMessage)).data as { seq: number }).seq, seq)
  t.same(disconnects, [], 'the peer that reads is not closed: 40 KB gathered went to the kernel at once')

  reader.close()
  await reader.closed
  await until(() => disconnects.length === 1, 3000, 'the reader left')
  disconnects.length = 0
  const stalled = await TestClient.connect(url)
  await stalled.subscribe('room')
  stalled.ws.pause()
  const big = 'x'.repeat(256 * 1024)
  for (let i = 0; i < 64 && disconnects.length === 0; i++) await app.broadcastChannel('room', { big })
  await until(() => disconnects.length === 1, 3000, 'the stalled peer is cut off')
  t.same(disconnects, [1013])
  stalled.ws.terminate()
})

t.test('writeDelayMs 0 (the default) writes the first frame at once', async (t) => {
  const { app, url } = await gatheringApp(t, 0)
  const client = await TestClient.connect(url)
  await client.subscribe('room')
  const start = performance.now()
  await app.broadcastChannel('room', 'now')
  t.same((await client.next(isMessage)).data, 'now')
  t.ok(performance.now() - start < 40, 'not delayed')
  client.close()
})

t.test('two sockets gathered in one batch both get their frames, each in one writev', async (t) => {
  const { app, url, sockets } = await gatheringApp(t, 200)
  const clients = [await TestClient.connect(url), await TestClient.connect(url)]
  for (const client of clients) await client.subscribe('room')
  await sleep(220) // the acks' batch is released
  const flushes = sockets.map((socket) => spyFlushes(socket.request.raw.socket))
  for (let seq = 0; seq < 3; seq++) await app.broadcastChannel('room', { seq })
  for (const client of clients) {
    for (let seq = 0; seq < 3; seq++) t.same((await client.next(isMessage)).data, { seq })
  }
  t.same(flushes, [[3], [3]], 'one writev of three frames per socket')
  for (const client of clients) client.close()
})

// gather() itself, on plain TCP sockets over loopback: its timers and its corks.

interface Tracked { socket: Socket, received: () => string, corks: number, uncorks: number }

/** `n` server-side sockets of loopback connections, each counting its cork and uncork calls. */
async function trackedSockets (t: { teardown (fn: () => unknown): void }, n: number): Promise<Tracked[]> {
  const accepted: Socket[] = []
  const server = net.createServer((socket) => { accepted.push(socket) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const peers = await Promise.all(Array.from({ length: n }, async () => {
    const peer = net.connect(port, '127.0.0.1')
    await once(peer, 'connect')
    return peer
  }))
  await until(() => accepted.length === n, 3000, 'every connection accepted')
  t.teardown(() => {
    for (const peer of peers) peer.destroy()
    for (const socket of accepted) socket.destroy()
    server.close()
  })
  // accepted[i] is not necessarily peers[i]: pair them by port
  return accepted.map((socket) => {
    const peer = peers.find((p) => p.localPort === socket.remotePort) as Socket
    const chunks: Buffer[] = []
    peer.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    const tracked: Tracked = { socket, received: () => Buffer.concat(chunks).toString(), corks: 0, uncorks: 0 }
    const { cork, uncork } = socket
    socket.cork = function (this: Socket) { tracked.corks++; cork.call(this) }
    socket.uncork = function (this: Socket) { tracked.uncorks++; uncork.call(this) }
    return tracked
  })
}

/** The delays of the timers `fn` sets (a spy on the global setTimeout, which it still calls). */
function timersSetBy (fn: () => void): number[] {
  const delays: number[] = []
  const real = globalThis.setTimeout
  globalThis.setTimeout = function (this: unknown, ...args: Parameters<typeof setTimeout>) {
    delays.push(args[1] as number)
    return real.apply(this, args)
  } as typeof setTimeout
  try {
    fn()
  } finally {
    globalThis.setTimeout = real
  }
  return delays
}

t.test('one timer per delay value: the sockets that start gathering before it fires share it; each cork gets one uncork', async (t) => {
  const [a, b, c] = await trackedSockets(t, 3)
  const timers = timersSetBy(() => {
    gather(a.socket, 31)
    a.socket.write('a1')
    gather(b.socket, 31)
    b.socket.write('b1')
    gather(a.socket, 31) // already corked: nothing
    a.socket.write('a2')
    gather(c.socket, 37)
    c.socket.write('c1')
  })
  t.same(timers, [31, 37], 'one timer for 31 ms (two sockets), one for 37 ms')
  t.same([a.corks, b.corks, c.corks], [1, 1, 1], 'each socket corked once')
  t.equal(a.received() + b.received() + c.received(), '', 'nothing written yet')
  await until(() => a.received() === 'a1a2' && b.received() === 'b1' && c.received() === 'c1', 3000, 'every socket released')
  t.same([a.uncorks, b.uncorks, c.uncorks], [1, 1, 1], 'each uncorked once')
  t.same([a.socket.writableCorked, b.socket.writableCorked, c.socket.writableCorked], [0, 0, 0])

  // Released: the next gather of that delay arms a new timer.
  t.same(timersSetBy(() => { gather(b.socket, 31); b.socket.write('b2') }), [31], 'a new batch, a new timer')
  await until(() => b.received() === 'b1b2', 3000, 'the new batch released')
  t.equal(b.uncorks, 2)
})

t.test('the release leaves alone a socket uncorked early and one destroyed meanwhile', async (t) => {
  const [early, destroyed, again, plain] = await trackedSockets(t, 4)
  for (const [i, { socket }] of [early, destroyed, again, plain].entries()) {
    gather(socket, 41)
    socket.write(`${i}a`)
  }
  early.socket.uncork() // as flushNow does: its bytes leave now
  destroyed.socket.destroy()
  again.socket.uncork() // uncorked early, then gathered again within the same batch
  gather(again.socket, 41)
  again.socket.write('2b')
  await until(() => plain.received() === '3a', 3000, 'the batch released')
  t.equal(early.received(), '0a')
  t.equal(again.received(), '2a2b')
  t.same([early.corks, early.uncorks], [1, 1], 'the socket uncorked early: not uncorked again')
  t.same([again.corks, again.uncorks], [2, 2], 'the socket corked twice in the batch: uncorked once by the release')
  t.same([plain.corks, plain.uncorks], [1, 1])
  t.same([destroyed.corks, destroyed.uncorks], [1, 0], 'the destroyed socket: not touched')
})
