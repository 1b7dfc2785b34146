/**
 * `compression`: permessage-deflate without context takeover, each message compressed once and
 * the same frame (RSV1 set) written to every socket that negotiated it; plain sockets get the
 * plain frame; payloads under the threshold go plain; no socket keeps a zlib context.
 */
import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { AddressInfo } from 'node:net'
import WebSocket from 'ws'
import fastifyChannels, { type ChannelSocket } from '../../plugin/index.js'
import { connect } from '../../client/index.js'
import { startApp, TestClient, until, type Frame } from '../helpers/server.js'
import { spyWrites } from './socket-spies.js'

const isMessage = (frame: Frame): boolean => frame.type === 'message'

const built = { plain: 0, compressed: 0 }
const count = (message: unknown): void => {
  if ((message as { compressed?: boolean }).compressed === true) built.compressed++
  else built.plain++
}
subscribe('fastify-channels:frame-built', count)
t.teardown(() => { unsubscribe('fastify-channels:frame-built', count) })

type ServerSocket = ChannelSocket & { ws: WebSocket }
interface Extension { params: Record<string, unknown>, _inflate: unknown, _deflate: unknown }
const extensionOf = (socket: ServerSocket): Extension | undefined =>
  (socket.ws as unknown as { _extensions: Record<string, Extension | undefined> })._extensions['permessage-deflate']

/** The permessage-deflate parameters a client negotiated (ws's `extensions` lists names only). */
const negotiated = (client: TestClient): Record<string, unknown> =>
  (client.ws as unknown as { _extensions: Record<string, { params: Record<string, unknown> }> })._extensions['permessage-deflate'].params

/** A JSON document of about `bytes` bytes that compresses like real data (repeated keys). */
function doc (bytes: number, seq = 0): { seq: number, rows: Array<{ id: number, name: string, score: number }> } {
  const rows = []
  for (let i = 0; JSON.stringify(rows).length < bytes; i++) rows.push({ id: i, name: `player-${i}`, score: (i * 7919 + seq) % 1000 })
  return { seq, rows }
}

async function compressedApp (t: { teardown (fn: () => unknown): void }, threshold?: number): Promise<{ url: string, sockets: ServerSocket[], app: Awaited<ReturnType<typeof startApp>>['app'] }> {
  const sockets: ServerSocket[] = []
  const { app, url } = await startApp({ heartbeat: false, compression: threshold === undefined ? true : { threshold } }, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket as ServerSocket) })
    app.channels.on('message', { event: 'echo' }, (_socket, data) => data)
  })
  t.teardown(() => app.close())
  return { app, url, sockets }
}

t.test('a deflate client and a plain one get the same data; one compressed frame serves every deflate socket', async (t) => {
  const { app, url, sockets } = await compressedApp(t)
  const deflating = await Promise.all([0, 1, 2].map(() => TestClient.connect(url, { perMessageDeflate: true })))
  const plain = await TestClient.connect(url, { perMessageDeflate: false })
  const clients = [...deflating, plain]
  for (const client of clients) await client.subscribe('room')
  for (const client of deflating) {
    t.match(client.ws.extensions, /permessage-deflate/)
    t.match(negotiated(client), { server_no_context_takeover: true, client_no_context_takeover: true }, 'no context takeover either way')
  }
  t.equal(plain.ws.extensions, '', 'the plain client negotiated nothing')
  const writes = sockets.map((socket) => spyWrites(socket.request.raw.socket))

  const big = doc(2048)
  const before = { ...built }
  await app.broadcastChannel('room', big, { event: 'doc' })
  t.equal(built.compressed - before.compressed, 1, 'compressed once for the three deflate sockets')
  t.equal(built.plain - before.plain, 1, 'the plain frame built once for the plain socket')
  const compressedFrames = writes.filter((w) => w.length === 1 && (w[0][0] & 0x40) !== 0).map((w) => w[0])
  t.equal(compressedFrames.length, 3, 'three sockets got an RSV1 frame')
  t.ok(compressedFrames.every((frame) => frame === compressedFrames[0]), 'the very same Buffer')
  const plainFrame = writes.find((w) => w.length === 1 && w[0][0] === 0x81)?.[0]
  t.ok(plainFrame !== undefined, 'the plain socket got a plain text frame')
  t.ok(compressedFrames[0].length < (plainFrame as Buffer).length * 0.5, `compressed ${compressedFrames[0].length} B against ${(plainFrame as Buffer).length} B`)
  for (const client of clients) t.same((await client.next(isMessage)).data, big)

  // Under the threshold: plain for everyone, and no compression at all.
  for (const w of writes) w.length = 0
  const small = { text: 'short' }
  const beforeSmall = { ...built }
  await app.broadcastChannel('room', small, { event: 'doc' })
  t.equal(built.compressed, beforeSmall.compressed, 'nothing compressed under the threshold')
  for (const w of writes) t.equal(w[0][0], 0x81, 'a plain text frame, RSV1 clear')
  for (const client of clients) t.same((await client.next(isMessage)).data, small)

  // Many in one turn, in order, on both kinds of socket.
  for (let seq = 0; seq < 20; seq++) app.broadcastChannel('room', seq % 2 === 0 ? doc(1500, seq) : { seq }).catch(() => {})
  for (const client of clients) {
    for (let seq = 0; seq < 20; seq++) t.same((await client.next(isMessage)).data, seq % 2 === 0 ? doc(1500, seq) : { seq })
  }
  for (const client of clients) client.close()
})

