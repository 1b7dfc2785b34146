/**
 * `maxConnections`: upgrades past the cap get 503 before any WebSocket exists and keep
 * nothing; HTTP routes stay served; a freed slot is reused, whatever freed it.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import http from 'node:http'
import { once } from 'node:events'
import net from 'node:net'
import { Writable } from 'node:stream'
import { within } from '../helpers/deadline.js'
import { connectionsSettleAt, openConnections, rawUpgrade, startApp, TestClient, until, type TestApp } from '../helpers/server.js'
import type { ChannelsOptions } from '../../plugin/index.js'

interface LogLine { level: number, msg: string, maxConnections?: number }

async function start (t: Test, options: ChannelsOptions, setup?: (app: FastifyInstance) => void): Promise<TestApp & { logs: LogLine[] }> {
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  const started = await startApp(options, (app) => {
    app.get('/health', async () => ({ ok: true }))
    setup?.(app)
  }, { logger: { level: 'info', stream } })
  t.teardown(() => started.app.close())
  return { ...started, logs }
}

/** 'open' with the client, or the HTTP status that refused it. */
async function attempt (url: string, headers: Record<string, string> = {}): Promise<TestClient | number> {
  return await TestClient.connect(url, { headers }).catch((err: unknown) => (err as { statusCode?: number }).statusCode ?? -1)
}

t.test('past maxConnections an upgrade gets 503 and no socket; HTTP is served; a freed slot is reused', async (t) => {
  const { app, url, port, logs } = await start(t, { maxConnections: 3 })
  const held = await Promise.all([attempt(url), attempt(url), attempt(url)]) as TestClient[]
  t.ok(held.every((client) => client instanceof TestClient), 'three connect')

  const answer = await rawUpgrade(port)
  t.match(answer, /^HTTP\/1.1 503 Service Unavailable\r\n/, 'the fourth gets 503, and the server hung up')
  t.same(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), {
    statusCode: 503,
    code: 'FST_CHANNELS_TOO_MANY_CONNECTIONS',
    error: 'Service Unavailable',
    message: 'this server holds its maximum of 3 WebSocket connections; retry later'
  })
  t.equal(await attempt(url), 503, 'and so does the fifth')
  const refusals = logs.filter((line) => line.msg === 'channels: upgrade refused: maxConnections reached')
  t.same(refusals.map((line) => [line.level, line.maxConnections]), [[30, 3], [30, 3]], 'an info line each')
  t.equal(app.websocketServer.clients.size, 3, 'no WebSocket was created for them')
  t.equal(app.channels.stats().sockets, 3)
  await connectionsSettleAt(app, 3)

  const health = await fetch(`http://127.0.0.1:${port}/health`)
  t.equal(health.status, 200, 'HTTP routes stay served at the cap')
  t.same(await health.json(), { ok: true })

  held[0].close()
  await within(held[0].closed, 3000, 'a held client closes when it asks to')
  const reused = await attempt(url)
  t.ok(reused instanceof TestClient, 'the freed slot is taken by the next upgrade')
  t.equal(await attempt(url), 503, 'and the cap holds again')
})

t.test('concurrent upgrades cannot overshoot the cap', async (t) => {
  const { app, url } = await start(t, { maxConnections: 5 })
  const results = await Promise.all(Array.from({ length: 40 }, () => attempt(url)))
  t.equal(results.filter((result) => result instanceof TestClient).length, 5, 'exactly five open')
  t.equal(results.filter((result) => result === 503).length, 35, 'the others get 503')
  t.equal(app.channels.stats().sockets, 5)
})

