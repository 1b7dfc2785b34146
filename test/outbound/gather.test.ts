/**
 * `writeDelayMs`: a socket's frames are gathered for up to that many ms and written in one
 * writev; order holds with acks and ws's own control frames; the slow-consumer limit counts
 * gathered bytes; a close sends the gathered frames first, a terminate drops them.
 */
import t from 'tap'
import WebSocket from 'ws'
import type { ChannelSocket } from '../../plugin/index.js'
import { startApp, TestClient, until, type Frame } from '../helpers/server.js'
import { spyFlushes } from './socket-spies.js'

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