t.test('no socket keeps a zlib context: ws never deflates, and an inbound inflate stream is closed after each message', async (t) => {
  const { app, url, sockets } = await compressedApp(t)
  // threshold 0: this client compresses everything it sends.
  const client = await TestClient.connect(url, { perMessageDeflate: { threshold: 0 } })
  await client.subscribe('room')
  const [socket] = sockets
  const extension = extensionOf(socket) as Extension
  t.ok(extension !== undefined)
  for (let i = 0; i < 3; i++) {
    const data = doc(3000, i)
    const reply = await client.request({ type: 'message', event: 'echo', data, id: 100 + i })
    t.same(reply, { type: 'ack', id: 100 + i, data }, 'a compressed inbound message is read (and the ack compressed)')
    t.equal(extension._inflate, null, 'its inflate stream is closed once the message is read')
  }
  await app.broadcastChannel('room', doc(4000))
  await client.next(isMessage)
  t.equal(extension._deflate, null, 'ws never opened a deflate stream: compression happens once per message, outside ws')
  client.close()
})

t.test('what ws keeps per socket for the extension is shared: its options, the parameters, the release of the inflate stream', async (t) => {
  const { url, sockets } = await compressedApp(t)
  const clients = [
    await TestClient.connect(url, { perMessageDeflate: { threshold: 0 } }),
    await TestClient.connect(url, { perMessageDeflate: { threshold: 0 } })
  ]
  t.teardown(() => { for (const client of clients) client.close() })
  const [a, b] = sockets.map((socket) => extensionOf(socket) as Extension & { _options: unknown })
  t.equal(a.params, b.params, 'one parameters object')
  t.same({ ...a.params }, { server_no_context_takeover: true, client_no_context_takeover: true }, 'with what was negotiated')
  t.equal(a._options, b._options, 'one options object')
  t.notOk(Object.hasOwn(a, '_decompress'), 'no per-socket function')
  for (const [i, client] of clients.entries()) {
    const data = doc(3000, i)
    t.same(await client.request({ type: 'message', event: 'echo', data, id: 200 + i }), { type: 'ack', id: 200 + i, data }, 'compressed inbound messages are still read')
  }
  t.equal(a._inflate, null, 'and their inflate streams closed')
  t.equal(b._inflate, null)
})

t.test('a peer that asks for a smaller window gets frames compressed with it', async (t) => {
  const { app, url } = await compressedApp(t)
  const small = await TestClient.connect(url, { perMessageDeflate: { serverMaxWindowBits: 9 } })
  const usual = await TestClient.connect(url, { perMessageDeflate: true })
  t.match(negotiated(small), { server_max_window_bits: 9 })
  await small.subscribe('room')
  await usual.subscribe('room')
  const before = built.compressed
  // Repeats more than 512 bytes apart: a 32 KB window would reach back farther than 9 bits allow.
  const data = { a: doc(2000, 1), b: 'x'.repeat(700), c: doc(2000, 1) }
  await app.broadcastChannel('room', data)
  t.equal(built.compressed - before, 2, 'one frame per window size')
  t.same((await small.next(isMessage)).data, data)
  t.same((await usual.next(isMessage)).data, data)
  small.close()
  usual.close()
})

