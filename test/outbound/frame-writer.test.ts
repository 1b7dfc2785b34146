/**
 * The outbound fast path: a broadcast builds its WebSocket frame once and writes the same
 * Buffer to every socket; a socket's writes of one event-loop turn leave in one writev; order
 * per socket holds across acks, direct sends, broadcasts and ws's own queue; the plain
 * `ws.send` path takes over where the fast path cannot be used.
 */
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { AddressInfo, Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { constants as zlibConstants, inflateRawSync } from 'node:zlib'
import WebSocket from 'ws'
import fastifyChannels, { type ChannelSocket } from '../../plugin/index.js'
import {
  detectSenderFrame, flushNow, OutboundFrame, writeFrame, type FrameFn
} from '../../plugin/outbound/frame-writer.js'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient, until, type Frame } from '../helpers/server.js'
import { encodeClientFrame, Opcode, RawClient } from '../hardening/raw-client.js'

const isMessage = (frame: Frame): boolean => frame.type === 'message'

/** ws's Sender: exported by ws at run time, absent from @types/ws. */
const { Sender } = WebSocket as unknown as { Sender: { new (socket: PassThrough): object, frame: FrameFn } }

/** Counts the frames built from here on, through the documented diagnostics channel. */
const frameStats = { built: 0, bytes: [] as number[] }
const countFrame = (message: unknown): void => {
  frameStats.built++
  frameStats.bytes.push((message as { bytes: number }).bytes)
}
subscribe('fastify-channels:frame-built', countFrame)
t.teardown(() => { unsubscribe('fastify-channels:frame-built', countFrame) })

/** The server side of a connection, as the plugin holds it. */
type ServerSocket = ChannelSocket & { ws: WebSocket }
/** The TCP socket ws writes to: the upgrade request's own. */
const rawSocket = (socket: ServerSocket): Socket => socket.request.raw.socket

/** Records what reaches a server-side TCP socket: each write() chunk, and each syscall-level flush. */
function spy (socket: Socket): { writes: unknown[], flushes: number[] } {
  const record = { writes: [] as unknown[], flushes: [] as number[] }
  const { write, _write: single, _writev: vector } = socket
  socket.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    record.writes.push(chunk)
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
  } as Socket['write']
  socket._write = function (this: Socket, ...args: Parameters<Socket['_write']>) {
    record.flushes.push(1)
    return single.apply(this, args)
  }
  socket._writev = function (this: Socket, chunks: Parameters<NonNullable<Socket['_writev']>>[0], cb) {
    record.flushes.push(chunks.length)
    return (vector as NonNullable<Socket['_writev']>).call(this, chunks, cb)
  }
  return record
}

/** An app whose connected sockets are collected, with `n` clients subscribed to 'room'. */
async function room (n: number, setup?: (app: FastifyInstance) => void): Promise<{
  app: FastifyInstance, clients: TestClient[], sockets: ServerSocket[]
}> {
  const sockets: ServerSocket[] = []
  const { app, url } = await startApp({ heartbeat: false }, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket as ServerSocket) })
    setup?.(app)
  })
  const clients = await Promise.all(Array.from({ length: n }, () => TestClient.connect(url)))
  for (const client of clients) await client.subscribe('room')
  return { app, clients, sockets }
}

t.test('the installed ws\'s Sender supports direct writes (a ws upgrade that breaks detection fails here)', async (t) => {
  t.type(detectSenderFrame(new Sender(new PassThrough())), 'function')
})

