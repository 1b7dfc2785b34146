import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { connect, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import WebSocket from 'ws'
import fastifyChannels from '../../plugin/index.js'
import { within } from '../helpers/deadline.js'
import { connectionsSettleAt, startApp, TestClient, until } from '../helpers/server.js'

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
    // A peer that answers the close gets a clean 1001 (asserted below), not a cut-off. The time
    // is only bounded far below ws's 30 s close timeout, so a loaded CI machine cannot fail it.
    t.ok(ms < 15_000, `close completed without waiting for ws's close timeout (${Math.round(ms)} ms)`)
    t.equal((await within(ok.closed, 3000, 'fastify.close() closes the authorised socket')).code, 1001)
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
  // ended at once behind their 401, not only by fastify.close()
  await connectionsSettleAt(app, 0, 3000)
  const ok = await TestClient.connect(`ws://127.0.0.1:${port}/ws?token=secret`)
  ok.close()
  await within(ok.closed, 3000, 'the client closes when it asks to')
  const ms = await timed(() => app.close())
  // A refused upgrade socket left open would hold server.close() forever; the bound is far
  // above any healthy close, so a loaded CI machine cannot fail it.
  t.ok(ms < 15_000, `close completed: no refused upgrade held it (${Math.round(ms)} ms)`)
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
  // Peers that answer the close are not cut off after the grace period: they get a clean 1001
  // (asserted below). The time is only bounded far below ws's 30 s close timeout, so a loaded
  // CI machine cannot fail it.
  t.ok(ms < 15_000, `close completed without waiting for ws's close timeout (${Math.round(ms)} ms)`)
  t.equal(finished.length, 5, 'finish handlers ran before close resolved')
  for (const client of clients) {
    t.same(await within(client.closed, 3000, 'fastify.close() closes every socket'), { code: 1001, reason: 'server shutting down' })
  }
  t.has(app.channels.stats(), { sockets: 0, channels: 0 })
})

t.test('fastify.close() does not wait for a peer that never answers the close', async (t) => {
  const { app, url } = await startApp()
  const c = await TestClient.connect(url)
  // A peer that stops reading never sends its close frame back.
  c.ws.pause()
  const ms = await timed(() => app.close())
  // Without the plugin's cut-off, close would wait for ws's 30 s close timeout.
  t.ok(ms < 15_000, `close completed well before ws's close timeout (${Math.round(ms)} ms)`)
})

t.test('a frame larger than maxPayload closes the socket with 1009', async (t) => {
  const { app, url } = await startApp({ maxPayload: 1024 }, (app) => { app.channels.on('message', () => 'ok') })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  t.same(await c.request({ type: 'message', data: 'x'.repeat(900), id: 1 }), { type: 'ack', id: 1, data: 'ok' }, 'under the limit')
  c.send({ type: 'message', data: 'x'.repeat(2000), id: 2 })
  t.equal((await within(c.closed, 3000, 'a frame over maxPayload closes the socket')).code, 1009)
  await until(() => app.channels.stats().sockets === 0, 3000, 'the closed socket is gone')
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
  const frameOf = (length: number): { type: string, id: number, data: string } => {
    const frame = { type: 'message', id: 2, data: '' }
    frame.data = 'x'.repeat(length - JSON.stringify(frame).length)
    return frame
  }
  t.equal(JSON.stringify(frameOf(1000)).length, 1000)
  t.same(await c.request(frameOf(1000)), { type: 'ack', id: 2, data: 'ok' }, 'a frame of exactly maxPayload bytes is served')
  c.send({ type: 'message', data: 'x'.repeat(5000) })
  t.same(await within(c.closed, 3000, 'a frame over the plugin\'s maxPayload closes the socket'), { code: 1009, reason: 'frame too large' },
    'checked by the plugin though ws would accept it')
  const raw = new WebSocket(`ws://127.0.0.1:${port}/raw`)
  await within(once(raw, 'open'), 3000, 'the app\'s own websocket route opens')
  raw.send('hi')
  const [echo] = await within(once(raw, 'message'), 3000, 'the app\'s own websocket route echoes')
  t.equal(echo.toString(), 'raw:hi', 'the app\'s own websocket routes keep working')
  raw.close()
})

for (const return503OnClosing of [true, false]) {
  t.test(`a closing server takes no new connection, and turns away a socket that was already past its gates (return503OnClosing: ${String(return503OnClosing)})`, async (t) => {
    let finishing = (): void => {}
    const finishStarted = new Promise<void>((resolve) => { finishing = resolve })
    let arrived = (): void => {}
    const inHook = new Promise<void>((resolve) => { arrived = resolve })
    let release = (): void => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    const { app, url } = await startApp({}, (app) => {
      // The finish handler holds fastify.close() in preClose.
      app.channels.on('finish', () => {
        finishing()
        return new Promise((resolve) => setTimeout(resolve, 200))
      })
      // Past the plugin's onRequest gates, before the route handler.
      app.addHook('preValidation', async (request) => {
        if (request.headers['x-hold'] === undefined) return
        arrived()
        await held
      })
    }, { return503OnClosing })
    const c = await TestClient.connect(url)
    const racing = TestClient.open(url, { headers: { 'x-hold': '1' } })
    await within(inHook, 3000, 'the racing upgrade is past the gates')
    const closing = app.close()
    await within(finishStarted, 3000, 'fastify.close() runs the finish handler')
    // The listener is closed before the first socket is: a new connection is refused by the kernel.
    await t.rejects(TestClient.open(url), { code: 'ECONNREFUSED' }, 'a new connection is refused')
    release()
    const late = await within(racing, 3000, 'the racing upgrade completes')
    t.same(await within(late.closed, 3000, 'a socket opened while closing is closed'), { code: 1001, reason: 'server shutting down' },
      'the plugin turns it away with 1001')
    await closing
    t.equal((await within(c.closed, 3000, 'fastify.close() closes the open socket')).code, 1001)
  })
}

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
  await until(() => answers() === 1 && responses === 1, 3000, 'the first request is answered')
  socket.write('GET /ping HTTP/1.1\r\nHost: x\r\n\r\n')
  await until(() => answers() === 2 || socket.destroyed, 3000, 'the second request is answered, or the connection closes')
  t.equal(answers(), 2, 'the second request is answered on the same connection')
  socket.destroy()
})
