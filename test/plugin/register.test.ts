import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { connect, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import WebSocket from 'ws'
import fastifyChannels from '../../plugin/index.js'
import { startApp, TestClient, until } from '../helpers/server.js'

async function timed<T> (work: () => Promise<T>): Promise<number> {
  const start = performance.now()
  await work()
  return performance.now() - start
}

for (const hook of ['onRequest', 'preValidation'] as const) {
  t.test(`an app ${hook} hook that replies 401 refuses the upgrade`, async (t) => {
    const { app, url } = await startApp({}, (app) => {
      app.addHook(hook, async (request, reply) => {
        if (request.headers.authorization !== 'Bearer good') await reply.code(401).send({ error: 'unauthorized' })
      })
    })
    await t.rejects(TestClient.open(url), { message: 'refused with 401' })
    await t.rejects(TestClient.open(url, { headers: { authorization: 'Bearer bad' } }), { message: 'refused with 401' })
    const ok = await TestClient.connect(url, { headers: { authorization: 'Bearer good' } })
    t.ok(ok.sessionId)
    t.equal(app.channels.stats().sockets, 1, 'only the authorised socket is connected')
    const ms = await timed(() => app.close())
    t.ok(ms < 3000, `close completed promptly (${Math.round(ms)} ms)`)
    t.equal((await ok.closed).code, 1001)
  })
}

t.test('a hook registered before the plugin refuses too, and a refused upgrade leaves nothing open', async (t) => {
  const app = Fastify()
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.includes('token=secret')) return
    await reply.code(401).send()
  })
  await app.register(fastifyChannels, { client: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  for (let i = 0; i < 5; i++) await t.rejects(TestClient.open(`ws://127.0.0.1:${port}/ws`), { message: 'refused with 401' })
  const ok = await TestClient.connect(`ws://127.0.0.1:${port}/ws?token=secret`)
  ok.close()
  await ok.closed
  const ms = await timed(() => app.close())
  t.ok(ms < 3000, `close completed promptly (${Math.round(ms)} ms)`)
})

t.test('fastify.close() closes every socket with 1001 after running their disconnect sequence', async (t) => {
  const finished: string[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('finish', async (socket) => {
      await new Promise((resolve) => setTimeout(resolve, 20))
      finished.push(socket.id)
    })
  })
  const clients = await Promise.all(Array.from({ length: 5 }, () => TestClient.connect(url)))
  for (const client of clients) await client.subscribe('room')
  const ms = await timed(() => app.close())
  t.ok(ms < 3000, `close completed promptly (${Math.round(ms)} ms)`)
  t.equal(finished.length, 5, 'finish handlers ran before close resolved')
  for (const client of clients) t.same(await client.closed, { code: 1001, reason: 'server shutting down' })
  t.same(app.channels.stats(), { sockets: 0, channels: 0 })
})

t.test('fastify.close() does not wait for a peer that never answers the close', async (t) => {
  const { app, url } = await startApp()
  const c = await TestClient.connect(url)
  // A peer that stops reading never sends its close frame back.
  ;(c.ws as unknown as { _socket: { pause (): void } })._socket.pause()
  const ms = await timed(() => app.close())
  t.ok(ms < 4000, `close completed (${Math.round(ms)} ms)`)
})

t.test('a frame larger than maxPayload closes the socket with 1009', async (t) => {
  const { app, url } = await startApp({ maxPayload: 1024 }, (app) => { app.channels.on('message', () => 'ok') })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  t.same(await c.request({ type: 'message', data: 'x'.repeat(900), id: 1 }), { type: 'ack', id: 1, data: 'ok' }, 'under the limit')
  c.send({ type: 'message', data: 'x'.repeat(2000), id: 2 })
  t.equal((await c.closed).code, 1009)
  await until(() => app.channels.stats().sockets === 0)
})

t.test('an app\'s own @fastify/websocket is reused; the plugin\'s maxPayload still holds', async (t) => {
  const app = Fastify()
  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024 } })
  const theirs = app.websocketServer
  app.get('/raw', { websocket: true }, (socket) => { socket.on('message', (data) => socket.send(`raw:${data.toString()}`)) })
  await app.register(fastifyChannels, { client: false, maxPayload: 1000 })
  app.channels.on('message', () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  t.equal(app.websocketServer, theirs, 'the existing websocket server is used')
  const { port } = app.server.address() as AddressInfo
  const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`)
  t.same(await c.request({ type: 'message', id: 1 }), { type: 'ack', id: 1, data: 'ok' })
  c.send({ type: 'message', data: 'x'.repeat(5000) })
  t.equal((await c.closed).code, 1009, 'checked by the plugin though ws would accept it')
  const raw = new WebSocket(`ws://127.0.0.1:${port}/raw`)
  await once(raw, 'open')
  raw.send('hi')
  const [echo] = await once(raw, 'message')
  t.equal(echo.toString(), 'raw:hi', 'the app\'s own websocket routes keep working')
  raw.close()
})

t.test('sockets opened while the server is closing are turned away with 1001', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('finish', () => new Promise((resolve) => setTimeout(resolve, 200)))
  })
  const c = await TestClient.connect(url)
  const closing = app.close()
  const late = await TestClient.open(url).catch(() => undefined)
  if (late !== undefined) t.equal((await late.closed).code, 1001)
  else t.pass('the listener was already gone')
  await closing
  t.equal((await c.closed).code, 1001)
})

t.test('a plain HTTP request that carries an Upgrade header keeps its keep-alive connection', async (t) => {
  let responses = 0
  const { app, port } = await startApp({}, (app) => {
    app.get('/ping', async () => 'pong')
    // runs after the plugin's own onResponse hook, so once it has run, so has the plugin's
    app.addHook('onResponse', async () => { responses++ })
  })
  t.teardown(() => app.close())
  // Without `Connection: upgrade` Node treats it as HTTP: the connection must serve a second request.
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk) => { received += chunk.toString() })
  const answers = (): number => (received.match(/HTTP\/1\.1 200/g) ?? []).length
  socket.write('GET /ping HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n')
  await until(() => answers() === 1 && responses === 1)
  socket.write('GET /ping HTTP/1.1\r\nHost: x\r\n\r\n')
  await until(() => answers() === 2 || socket.destroyed).catch(() => {})
  t.equal(answers(), 2, 'the second request is answered on the same connection')
  socket.destroy()
})