t.test('a Sender that does not look like ws 8.23\'s is refused: its sockets get ws.send', async (t) => {
  const fields = { _state: 0, _queue: [], _firstFragment: true }
  class NoFrame { _state = 0; _queue = []; _firstFragment = true }
  class OtherFields { static frame = Sender.frame; state = 0 }
  class OtherFrame { static frame = (data: Buffer): Buffer[] => [Buffer.from([0x82, data.length]), data]; _state = 0; _queue = []; _firstFragment = true }
  class Throws { static frame = (): never => { throw new Error('changed') }; _state = 0; _queue = []; _firstFragment = true }
  t.equal(detectSenderFrame(new NoFrame()), undefined, 'no static frame()')
  t.equal(detectSenderFrame(new OtherFields()), undefined, 'fields renamed')
  t.equal(detectSenderFrame(new OtherFrame()), undefined, 'another frame layout')
  t.equal(detectSenderFrame(new Throws()), undefined, 'frame() throws')
  t.equal(detectSenderFrame(Object.assign(new NoFrame(), fields)), undefined)

  // A socket from a ws copy whose Sender is refused: writeFrame falls back to ws.send.
  const sent: string[] = []
  const written: unknown[] = []
  const standIn = {
    _sender: new OtherFrame(),
    _socket: { write: (chunk: unknown) => written.push(chunk), writableCorked: 0 },
    _extensions: {},
    send (text: string) { sent.push(text) }
  }
  const before = frameStats.built
  writeFrame(standIn as unknown as WebSocket, new OutboundFrame('{"type":"message"}'))
  t.same(sent, ['{"type":"message"}'], 'through ws.send')
  t.same(written, [], 'nothing written to the TCP socket directly')
  t.equal(frameStats.built, before, 'no frame built')
})

t.test('each check of a Sender\'s shape refuses it on its own', async (t) => {
  const good = { _state: 0, _queue: [] as unknown[], _firstFragment: true }
  const shaped = (frame: unknown, fields: Record<string, unknown> = good): object =>
    Object.assign(new (class { static frame = frame })(), fields)
  t.type(detectSenderFrame(shaped(Sender.frame)), 'function', 'the stand-in with ws\'s frame() passes')
  const fieldCases: Array<[string, Record<string, unknown>]> = [
    ['_state not a number', { ...good, _state: '0' }],
    ['_queue not an array', { ...good, _queue: { length: 0 } }],
    ['_firstFragment not a boolean', { ...good, _firstFragment: 1 }]
  ]
  for (const [why, fields] of fieldCases) t.equal(detectSenderFrame(shaped(Sender.frame, fields)), undefined, why)
  const header = (bytes: number[]): Buffer => Buffer.from(bytes)
  const frameCases: Array<[string, (data: Buffer) => unknown]> = [
    ['frame() gives no array', (data) => Buffer.concat([header([0x81, data.length]), data])],
    ['frame() gives three parts', (data) => [header([0x81, data.length]), data, Buffer.alloc(0)]],
    ['frame() copies the payload', (data) => [header([0x81, data.length]), Buffer.from(data)]],
    ['the header is not a Buffer', (data) => [new Uint8Array([0x81, data.length]), data]],
    ['the header is longer', (data) => [header([0x81, data.length, 0]), data]],
    ['the header has another length byte', (data) => [header([0x81, data.length + 1]), data]]
  ]
  for (const [why, frame] of frameCases) t.equal(detectSenderFrame(shaped(frame)), undefined, why)
})

t.test('writeFrame without a Sender or a TCP socket goes through ws.send; flushNow without one does nothing', async (t) => {
  const sender = new Sender(new PassThrough())
  const socket = { write: () => { throw new Error('not written directly') }, writableCorked: 0 }
  const cases: Array<[string, Record<string, unknown>]> = [
    ['no Sender (null)', { _sender: null, _socket: socket }],
    ['no Sender (undefined)', { _socket: socket }],
    ['no TCP socket (null)', { _sender: sender, _socket: null }],
    ['no TCP socket (undefined)', { _sender: sender }],
    ['a Sender with something queued', { _sender: Object.assign(new Sender(new PassThrough()), { _queue: [['queued']] }), _socket: socket }]
  ]
  for (const [why, internals] of cases) {
    const sent: string[] = []
    const ws = { ...internals, _extensions: {}, send (text: string) { sent.push(text) } }
    writeFrame(ws as unknown as WebSocket, new OutboundFrame('{"type":"message"}'))
    t.same(sent, ['{"type":"message"}'], why)
  }
  for (const internals of [{ _socket: null }, {}]) {
    t.doesNotThrow(() => { flushNow(internals as unknown as WebSocket) }, JSON.stringify(internals))
  }
})