t.test('compression: { threshold } sets the smallest payload compressed', async (t) => {
  const { app, url } = await compressedApp(t, 100)
  const client = await TestClient.connect(url, { perMessageDeflate: true })
  await client.subscribe('room')
  const before = built.compressed
  await app.broadcastChannel('room', { text: 'y'.repeat(10) })
  t.equal(built.compressed, before, 'an 82-byte frame payload goes plain')
  await app.broadcastChannel('room', { text: 'y'.repeat(200) })
  t.equal(built.compressed, before + 1, 'a 272-byte one is compressed')
  t.same((await client.next(isMessage)).data, { text: 'y'.repeat(10) })
  t.same((await client.next(isMessage)).data, { text: 'y'.repeat(200) })
  client.close()
})

t.test('the bundled client (over ws, which offers deflate) reads compressed frames', async (t) => {
  const { app, url } = await compressedApp(t)
  const client = connect(url, { WebSocket: WebSocket as never })
  t.teardown(() => client.close())
  const got: unknown[] = []
  client.on('doc', (data) => { got.push(data) })
  await client.subscribe('room')
  const data = doc(4000)
  await app.broadcastChannel('room', data, { event: 'doc' })
  await until(() => got.length === 1, 3000, 'the document arrives')
  t.same(got, [data])
})

t.test('compression off: nothing is negotiated', async (t) => {
  const { app, url } = await startApp({ heartbeat: false })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url, { perMessageDeflate: true })
  t.equal(client.ws.extensions, '')
  client.close()
})

t.test('an app\'s own @fastify/websocket with context takeover: compression still works, through ws', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyWebsocket, { options: { perMessageDeflate: { threshold: 0 } } })
  await app.register(fastifyChannels, { client: false, heartbeat: false, compression: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws`
  const client = await TestClient.connect(url, { perMessageDeflate: true })
  t.notOk(negotiated(client).server_no_context_takeover, 'the app\'s registration negotiated context takeover')
  await client.subscribe('room')
  const before = { ...built }
  for (let seq = 0; seq < 5; seq++) await app.broadcastChannel('room', doc(2000, seq))
  for (let seq = 0; seq < 5; seq++) t.same((await client.next(isMessage)).data, doc(2000, seq))
  t.same(built, before, 'no shared frame: ws compressed each in the socket\'s own stream')
  client.close()
})

t.test('options holding an object (an app\'s zlib options) stay per socket and take no place among the shared values', async (t) => {
  const zlibInflateOptions = { chunkSize: 32 * 1024 }
  const own = Fastify({ logger: false })
  await own.register(fastifyWebsocket, { options: { perMessageDeflate: { threshold: 0, zlibInflateOptions } } })
  await own.register(fastifyChannels, { client: false, heartbeat: false, compression: true })
  const ownSockets: ServerSocket[] = []
  own.channels.on('connect', (socket) => { ownSockets.push(socket as ServerSocket) })
  await own.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => own.close())
  const ownUrl = `ws://127.0.0.1:${(own.server.address() as AddressInfo).port}/ws`
  // more sockets than values are kept shared (16)
  const clients = []
  for (let i = 0; i < 20; i++) clients.push(await TestClient.connect(ownUrl, { perMessageDeflate: true }))
  const options = ownSockets.map((socket) => (extensionOf(socket) as Extension & { _options: Record<string, unknown> })._options)
  t.equal(new Set(options).size, 20, 'each socket its own options')
  t.ok(options.every((o) => o.zlibInflateOptions === zlibInflateOptions), 'all holding the app\'s zlib options')

  // Another registration's options (plain values) are still shared.
  const { url, sockets } = await compressedApp(t, 321)
  clients.push(await TestClient.connect(url, { perMessageDeflate: true }), await TestClient.connect(url, { perMessageDeflate: true }))
  const [a, b] = sockets.map((socket) => (extensionOf(socket) as Extension & { _options: unknown })._options)
  t.equal(a, b, 'one options object for the other registration\'s sockets')
  for (const client of clients) client.close()
})
