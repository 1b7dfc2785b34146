/**
 * Which bytes a socket gets and when they count as a backlog, on real loopback sockets:
 * `hasBacklog` with and without a TCP socket, corked by this module or by someone else; the
 * compression threshold (the plugin's, else the negotiating registration's own, inclusive); the
 * window a frame is compressed for (the peer's `server_max_window_bits`, else 15, the frame the
 * message caches for it); a negotiation without parameters goes through ws; `writeDelayMs`
 * holds a socket's frames past the end of the turn.
 */
import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import { constants as zlibConstants, deflateRawSync } from 'node:zlib'
import WebSocket, { WebSocketServer } from 'ws'
import fastifyChannels, { type ChannelSocket } from '../../plugin/index.js'
import {
  deflateLevel, detectSenderFrame, hasBacklog, OutboundFrame, writeFrame, type FrameFn
} from '../../plugin/outbound/frame-writer.js'
import { startApp, TestClient, until, type Frame } from '../helpers/server.js'
import { spyFlushes, spyWrites } from './socket-spies.js'

/** ws's Sender: exported by ws at run time, absent from @types/ws. */
const { Sender } = WebSocket as unknown as { Sender: { new (socket: PassThrough): object, frame: FrameFn } }
const build = detectSenderFrame(new Sender(new PassThrough())) as FrameFn

type ServerSocket = ChannelSocket & { ws: WebSocket }
const rawSocket = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket
const turn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))
const isMessage = (frame: Frame): boolean => frame.type === 'message'

const built: Array<{ bytes: number, compressed?: boolean }> = []
const record = (message: unknown): void => { built.push(message as { bytes: number, compressed?: boolean }) }
subscribe('fastify-channels:frame-built', record)
t.teardown(() => { unsubscribe('fastify-channels:frame-built', record) })

/** A message frame text of exactly `bytes` bytes. */
function textOf (bytes: number): string {
  const empty = JSON.stringify({ type: 'message', event: 'pad', data: '' })
  return JSON.stringify({ type: 'message', event: 'pad', data: 'y'.repeat(bytes - empty.length) })
}

/** The frame of `text` deflated alone for a window of `windowBits` (RFC 7692: the tail dropped, RSV1). */
function deflatedFrame (text: string, windowBits: number): Buffer {
  const compressed = deflateRawSync(text, { windowBits, level: deflateLevel, finishFlush: zlibConstants.Z_SYNC_FLUSH })
  return Buffer.concat(Sender.frame(compressed.subarray(0, compressed.length - 4), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: true }))
}

t.test('hasBacklog of a ws without a TCP socket: what ws buffered for it', async (t) => {
  // a port nobody listens on: the client never gets a socket
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  const ws = new WebSocket(`ws://127.0.0.1:${port}`)
  ws.on('error', () => {})
  await new Promise((resolve) => ws.on('close', resolve))
  t.equal((ws as unknown as { _socket: unknown })._socket, null, 'no TCP socket')
  t.equal(hasBacklog(ws), false, 'nothing buffered')
  ws.send('abc', () => {})
  t.equal(ws.bufferedAmount, 3)
  t.equal(hasBacklog(ws), true, 'what was sent after the close counts')

  // a ws object of a copy without the `_socket` field: its bufferedAmount
  t.equal(hasBacklog({ bufferedAmount: 0 } as unknown as WebSocket), false)
  t.equal(hasBacklog({ bufferedAmount: 1 } as unknown as WebSocket), true)
})

t.test('hasBacklog with a TCP socket: what the kernel refused counts, corked or not; frames corked by this module do not', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => { wss.close() })
  await new Promise((resolve) => wss.once('listening', resolve))
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
  async function pair (): Promise<{ client: WebSocket, server: WebSocket, socket: Socket }> {
    const connected = new Promise<WebSocket>((resolve) => wss.once('connection', resolve))
    const client = new WebSocket(url)
    t.teardown(() => { client.terminate() })
    const [server] = await Promise.all([connected, new Promise((resolve) => client.once('open', resolve))])
    return { client, server, socket: rawSocket(server) }
  }

  const fast = await pair()
  t.equal(hasBacklog(fast.server), false, 'an idle socket')
  writeFrame(fast.server, new OutboundFrame('{"type":"message","data":1}'))
  t.ok(fast.socket.writableCorked > 0, 'corked by writeFrame for the run')
  writeFrame(fast.server, new OutboundFrame('{"type":"message","data":2}'))
  t.ok(fast.socket.writableLength > 0, 'frames queued behind the cork')
  t.equal(hasBacklog(fast.server), false, 'frames this module corked are no backlog')
  await turn()
  await turn()
  t.equal(fast.socket.writableCorked, 0, 'uncorked at the end of the turn')
  t.equal(hasBacklog(fast.server), false, 'and handed to the kernel')

  // a peer that stops reading: the kernel's buffers fill and the rest stays queued
  const slow = await pair()
  slow.client.pause() // (a no-op before the client is open)
  const chunk = Buffer.alloc(256 * 1024)
  for (let i = 0; i < 200 && slow.socket.writableLength === 0; i++) {
    slow.server.send(chunk)
    await turn()
  }
  t.ok(slow.socket.writableLength > 0, `the kernel refused some (${slow.socket.writableLength} B queued)`)
  t.equal(hasBacklog(slow.server), true, 'uncorked: the queued bytes')
  slow.socket.cork()
  t.equal(hasBacklog(slow.server), true, 'corked by someone else: still the queued bytes')
  slow.socket.uncork()
  writeFrame(slow.server, new OutboundFrame('{"type":"message","data":3}'))
  t.ok(slow.socket.writableCorked > 0, 'corked by writeFrame')
  t.equal(hasBacklog(slow.server), true, 'corked by this module: what was queued when it corked')
  await turn()
  await turn()
})