t.test('OutboundFrame builds a standard unmasked text frame once, for every payload length class', async (t) => {
  for (const length of [0, 5, 125, 126, 65535, 65536, 100_000]) {
    const text = 'é'.repeat(length >> 1) + 'x'.repeat(length & 1)
    const frame = new OutboundFrame(text)
    const before = frameStats.built
    const bytes = frame.bytes(Sender.frame)
    t.equal(frame.bytes(Sender.frame), bytes, `${length}: the same Buffer every time`)
    t.equal(frameStats.built - before, 1, `${length}: built once`)
    t.equal(frameStats.bytes.at(-1), bytes.length, `${length}: published with its size`)
    const expected = Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }))
    t.ok(bytes.equals(expected), `${length}: what ws would send`)
    t.equal(bytes[0], 0x81, `${length}: FIN + text opcode`)
  }
})

t.test('one broadcast to N sockets is encoded once and the same Buffer is written to each', async (t) => {
  const n = 8
  const { app, clients, sockets } = await room(n)
  t.teardown(() => app.close())
  const records = sockets.map((socket) => spy(rawSocket(socket)))
  const before = frameStats.built
  await app.broadcastChannel('room', { text: 'hello' }, { event: 'chat' })
  t.equal(frameStats.built - before, 1, 'one frame built for the whole broadcast')
  const [first] = records[0].writes
  t.ok(Buffer.isBuffer(first))
  for (const record of records) {
    t.equal(record.writes.length, 1, 'one write per socket')
    t.equal(record.writes[0], first, 'the very same Buffer')
  }
  for (const client of clients) {
    t.same(await client.next(isMessage), { type: 'message', event: 'chat', channel: 'room', data: { text: 'hello' } })
  }
  for (const client of clients) client.close()
})

t.test('a burst in one run of code is one syscall per socket; awaited broadcasts of one turn are two', async (t) => {
  const { app, clients, sockets } = await room(3)
  t.teardown(() => app.close())
  let records = sockets.map((socket) => spy(rawSocket(socket)))
  // Started in one loop, awaited together: one run of code.
  await Promise.all([0, 1, 2, 3, 4].map((seq) => app.broadcastChannel('room', { seq })))
  for (const client of clients) {
    for (let seq = 0; seq < 5; seq++) t.same((await client.next(isMessage)).data, { seq })
  }
  for (const record of records) t.same(record.flushes, [5], 'all five in one writev')

  // Awaited one by one: each await settles on a microtask, still within the same turn.
  records = sockets.map((socket) => spy(rawSocket(socket)))
  for (let seq = 5; seq < 10; seq++) await app.broadcastChannel('room', { seq })
  for (const client of clients) {
    for (let seq = 5; seq < 10; seq++) t.same((await client.next(isMessage)).data, { seq })
  }
  for (const record of records) t.same(record.flushes, [1, 4], 'the first run\'s frame when the run ends, the other four at the end of the turn')
  for (const client of clients) client.close()
})

t.test('a lone broadcast leaves when its run of code ends, not at the end of the turn', async (t) => {
  const { app, clients, sockets } = await room(3)
  t.teardown(() => app.close())
  const records = sockets.map((socket) => spy(rawSocket(socket)))
  const sent = app.broadcastChannel('room', { seq: 0 })
  for (const record of records) t.same(record.flushes, [], 'corked while the fan-out loop runs')
  await sent
  for (const record of records) t.same(record.flushes, [1], 'handed to the kernel once the run ended, before any setImmediate')
  for (const client of clients) t.same((await client.next(isMessage)).data, { seq: 0 })
  for (const client of clients) client.close()
})

