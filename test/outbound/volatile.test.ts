/**
 * Volatile sends (`{ volatile: true }`): a socket with outbound bytes still queued skips the
 * frame instead of queueing it, a skipped frame never closes a socket, and volatile publications
 * take no history offset. Real TCP: a slow consumer is a ws client that stops reading.
 */
import t, { type Test } from 'tap'
import type WebSocket from 'ws'
import type { FastifyInstance } from 'fastify'
import { recordSockets, startApp, TestClient, until, nextId, type Frame } from '../helpers/server.js'
import type { ChannelSocket, DisconnectInfo } from '../../plugin/index.js'
import { hasBacklog, OutboundFrame, writeFrame } from '../../plugin/outbound/frame-writer.js'
import { writeVolatile } from '../../plugin/outbound/slow-consumer.js'

const turn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))
const big = 'x'.repeat(64 * 1024)
const maxBufferedBytes = 1 << 20

type ServerSocket = ChannelSocket & { ws: WebSocket }

async function start (t: Test, options: Parameters<typeof startApp>[0] = {}): Promise<{ app: FastifyInstance, url: string, sockets: Map<string, ChannelSocket>, disconnects: Map<string, DisconnectInfo> }> {
  let sockets = new Map<string, ChannelSocket>()
  const disconnects = new Map<string, DisconnectInfo>()
  const { app, url } = await startApp({ heartbeat: false, rateLimit: false, maxBufferedBytes, ...options }, (app) => {
    sockets = recordSockets(app)
    app.channels.on('disconnect', (socket, info) => { disconnects.set(socket.id, info) })
  })
  t.teardown(() => app.close())
  return { app, url, sockets, disconnects }
}

/** Counts the `message`-event frames a client gets, without keeping them (other frames stay queued). */
function counted (client: TestClient): { count: () => number } {
  let count = 0
  client.ws.on('message', () => {
    for (let i = client.frames.length - 1; i >= 0; i--) {
      const frame = client.frames[i]
      if (frame.type === 'message' && frame.event === 'message') {
        client.frames.splice(i, 1)
        count++
      }
    }
  })
  return { count: () => count }
}

/** A client that stopped reading, with the server's socket filled until its kernel buffers are full. */
async function stalled (app: FastifyInstance, url: string, sockets: Map<string, ChannelSocket>): Promise<{ client: TestClient, server: ServerSocket }> {
  const client = await TestClient.connect(url)
  const server = sockets.get(client.sessionId) as ServerSocket
  client.ws.pause()
  return { client, server }
}

t.test('a fast socket gets every volatile frame, a turn\'s corked writes included', async (t) => {
  const { app, url, sockets } = await start(t)
  const client = await TestClient.connect(url)
  await client.subscribe('room')
  const server = sockets.get(client.sessionId) as ServerSocket
  await turn()
  // One turn: the first frame leaves, the rest queue behind the cork; that is no backlog.
  for (let i = 0; i < 10; i++) server.send(i, { volatile: true })
  t.equal(hasBacklog(server.ws), false, 'frames corked this turn are not a backlog')
  for (let i = 0; i < 10; i++) t.equal((await client.next((f) => f.type === 'message')).data, i)
  for (let i = 0; i < 5; i++) {
    await app.broadcast({ b: i }, { volatile: true })
    await app.broadcastChannel('room', { c: i }, { volatile: true })
    await app.send(client.sessionId, { s: i }, { volatile: true, event: 'cursor' })
    await turn()
  }
  for (let i = 0; i < 5; i++) {
    t.same((await client.next((f) => f.type === 'message')).data, { b: i })
    const channelFrame = await client.next((f) => f.type === 'message')
    t.same(channelFrame, { type: 'message', event: 'message', channel: 'room', data: { c: i } })
    t.same(await client.next((f) => f.type === 'message'), { type: 'message', event: 'cursor', data: { s: i } })
  }
  client.close()
})

t.test('writeDelayMs: frames gathered for the delay are no backlog either', async (t) => {
  const { url, sockets } = await start(t, { writeDelayMs: 5 })
  const client = await TestClient.connect(url)
  const server = sockets.get(client.sessionId) as ServerSocket
  await new Promise((resolve) => setTimeout(resolve, 20))
  for (let i = 0; i < 10; i++) {
    server.send(i, { volatile: true })
    await turn()
  }
  for (let i = 0; i < 10; i++) t.equal((await client.next((f) => f.type === 'message')).data, i)
  client.close()
})

