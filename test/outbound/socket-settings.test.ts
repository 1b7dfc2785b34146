/**
 * socket-settings.ts on real sockets: what ws keeps per socket for permessage-deflate is
 * shared, one object per distinct value (at most 16 values kept, the parameters always those the
 * socket negotiated), with `_decompress` on one prototype per class; the inflate stream is
 * released at the end of each message (fragmented ones too, and on a failed one), only where
 * the client was told not to take its context over; a socket prepared twice is left as it is; a
 * registration at the defaults leaves its sockets untouched.
 */
import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import type { AddressInfo } from 'node:net'
import WebSocket from 'ws'
import type { ChannelSocket } from '../../plugin/index.js'
import fastifyChannels from '../../plugin/index.js'
import { defaultWireSettings, kWire, prepareSocket, wireSettingsOf } from '../../plugin/outbound/socket-settings.js'
import { startApp, TestClient, type Frame } from '../helpers/server.js'

type ServerSocket = ChannelSocket & { ws: WebSocket }
interface Extension { params: Record<string, unknown>, _options: Record<string, unknown>, _inflate: unknown }

const extensionOf = (ws: WebSocket): Extension =>
  (ws as unknown as { _extensions: Record<string, Extension> })._extensions['permessage-deflate']

/** A JSON document of about `bytes` bytes that compresses like real data (repeated keys). */
function doc (bytes: number, seq = 0): { seq: number, rows: Array<{ id: number, name: string }> } {
  const rows = []
  for (let i = 0; JSON.stringify(rows).length < bytes; i++) rows.push({ id: i, name: `player-${i}-${seq}` })
  return { seq, rows }
}

async function echoApp (t: { teardown (fn: () => unknown): void }, options: Record<string, unknown>): Promise<{ url: string, sockets: ServerSocket[] }> {
  const sockets: ServerSocket[] = []
  const { app, url } = await startApp({ heartbeat: false, ...options }, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket as ServerSocket) })
    app.channels.on('message', { event: 'echo' }, (_socket, data) => data)
  })
  t.teardown(() => app.close())
  return { url, sockets }
}

// First in this file: it counts the kept values from none (each test file runs in its own process).
t.test('one shared object per distinct value, at most 16 values kept; each socket keeps the parameters it negotiated', async (t) => {
  const apps = await Promise.all(Array.from({ length: 18 }, async (_, i) => await echoApp(t, { compression: { threshold: 200 + i } })))
  // 18 distinct parameter sets (server and client windows), one per app (18 distinct option sets)
  const offer = (i: number): Record<string, number> => ({ serverMaxWindowBits: 9 + (i % 7), clientMaxWindowBits: 9 + Math.floor(i / 7) })
  const clients: TestClient[] = []
  for (let round = 0; round < 2; round++) {
    for (const [i, { url }] of apps.entries()) clients.push(await TestClient.connect(url, { perMessageDeflate: offer(i) }))
  }
  t.teardown(() => { for (const client of clients) client.close() })
  const wrong: number[] = []
  for (const [i, client] of clients.entries()) {
    const negotiated = { ...extensionOf(client.ws).params }
    const app = i % apps.length
    const params = { ...extensionOf(apps[app].sockets[Math.floor(i / apps.length)].ws).params }
    const windows = offer(app)
    if (JSON.stringify(params) !== JSON.stringify(negotiated) || params.server_max_window_bits !== windows.serverMaxWindowBits ||
      params.client_max_window_bits !== windows.clientMaxWindowBits) wrong.push(i)
  }
  t.same(wrong, [], 'every socket has the parameters it negotiated')
  const sharedParams: number[] = []
  const sharedOptions: number[] = []
  for (const [i, { sockets }] of apps.entries()) {
    const [first, second] = sockets.map((socket) => extensionOf(socket.ws))
    if (second.params === first.params) sharedParams.push(i)
    if (second._options === first._options) sharedOptions.push(i)
  }
  const first16 = Array.from({ length: 16 }, (_, i) => i)
  t.same(sharedParams, first16, 'the first 16 parameter sets are shared, the 17th and 18th are not kept')
  t.same(sharedOptions, first16, 'the first 16 option sets are shared, the 17th and 18th are not kept')
})

t.test('a registration at the defaults leaves its sockets untouched; another one\'s sockets share its settings', async (t) => {
  const plain = await echoApp(t, {})
  const compressed = await echoApp(t, { compression: { threshold: 100 } })
  const clients = [await TestClient.connect(plain.url), await TestClient.connect(compressed.url), await TestClient.connect(compressed.url)]
  t.teardown(() => { for (const client of clients) client.close() })
  const ws = plain.sockets[0].ws
  t.notOk(Object.hasOwn(ws, kWire), 'no settings set on the socket')
  t.equal(wireSettingsOf(ws), defaultWireSettings)
  t.same(defaultWireSettings, { threshold: undefined, writeDelayMs: 0 }, 'the defaults: ws\'s threshold, no write delay')
  const [a, b] = compressed.sockets.map((socket) => socket.ws)
  t.ok(Object.hasOwn(a, kWire))
  t.equal(wireSettingsOf(a), wireSettingsOf(b), 'one settings object for the registration')
  t.same(wireSettingsOf(a), { threshold: 100, writeDelayMs: 0 })
})

