import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { connect, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import fastifyChannels from '../../plugin/index.js'
import { typescriptLoaderArgs } from '../helpers/child-loader.js'
import { within } from '../helpers/deadline.js'
import { startApp, startWithSocket, TestClient, until } from '../helpers/server.js'
import { RawClient, encodeClientFrame } from '../hardening/raw-client.js'

const fixture = fileURLToPath(new URL('./fixtures/upgrade-retention.ts', import.meta.url))

t.test('an open connection keeps its request, not the upgrade reply nor its ServerResponse', async (t) => {
  const execArgv = [...typescriptLoaderArgs(), '--expose-gc']
  const child = fork(fixture, { execArgv })
  const exited = once(child, 'exit')
  t.teardown(() => { if (child.exitCode === null) child.kill() }) // a missed deadline leaves no child behind
  const [report] = await within(Promise.race([
    once(child, 'message'),
    exited.then(([code]) => { throw new Error(`the fixture exited (code ${String(code)}) before reporting`) })
  ]), 60_000, 'the fixture reports what the connection retains') as [Record<string, unknown>]
  await within(exited, 10_000, 'the fixture exits once it reported')
  t.same(report, {
    reply: false,
    response: false,
    request: true,
    sameRequest: true,
    cookie: 'sid=abc',
    padLength: 4096,
    query: { room: '7' },
    rawCookie: 'sid=abc'
  }, 'reply and ServerResponse collected; the request and all a handler reads kept')
})

t.test('the connection still works both ways', async (t) => {
  const { app, url } = await startApp()
  t.teardown(() => app.close())
  const client = await TestClient.connect(url, { headers: { 'x-pad': 'x'.repeat(4096) } })
  client.send({ type: 'subscribe', channel: 'room', id: 1 })
  t.match(await client.next((f) => f.type === 'subscribed'), { channel: 'room', id: 1 })
  await app.broadcastChannel('room', { hi: 1 })
  t.match(await client.next((f) => f.type === 'message'), { channel: 'room', data: { hi: 1 } })
})

t.test('the upgrade head Buffer is let go: the request keeps its key, without the Buffer', async (t) => {
  const { server } = await startWithSocket(t)
  const raw = server.request.raw as unknown as Record<symbol, unknown>
  const head = Object.getOwnPropertySymbols(raw).filter((key) => key.description === 'ws-head')
  t.equal(head.length, 1, '@fastify/websocket still keeps the head under this key (if not, the release has nothing to do)')
  t.equal(raw[head[0]], undefined, 'released')
})

t.test('a frame sent in the same TCP write as the upgrade request is still served', async (t) => {
  const { app, port } = await startApp()
  t.teardown(() => app.close())
  const socket = connect({ host: '127.0.0.1', port })
  t.teardown(() => socket.destroy())
  await within(once(socket, 'connect'), 3000, 'the TCP connection opens')
  const payload = Buffer.from(JSON.stringify({ type: 'subscribe', channel: 'early', id: 1 }))
  // A masked text frame with an all-zero mask (the payload bytes stay as they are).
  const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload])
  const upgrade = Buffer.from([
    'GET /ws HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', '', ''
  ].join('\r\n'))
  socket.write(Buffer.concat([upgrade, frame]))
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  await until(() => received.includes('"subscribed"'), 5000).catch(() => {
    throw new Error(`expected 'subscribed' for the frame sent with the upgrade, got: ${received}`)
  })
  t.match(received, /^HTTP\/1\.1 101/)
  t.match(received, /"type":"subscribed","channel":"early","id":1/)
})

/**
 * Registers the plugin on `app`, listens, and has a raw peer send a frame with a reserved
 * opcode (ws answers 1002 and reports WS_ERR_INVALID_OPCODE); resolves once it is cut off.
 */
async function breakProtocol (t: { teardown (fn: () => unknown): void }, app: FastifyInstance): Promise<RawClient> {
  await app.register(fastifyChannels, { client: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as AddressInfo
  const client = await RawClient.connect(port)
  t.teardown(() => client.destroy())
  client.write(encodeClientFrame(0x3, ''))
  await within(client.ended, 3000, 'a peer sending a reserved opcode is cut off')
  return client
}

t.test('a peer breaking the protocol is still dropped and logged at info', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } }
  const app = Fastify({ logger: { level: 'info', stream } })
  const client = await breakProtocol(t, app)
  t.equal(client.closeCode(), 1002)
  await until(() => lines.some((l) => l.msg === 'channels: peer broke the WebSocket protocol'), 5000, 'the broken protocol is logged')
  t.notOk(lines.some((l) => l.msg === 'channels: socket error'), 'not logged as a server fault')
  await until(() => app.channels.stats().sockets === 0, 5000, 'the dropped peer\'s socket is gone')
})

t.test("an app's own @fastify/websocket keeps its error handler, which still gets the reply", async (t) => {
  const seen: Array<{ code: unknown, hasReply: boolean }> = []
  const app = Fastify({ logger: false })
  await app.register(fastifyWebsocket, {
    errorHandler: (error, socket, _request, reply) => {
      seen.push({ code: (error as Error & { code?: unknown }).code, hasReply: typeof reply?.code === 'function' })
      socket.terminate()
    }
  })
  await breakProtocol(t, app)
  await until(() => seen.length === 1, 5000, 'the app\'s error handler is called')
  t.same(seen, [{ code: 'WS_ERR_INVALID_OPCODE', hasReply: true }])
})