t.test('a negotiation without parameters (ws not done with it) goes through ws.send', async (t) => {
  const sent: string[] = []
  const standIn = {
    _sender: new Sender(new PassThrough()),
    _socket: { write: () => { throw new Error('not written directly') }, writableCorked: 0, writableLength: 0 },
    _extensions: { 'permessage-deflate': { params: null } },
    send (text: string) { sent.push(text) }
  }
  writeFrame(standIn as unknown as WebSocket, new OutboundFrame('{"type":"message"}'))
  t.same(sent, ['{"type":"message"}'])
})

t.test('a Sender whose `frame` is not a function is refused, even one that could be bound', async (t) => {
  const bindable = { bind: () => Sender.frame.bind(Sender) }
  const fields = { _state: 0, _queue: [], _firstFragment: true }
  const shaped = Object.assign(new (class { static frame = bindable })(), fields)
  t.equal(detectSenderFrame(shaped), undefined)
})

t.test('without the plugin\'s compression, the threshold of the registration that negotiated deflate, inclusive', async (t) => {
  const threshold = 300
  const app = Fastify({ logger: false })
  await app.register(fastifyWebsocket, { options: { perMessageDeflate: { threshold, serverNoContextTakeover: true, clientNoContextTakeover: true } } })
  const sockets: ServerSocket[] = []
  await app.register(fastifyChannels, { client: false, heartbeat: false })
  app.channels.on('connect', (socket) => { sockets.push(socket as ServerSocket) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws`
  const client = await TestClient.connect(url, { perMessageDeflate: true })
  t.teardown(() => { client.close() })
  const [socket] = sockets
  const writes = spyWrites(rawSocket(socket.ws))
  for (const [bytes, compressed] of [[threshold - 1, false], [threshold, true], [threshold + 500, true]] as const) {
    const text = textOf(bytes)
    t.equal(Buffer.byteLength(text), bytes)
    const frame = new OutboundFrame(text)
    writes.length = 0
    writeFrame(socket.ws, frame)
    t.equal(writes.length, 1, `${bytes} B: written directly`)
    t.equal((writes[0][0] & 0x40) !== 0, compressed, `${bytes} B: ${compressed ? 'compressed' : 'plain'}`)
    if (compressed) t.ok(writes[0].equals(deflatedFrame(text, 15)), `${bytes} B: the shared frame for window 15`)
    t.same((await client.next(isMessage)).data, JSON.parse(text).data)
  }
})

t.test('the window of a compressed frame: the peer\'s server_max_window_bits, else 15, as cached on the message', async (t) => {
  const sockets: ServerSocket[] = []
  const { app, url } = await startApp({ heartbeat: false, compression: true }, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket as ServerSocket) })
  })
  t.teardown(() => app.close())
  const usual = await TestClient.connect(url, { perMessageDeflate: true })
  const small = await TestClient.connect(url, { perMessageDeflate: { serverMaxWindowBits: 9 } })
  t.teardown(() => { usual.close(); small.close() })
  const [usualSocket, smallSocket] = sockets
  // Repeats more than 512 bytes apart: a 32 KB window would reach back farther than 9 bits allow.
  const text = JSON.stringify({ type: 'message', event: 'doc', data: { a: 'abcdefghij'.repeat(60), b: 'x'.repeat(700), c: 'abcdefghij'.repeat(60) } })
  const frame = new OutboundFrame(text)
  const usualWrites = spyWrites(rawSocket(usualSocket.ws))
  const smallWrites = spyWrites(rawSocket(smallSocket.ws))
  writeFrame(usualSocket.ws, frame)
  writeFrame(smallSocket.ws, frame)
  t.equal(usualWrites[0], frame.deflatedBytes(build, 15), 'no window asked: the frame the message keeps for 15')
  t.equal(smallWrites[0], frame.deflatedBytes(build, 9), 'window 9 asked: the frame for 9')
  t.ok(usualWrites[0].equals(deflatedFrame(text, 15)))
  t.ok(smallWrites[0].equals(deflatedFrame(text, 9)))
  t.notOk(smallWrites[0].equals(usualWrites[0]), 'two different frames')
  t.same((await usual.next(isMessage)).data, JSON.parse(text).data)
  t.same((await small.next(isMessage)).data, JSON.parse(text).data)
})

t.test('writeDelayMs: a frame stays corked past the end of the turn, until the delay is over', async (t) => {
  const sockets: ServerSocket[] = []
  const { app, url } = await startApp({ heartbeat: false, writeDelayMs: 150 }, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket as ServerSocket) })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.teardown(() => { client.close() })
  await new Promise((resolve) => setTimeout(resolve, 200)) // the welcome's gather is over
  const socket = rawSocket(sockets[0].ws)
  t.equal(socket.writableCorked, 0)
  const started = performance.now()
  writeFrame(sockets[0].ws, new OutboundFrame(JSON.stringify({ type: 'message', event: 'late', data: 1 })))
  await turn()
  await turn()
  t.ok(socket.writableCorked > 0, 'still corked after the turn')
  t.ok(socket.writableLength > 0, 'the frame still queued')
  t.same((await client.next(isMessage)).data, 1)
  t.ok(performance.now() - started >= 140, 'arrived once the delay was over')
  await until(() => socket.writableCorked === 0, 1000, 'uncorked after the gather')
})

/** Three server-side sockets of a plain ws server (no plugin), each with its syscall-level flushes recorded. */
async function plainSockets (t: { teardown (fn: () => unknown): void }, n: number): Promise<Array<{ ws: WebSocket, flushes: number[] }>> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => { wss.close() })
  await new Promise((resolve) => wss.once('listening', resolve))
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
  const sockets: Array<{ ws: WebSocket, flushes: number[] }> = []
  for (let i = 0; i < n; i++) {
    const connected = new Promise<WebSocket>((resolve) => wss.once('connection', resolve))
    const client = new WebSocket(url)
    t.teardown(() => { client.terminate() })
    const [ws] = await Promise.all([connected, new Promise((resolve) => client.once('open', resolve))])
    const socket = rawSocket(ws)
    const flushes = spyFlushes(socket)
    sockets.push({ ws, flushes })
  }
  return sockets
}

const message = (data: number): OutboundFrame => new OutboundFrame(JSON.stringify({ type: 'message', data }))

t.test('a run started while another socket\'s run was being flushed still leaves in one write', async (t) => {
  const [a, b, c] = await plainSockets(t, 3)
  await turn()
  await turn()
  // One run: a's and b's first frames. A microtask of that run starts c's run, whose second frame
  // is written by a microtask queued before c's first: both belong to c's run, one write.
  writeFrame(a.ws, message(1))
  queueMicrotask(() => {
    queueMicrotask(() => { writeFrame(c.ws, message(3)) })
    writeFrame(c.ws, message(2))
  })
  writeFrame(b.ws, message(1))
  await turn()
  await turn()
  t.same(a.flushes, [1])
  t.same(b.flushes, [1])
  t.same(c.flushes, [2], 'c\'s two frames in one writev')
})

t.test('runs in the turn after an early flush: what later runs write leaves at the end of the turn, together', async (t) => {
  const [a, b] = await plainSockets(t, 2)
  await turn()
  await turn()
  await new Promise<void>((resolve) => {
    writeFrame(a.ws, message(1)) // a's run: flushed by a microtask, which schedules the turn's flush
    queueMicrotask(() => {
      // after a's run was flushed: an immediate for later, then b's own run
      setImmediate(() => {
        // b was flushed and uncorked by the turn's flush: a new run, flushed when it ends
        writeFrame(b.ws, message(2))
        setImmediate(() => { writeFrame(b.ws, message(3)) })
        setImmediate(() => { writeFrame(b.ws, message(4)); setImmediate(resolve) })
      })
      writeFrame(b.ws, message(1))
    })
  })
  await turn()
  t.same(a.flushes, [1])
  // b: its first run; the run in the immediate; then the two next-iteration immediates' frames
  // queue behind the cork of that turn and leave together at its end
  t.same(b.flushes, [1, 1, 2])
})

t.test('the Sender class is probed once, not at every write', async (t) => {
  const [a] = await plainSockets(t, 1)
  writeFrame(a.ws, message(1)) // probed (or already probed) here
  const original = Sender.frame
  let calls = 0
  Sender.frame = function (this: unknown, ...args: Parameters<FrameFn>) {
    calls++
    return original.apply(this, args)
  }
  t.teardown(() => { Sender.frame = original })
  for (let i = 0; i < 3; i++) writeFrame(a.ws, message(10 + i))
  t.equal(calls, 0, 'frames built with the function found at the probe; no new probe')
  await turn()
  await turn()
})