t.test('per-socket order holds across direct sends, broadcasts, out-of-band sends and the ack, on both paths', async (t) => {
  const { app, clients } = await room(2, (app) => {
    app.channels.on('message', { event: 'mix' }, (socket, data) => {
      const fallbackInTheMiddle = data === 'mixed paths'
      socket.send('direct-1')
      socket.sendAndBroadcastChannel('broadcast-1', { channel: 'room' }).catch(() => {})
      // ws reads a Blob asynchronously and queues what follows: the fallback path, for real.
      if (fallbackInTheMiddle) (socket as ServerSocket).ws.send(new Blob([JSON.stringify({ type: 'message', data: 'blob' })]))
      app.send(socket.id, 'out-of-band').catch(() => {})
      socket.send('direct-2')
      app.broadcastChannel('room', 'broadcast-2').catch(() => {})
      socket.send('direct-3')
      return 'ack'
    })
  })
  t.teardown(() => app.close())
  const [sender, other] = clients
  for (const mode of ['direct path', 'mixed paths']) {
    const reply = await sender.request({ type: 'message', event: 'mix', data: mode, id: 7 })
    t.same(reply, { type: 'ack', id: 7, data: 'ack' })
    // Everything before the ack arrived before it, in the order it was sent.
    const got = sender.frames.splice(0).map((frame) => frame.data)
    const blob = mode === 'mixed paths' ? ['blob'] : []
    t.same(got, ['direct-1', 'broadcast-1', ...blob, 'out-of-band', 'direct-2', 'broadcast-2', 'direct-3'], mode)
    t.same((await other.next(isMessage)).data, 'broadcast-1', mode)
    t.same((await other.next(isMessage)).data, 'broadcast-2', mode)
  }
  for (const client of clients) client.close()
})

t.test('frames queued behind ws\'s own queue (a Blob being read) go through ws.send, in order', async (t) => {
  const { app, clients, sockets } = await room(1)
  t.teardown(() => app.close())
  const [client] = clients
  const [socket] = sockets
  const before = frameStats.built
  // ws reads a Blob asynchronously and queues whatever is sent meanwhile. (A binary frame;
  // its content is a message frame so that the test client can read it.)
  socket.ws.send(new Blob([JSON.stringify({ type: 'message', event: 'message', data: 'blob' })]))
  socket.send('after the blob')
  await app.broadcastChannel('room', 'broadcast after the blob')
  t.equal(frameStats.built, before, 'no frame built while ws had a queue: both went through ws.send')
  await until(() => client.frames.filter(isMessage).length === 3, 3000, 'the blob and the two frames queued behind it arrive')
  t.same(client.frames.splice(0).filter(isMessage).map((frame) => frame.data), ['blob', 'after the blob', 'broadcast after the blob'])
  await app.broadcastChannel('room', 'direct again')
  t.equal(frameStats.built, before + 1, 'once ws is idle again, frames go direct')
  t.same((await client.next(isMessage)).data, 'direct again')
  client.close()
})