t.test('a slow consumer skips volatile frames while its queue is non-empty and is never closed; normal sends close it with 1013', async (t) => {
  const { app, url, sockets, disconnects } = await start(t)
  const fast = await TestClient.connect(url)
  const fastCount = counted(fast)
  const { client: slow, server } = await stalled(app, url, sockets)
  const slowCount = counted(slow)
  const sent = 600 // 600 × 64 KiB: far more than the kernel buffers hold
  let peak = 0
  for (let i = 0; i < sent; i++) {
    await app.broadcast(big, { volatile: true })
    peak = Math.max(peak, server.ws.bufferedAmount)
    await turn()
  }
  t.equal(server.ws.readyState, 1, 'the slow consumer is still open')
  t.notOk(disconnects.has(server.id))
  t.ok(peak <= maxBufferedBytes + big.length + 64, `its queue stayed bounded (peak ${peak})`)
  t.ok(hasBacklog(server.ws), 'and it has a backlog now')
  await until(() => fastCount.count() > 0, 10_000, 'the fast socket gets volatile frames')
  // It reads again: it gets what was queued before the skips, not all of the flood.
  slow.ws.resume()
  await until(() => !hasBacklog(server.ws), 20_000, 'the slow consumer drains')
  server.send('after', { event: 'marker' })
  await slow.next((f) => f.event === 'marker', 10_000)
  t.ok(slowCount.count() < sent, `frames were skipped (${slowCount.count()} of ${sent} arrived)`)
  t.equal(server.ws.readyState, 1, 'still open after the flood')

  // The same flood of normal sends: the limit closes the same kind of peer with 1013.
  const { server: second } = await stalled(app, url, sockets)
  for (let i = 0; i < sent && second.ws.readyState === 1; i++) {
    await app.broadcast(big)
    await turn()
  }
  await until(() => disconnects.has(second.id), 10_000, 'the normal flood closes the slow consumer')
  t.same(disconnects.get(second.id), { code: 1013, reason: 'slow consumer' })
  t.notOk(disconnects.has(server.id), 'the first slow consumer, reading again, survived')
  slow.ws.terminate()
  fast.close()
})

t.test('a volatile burst in one turn stops at maxBufferedBytes instead of closing the socket', async (t) => {
  const { url, sockets, disconnects } = await start(t)
  const client = await TestClient.connect(url)
  const server = sockets.get(client.sessionId) as ServerSocket
  client.ws.pause()
  await turn()
  for (let i = 0; i < 100; i++) server.send(big, { volatile: true }) // 6.4 MB in one turn
  t.ok(server.ws.bufferedAmount <= maxBufferedBytes + big.length + 64, `bounded (${server.ws.bufferedAmount})`)
  await turn()
  t.equal(server.ws.readyState, 1)
  t.notOk(disconnects.has(server.id))
  client.ws.terminate()
})

t.test('a volatile publication on a history channel takes no offset, is not stored, is never replayed', async (t) => {
  const { app, url } = await start(t, { history: { channel: /^h-/ } })
  const client = await TestClient.connect(url)
  const joined = await client.subscribe('h-1')
  await app.broadcastChannel('h-1', 'live', { volatile: true })
  const live = await client.next((f) => f.type === 'message')
  t.same(live, { type: 'message', event: 'message', channel: 'h-1', data: 'live' }, 'no offset')
  await app.broadcastChannel('h-1', 'kept')
  const kept = await client.next((f) => f.type === 'message')
  t.equal(kept.offset, 1, 'the volatile one took no offset')
  const view = await app.channels.history('h-1')
  t.same(view.messages.map((m) => m.data), ['kept'])
  const rejoin = await TestClient.connect(url)
  const replay = await rejoin.request({ type: 'subscribe', channel: 'h-1', id: nextId(), since: { epoch: joined.epoch, offset: 0 } })
  t.equal(replay.type, 'subscribed')
  const replayed = await rejoin.next((f) => f.type === 'message')
  t.equal(replayed.data, 'kept')
  await rejoin.expectNothing((f: Frame) => f.type === 'message')
  client.close()
  rejoin.close()
})