t.test('the prototype that releases the inflate stream is one per class, shared by the sockets', async (t) => {
  const { url, sockets } = await echoApp(t, { compression: true })
  const clients = [await TestClient.connect(url, { perMessageDeflate: true }), await TestClient.connect(url, { perMessageDeflate: true })]
  t.teardown(() => { for (const client of clients) client.close() })
  const [a, b] = sockets.map((socket) => Object.getPrototypeOf(extensionOf(socket.ws)) as object)
  t.equal(a, b, 'the same prototype')
  t.equal(Object.getPrototypeOf(a), Object.getPrototypeOf(extensionOf(clients[0].ws)), 'between the socket and ws\'s own class')
  t.ok(Object.hasOwn(a, '_decompress'))
})

t.test('a socket prepared twice is left as it is: compressed messages are still read', async (t) => {
  const { url, sockets } = await echoApp(t, { compression: true })
  const client = await TestClient.connect(url, { perMessageDeflate: { threshold: 0 } })
  t.teardown(() => client.close())
  const { ws } = sockets[0]
  const extension = extensionOf(ws)
  const prototype = Object.getPrototypeOf(extension) as object
  prepareSocket(ws, wireSettingsOf(ws))
  t.equal(Object.getPrototypeOf(extension), prototype, 'the same prototype')
  for (let i = 0; i < 2; i++) {
    const data = doc(3000, i)
    t.same(await client.request({ type: 'message', event: 'echo', data, id: 300 + i }), { type: 'ack', id: 300 + i, data })
    t.equal(extension._inflate, null, 'its inflate stream closed')
  }
})

t.test('a compressed message in fragments is inflated whole: the stream is released only at its end', async (t) => {
  const { url, sockets } = await echoApp(t, { compression: true })
  const client = await TestClient.connect(url, { perMessageDeflate: { threshold: 0 } })
  t.teardown(() => client.close())
  const extension = extensionOf(sockets[0].ws)
  for (let i = 0; i < 2; i++) {
    const data = doc(6000, i)
    const text = JSON.stringify({ type: 'message', event: 'echo', data, id: 400 + i })
    const third = Math.ceil(text.length / 3)
    for (let at = 0; at < text.length; at += third) {
      client.ws.send(text.slice(at, at + third), { binary: false, compress: true, fin: at + third >= text.length })
    }
    t.same(await client.next((frame: Frame) => frame.id === 400 + i), { type: 'ack', id: 400 + i, data })
    t.equal(extension._inflate, null, 'its inflate stream closed once the message is read')
  }
})

t.test('a compressed message too large once inflated closes the socket with 1009; the server goes on', async (t) => {
  const { url } = await echoApp(t, { compression: true, maxPayload: 1024 })
  const client = await TestClient.connect(url, { perMessageDeflate: { threshold: 0 } })
  // 8 KB once inflated, some 50 bytes on the wire: the frame passes, its inflated message does not.
  client.send({ type: 'message', event: 'echo', data: 'x'.repeat(8000), id: 500 })
  t.equal((await client.closed).code, 1009)
  const next = await TestClient.connect(url, { perMessageDeflate: { threshold: 0 } })
  t.same(await next.request({ type: 'message', event: 'echo', data: 'small', id: 501 }), { type: 'ack', id: 501, data: 'small' })
  next.close()
})

t.test('with client context takeover (an app\'s own @fastify/websocket) the inflate stream is kept between messages', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyWebsocket, { options: { perMessageDeflate: { threshold: 0 } } })
  await app.register(fastifyChannels, { client: false, heartbeat: false, compression: true })
  const sockets: ServerSocket[] = []
  app.channels.on('connect', (socket) => { sockets.push(socket as ServerSocket) })
  app.channels.on('message', { event: 'echo' }, (_socket, data) => data)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const client = await TestClient.connect(`ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws`, { perMessageDeflate: { threshold: 0 } })
  t.teardown(() => client.close())
  const extension = extensionOf(sockets[0].ws)
  t.notOk(extension.params.client_no_context_takeover, 'the client may take its context over')
  const data = doc(3000)
  // The second message, the same as the first, is compressed against it: read only with the first's window.
  for (let i = 0; i < 2; i++) {
    t.same(await client.request({ type: 'message', event: 'echo', data, id: 600 + i }), { type: 'ack', id: 600 + i, data })
    t.not(extension._inflate, null, 'the inflate stream kept for the next message')
  }
})