t.test('with permessage-deflate negotiated every frame goes through ws.send (compressed), in order', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyWebsocket, { options: { perMessageDeflate: { threshold: 0 } } })
  await app.register(fastifyChannels, { client: false, heartbeat: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws`
  const client = await TestClient.connect(url, { perMessageDeflate: true })
  t.ok(client.ws.extensions.includes('permessage-deflate'), 'deflate negotiated')
  await client.subscribe('room')
  const before = frameStats.built
  for (let seq = 0; seq < 20; seq++) app.broadcastChannel('room', { seq }).catch(() => {})
  for (let seq = 0; seq < 20; seq++) t.same((await client.next(isMessage)).data, { seq })
  t.equal(frameStats.built, before, 'no uncompressed frame was built')
  client.close()
})

t.test('bytes held back to coalesce one turn do not make a reading peer a slow consumer', async (t) => {
  const disconnects: number[] = []
  const { app, url } = await startApp({ heartbeat: false, maxBufferedBytes: 16 * 1024 }, (app) => {
    app.channels.on('disconnect', (_socket, { code }) => { disconnects.push(code) })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  await client.subscribe('room')
  const padding = 'p'.repeat(4096)
  // 40 KB in one turn: more than maxBufferedBytes corked, but the kernel takes it at once.
  for (let seq = 0; seq < 10; seq++) app.broadcastChannel('room', { seq, padding }).catch(() => {})
  for (let seq = 0; seq < 10; seq++) t.equal(((await client.next(isMessage)).data as { seq: number }).seq, seq)
  t.same(disconnects, [], 'not closed')
  t.equal(client.ws.readyState, WebSocket.OPEN)
  client.close()
})

t.test('a protocol violation right after an answer: the answer and ws\'s close frame still go out', async (t) => {
  const { app, port } = await startApp({ heartbeat: false, maxPayload: 1024 }, (app) => {
    app.channels.on('message', () => 'ok')
  })
  t.teardown(() => app.close())
  const raw = await RawClient.connect(port)
  await raw.waitFor(() => raw.json().length === 1, 3000, 'the peer gets its welcome')
  // One TCP write: the server answers the first frame (corked for this turn), then ws refuses
  // the second with 1009 and the error handler terminates the socket in the same turn.
  raw.write(Buffer.concat([
    encodeClientFrame(Opcode.text, JSON.stringify({ type: 'message', data: 1, id: 1 })),
    encodeClientFrame(Opcode.text, 'x'.repeat(4096))
  ]))
  await within(raw.ended, 3000, 'a frame over maxPayload cuts the peer off')
  t.same(raw.json().slice(1), [{ type: 'ack', id: 1, data: 'ok' }])
  t.equal(raw.closeCode(), 1009)
})

/** The payload of a server frame (no mask), with the 00 00 ff ff the sender dropped put back. */
function inflateFrame (wire: Buffer, windowBits: number): string {
  let length = wire[1] & 127
  let offset = 2
  if (length === 126) {
    length = wire.readUInt16BE(2)
    offset = 4
  } else if (length === 127) {
    length = Number(wire.readBigUInt64BE(2))
    offset = 10
  }
  t.equal(wire.length - offset, length, 'the header gives the payload length')
  const payload = Buffer.concat([wire.subarray(offset), Buffer.from([0, 0, 0xff, 0xff])])
  // a fresh inflater per message: what a peer with server_no_context_takeover does
  return inflateRawSync(payload, { windowBits, finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString()
}

t.test('compressed frames stand alone: each one inflates by itself, the same message gives the same bytes', async (t) => {
  const build = detectSenderFrame(new Sender(new PassThrough()))!
  // varied sizes: tiny, a document, and incompressible data larger than the stream's output buffer
  const noise = (n: number): string => randomBytes(n).toString('base64')
  const texts = ['{"a":1}', JSON.stringify({ rows: Array.from({ length: 60 }, (_, i) => ({ id: i, name: `player-${i % 7}` })) }), noise(30_000), '{"a":1}', noise(300)]
  for (const windowBits of [15, 10]) {
    const wires = texts.map((text) => new OutboundFrame(text).deflatedBytes(build, windowBits))
    for (let i = 0; i < texts.length; i++) {
      t.equal((wires[i][0] & 0x40) !== 0, true, 'RSV1 set')
      t.equal(inflateFrame(wires[i], windowBits), texts[i], `message ${i} inflates alone (window ${windowBits})`)
    }
    t.ok(wires[0].equals(wires[3]), 'the same message, the same bytes: nothing of the ones between leaks in')
    t.ok(wires[2].length > 16 * 1024, 'a compressed payload larger than one output buffer')
  }
})