t.test('socket methods: volatile broadcast and broadcastChannel reach the others', async (t) => {
  const { url, sockets } = await start(t, { history: { channel: /^h-/ } })
  const a = await TestClient.connect(url)
  const b = await TestClient.connect(url)
  await a.subscribe('h-2')
  await b.subscribe('h-2')
  const sa = sockets.get(a.sessionId) as ServerSocket
  await sa.broadcast('all', { volatile: true })
  await sa.broadcastChannel('chan', { volatile: true, channel: 'h-2' })
  await sa.sendAndBroadcastChannel('both', { volatile: true, channel: 'h-2' })
  t.same(await b.next((f) => f.type === 'message'), { type: 'message', event: 'message', data: 'all' })
  t.same(await b.next((f) => f.type === 'message'), { type: 'message', event: 'message', channel: 'h-2', data: 'chan' })
  t.same(await b.next((f) => f.type === 'message'), { type: 'message', event: 'message', channel: 'h-2', data: 'both' })
  t.same(await a.next((f) => f.type === 'message'), { type: 'message', event: 'message', channel: 'h-2', data: 'both' })
  a.close()
  b.close()
})

t.test('volatile must be a boolean: FST_CHANNELS_INVALID_ARGUMENT', async (t) => {
  const { app, url, sockets } = await start(t)
  const client = await TestClient.connect(url)
  const server = sockets.get(client.sessionId) as ServerSocket
  const bad = { volatile: 'yes' } as unknown as { volatile: boolean }
  const code = { code: 'FST_CHANNELS_INVALID_ARGUMENT', message: /volatile must be a boolean/ }
  t.throws(() => server.send(1, bad), code)
  await t.rejects(server.broadcast(1, bad), code)
  await t.rejects(server.broadcastChannel(1, { ...bad, channel: 'x' }), code)
  await t.rejects(app.broadcast(1, bad), code)
  await t.rejects(app.broadcastChannel('x', 1, { volatile: 1 } as unknown as { volatile: boolean }), code)
  await t.rejects(app.send(client.sessionId, 1, bad), code)
  await t.resolves(app.broadcast(1, { volatile: false }))
  t.equal((await client.next((f) => f.type === 'message')).data, 1, 'false is a plain send')
  await client.expectNothing((f) => f.type === 'message')
  client.close()
})

t.test('hasBacklog: none on an idle socket, none once the kernel took a direct write', async (t) => {
  const { url, sockets } = await start(t)
  const client = await TestClient.connect(url)
  const server = sockets.get(client.sessionId) as ServerSocket
  await turn()
  t.equal(hasBacklog(server.ws), false, 'an idle socket has none')
  writeFrame(server.ws, new OutboundFrame('{"type":"message","event":"message","data":0}', true))
  t.equal(hasBacklog(server.ws), false, 'the kernel took it')
  t.equal((await client.next((f) => f.type === 'message')).data, 0)
  client.close()
})

t.test('writeVolatile: written (true) while nothing is queued and the turn is within the limit, skipped (false) otherwise', async (t) => {
  const { url, sockets } = await start(t)
  const client = await TestClient.connect(url)
  const server = sockets.get(client.sessionId) as ServerSocket
  const frame = (n: number): OutboundFrame => new OutboundFrame(JSON.stringify({ type: 'message', event: 'message', data: n }), true)
  await turn()
  t.equal(writeVolatile(server.ws, frame(1), 0), true, 'the turn\'s first frame: nothing queued')
  const queued = server.ws.bufferedAmount
  t.ok(queued > 0, 'frame 1 waits, corked until this run of code ends')
  t.equal(writeVolatile(server.ws, frame(2), queued - 1), false, 'what waits corked counts against the limit: over it, skipped')
  t.equal(writeVolatile(server.ws, frame(3), queued), true, 'exactly at the limit is within')
  t.equal(writeVolatile(server.ws, frame(4), server.ws.bufferedAmount - 1), false, 'over it: skipped')
  for (const n of [1, 3]) t.equal((await client.next((f) => f.type === 'message')).data, n)
  await client.expectNothing((f) => f.type === 'message')
  // a peer that stopped reading: once its queue is non-empty, every volatile frame is skipped
  client.ws.pause()
  const payload = new OutboundFrame(JSON.stringify({ type: 'message', event: 'message', data: big }), true)
  let written = 0
  for (let i = 0; i < 1000 && writeVolatile(server.ws, payload, 1 << 30); i++) {
    written++
    await turn()
  }
  t.ok(written < 1000, `skipped once the kernel stopped taking bytes (after ${written})`)
  t.equal(writeVolatile(server.ws, payload, 1 << 30), false, 'and skipped again while the queue lasts')
  client.ws.terminate()
})
