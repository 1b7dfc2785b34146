/**
 * Outbound writes and the slow-consumer policy (plugin/outbound/slow-consumer.ts). The policy over real TCP,
 * with a peer that stops reading, is test/hardening/slow-consumer.test.ts.
 */
import t from 'tap'
import { closeReason, isWritable, slowConsumerClose, writeWithinLimit } from '../../plugin/outbound/slow-consumer.js'
import { OutboundFrame } from '../../plugin/outbound/frame-writer.js'
import { startWithSocket, until } from '../helpers/server.js'
import type { ChannelSocket } from '../../plugin/index.js'
import type WebSocket from 'ws'

t.test('closeReason trims to 123 bytes of UTF-8 without splitting a character', async (t) => {
  t.equal(closeReason('short'), 'short')
  const long = closeReason('é'.repeat(100)) // 200 bytes
  t.equal(long, 'é'.repeat(61), '122 bytes: a 62nd é would make 124')
  t.ok(Buffer.byteLength(closeReason('x'.repeat(500))) === 123)
})

t.test('slowConsumerClose is 1013 with a reason, frozen', async (t) => {
  t.same(slowConsumerClose, { code: 1013, reason: 'slow consumer' })
  t.ok(Object.isFrozen(slowConsumerClose))
})

t.test('writeWithinLimit: true while the peer reads, false past the limit the kernel would not take', async (t) => {
  const { client, server } = await startWithSocket(t, { heartbeat: false })
  const { ws } = server as ChannelSocket & { ws: WebSocket }
  t.ok(isWritable(ws))
  t.equal(writeWithinLimit(ws, new OutboundFrame(JSON.stringify({ type: 'message', event: 'message', data: 1 })), 1024), true)
  t.equal((await client.next((frame) => frame.type === 'message')).data, 1)
  // A peer that stops reading: the kernel buffers fill, then ws holds the rest.
  client.ws.pause()
  const big = new OutboundFrame(JSON.stringify({ type: 'message', event: 'message', data: 'x'.repeat(1 << 20) }))
  let within = true
  for (let i = 0; i < 64 && within; i++) within = writeWithinLimit(ws, big, 1 << 20)
  t.equal(within, false, 'past the limit once the peer stopped reading')
  client.ws.terminate() // a paused peer would never finish a closing handshake
})

t.test('writeWithinLimit judges the bytes the kernel would not take, and keeps a turn\'s writes coalesced while within', async (t) => {
  const { client, server } = await startWithSocket(t, { heartbeat: false })
  const { ws } = server as ChannelSocket & { ws: WebSocket }
  const tcp = (ws as unknown as { _socket: { writableCorked: number } })._socket
  await new Promise((resolve) => setImmediate(resolve)) // a fresh turn: nothing corked
  const frame = (n: number): OutboundFrame => new OutboundFrame(JSON.stringify({ type: 'message', event: 'message', data: n }))
  t.equal(writeWithinLimit(ws, frame(1), 1 << 20), true, 'the turn\'s first frame goes out')
  t.ok(tcp.writableCorked > 0, 'and the socket is corked behind it')
  const first = ws.bufferedAmount
  t.equal(writeWithinLimit(ws, frame(2), 1 << 20), true)
  const perFrame = ws.bufferedAmount - first
  t.ok(perFrame > 0, 'the second frame waits, corked')
  t.equal(writeWithinLimit(ws, frame(3), first + 2 * perFrame), true, 'exactly at the limit is within')
  t.ok(tcp.writableCorked > 0, 'within the limit: nothing flushed early')
  t.equal(writeWithinLimit(ws, frame(4), 0), true, 'over the limit only while corked: flushed, and the kernel took it all')
  t.equal(tcp.writableCorked, 0, 'flushed before judging')
  t.equal(ws.bufferedAmount, 0)
  for (let n = 1; n <= 4; n++) t.equal((await client.next((f) => f.type === 'message')).data, n, `frame ${n} arrives, in order`)
  client.close()
  await client.closed
  await until(() => ws.readyState === ws.CLOSED)
  t.notOk(isWritable(ws), 'a closed socket is not writable')
})