t.test('a slot is freed whatever ended the upgrade: a later hook refusing it, a failed handshake, a dropped client', async (t) => {
  const { url, port } = await start(t, { maxConnections: 1 }, (app) => {
    app.addHook('preValidation', async (request, reply) => {
      if (request.headers['x-deny'] === 'yes') await reply.code(401).send({ error: 'unauthorized' })
    })
  })
  t.equal(await attempt(url, { 'x-deny': 'yes' }), 401, 'a hook after the cap refuses')
  t.match(await rawUpgrade(port, { key: 'not a key' }), /^HTTP\/1.1 400 /, 'ws refuses a bad handshake')

  // A client that sends its upgrade and disappears while a slow hook (a database lookup) runs.
  let lookupDone = (): void => {}
  const lookup = new Promise<void>((resolve) => { lookupDone = resolve })
  const slow = await start(t, { maxConnections: 1 }, (app) => {
    app.addHook('preValidation', async (request) => {
      if (request.headers['x-slow'] === 'yes') await lookup
    })
  })
  const dropped = net.connect({ port: slow.port, host: '127.0.0.1' })
  dropped.on('error', () => {})
  dropped.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: yes\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  await until(() => slow.logs.some((line) => line.msg === 'incoming request'), 3000, 'the dropped client\'s upgrade reaches the slow hook')
  t.equal(await attempt(slow.url), 503, 'the slot is held while the upgrade runs')
  dropped.destroy()
  await within(once(dropped, 'close'), 3000, 'the dropped client\'s socket closes')
  lookupDone()
  await connectionsSettleAt(slow.app, 0)

  const after = await Promise.all([attempt(url), attempt(slow.url)])
  t.ok(after.every((result) => result instanceof TestClient), 'each slot was given back')
})

t.test('HTTP requests, even a keep-alive GET of the WebSocket route, and upgrades refused for their origin take no slot', async (t) => {
  const { url, port } = await start(t, { maxConnections: 1 })
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  for (const path of ['/ws', '/health', '/ws']) {
    const status = await within(new Promise<number>((resolve, reject) => {
      http.get({ port, host: '127.0.0.1', path, agent }, (response) => {
        response.resume()
        response.once('end', () => resolve(response.statusCode ?? -1))
      }).once('error', reject)
    }), 3000, `GET ${path} is answered`)
    t.equal(status, path === '/ws' ? 404 : 200, `GET ${path}`)
  }
  t.equal(await attempt(url, { origin: 'https://evil.example.net' }), 403, 'refused for its origin first')
  t.ok(await attempt(url) instanceof TestClient, 'the one slot is still free')
})

t.test('hundreds of upgrades refused at the cap leave no socket, and fastify.close() stays prompt', async (t) => {
  const { app, port, url } = await start(t, { maxConnections: 2 })
  const held = await Promise.all([attempt(url), attempt(url)]) as TestClient[]
  const answers: string[] = []
  for (let batch = 0; batch < 6; batch++) {
    answers.push(...await Promise.all(Array.from({ length: 50 }, () => rawUpgrade(port))))
  }
  t.equal(answers.filter((answer) => answer.startsWith('HTTP/1.1 503 ')).length, 300, '300 refused with 503')
  await connectionsSettleAt(app, 2)
  t.equal(app.websocketServer.clients.size, 2)
  const closeStarted = performance.now()
  await app.close()
  const ms = performance.now() - closeStarted
  t.ok(ms < 1000, `close() completed promptly (${Math.round(ms)} ms)`)
  const closes = await within(Promise.all(held.map((client) => client.closed)), 3000, 'fastify.close() closes the held sockets')
  t.same(closes.map((info) => info.code), [1001, 1001])
  t.equal(await openConnections(app), 0)
})

t.test('unlimited by default', async (t) => {
  const { app, url } = await start(t, {})
  const clients = await Promise.all(Array.from({ length: 60 }, () => attempt(url)))
  t.ok(clients.every((client) => client instanceof TestClient), '60 connect')
  t.equal(app.channels.stats().sockets, 60)
})

t.test('an in-process upgrade (fastify.injectWS) has no TCP socket and takes no slot', async (t) => {
  const { app, url } = await start(t, { maxConnections: 1 })
  const injected = await Promise.all([app.injectWS('/ws'), app.injectWS('/ws')])
  await until(() => app.channels.stats().sockets === 2, 3000, 'both injected sockets are served')
  const client = await attempt(url)
  t.ok(client instanceof TestClient, 'the one slot is still free for a network client')
  for (const ws of injected) ws.terminate()
  if (client instanceof TestClient) client.close()
})
