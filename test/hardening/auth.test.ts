/**
 * Authorization: hooks on the upgrade request, subscribe handlers that refuse, no message to a
 * channel the socket does not hold, unguessable session ids, and no internal error text on the wire.
 */
import t, { type Test } from 'tap'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { once } from 'node:events'
import net, { type AddressInfo } from 'node:net'
import fastifyChannels, { ChannelError } from '../../plugin/index.js'
import { within } from '../helpers/deadline.js'
import { openConnections, startApp, TestClient, until } from '../helpers/server.js'
import { RawClient } from './raw-client.js'

const secret = 'db password hunter2'

/**
 * The README's example: a bearer token in the Authorization header, or `?token=` for browsers.
 * Pages from other origins are refused by the plugin's `origins` option (403, after the app's hooks).
 */
async function authorize (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.routeOptions.url !== '/ws') return
  const header = request.headers.authorization
  const query = request.query as { token?: string }
  const token = header?.startsWith('Bearer ') === true ? header.slice(7) : query.token
  if (token !== 'good-token') {
    await reply.code(401).send({ error: 'unauthorized' })
    return
  }
  ;(request as FastifyRequest & { user?: string }).user = 'alice'
}

/** The upgrade was refused with `status` (TestClient.open rejects with the HTTP status). */
async function refused (t: Test, opening: Promise<unknown>, status: number, label: string): Promise<void> {
  const err = await opening.then(() => undefined, (err: unknown) => err as { statusCode?: number })
  t.equal(err?.statusCode, status, label)
}

async function timed (work: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await work()
  return performance.now() - start
}

for (const order of ['hook before the plugin', 'hook after the plugin'] as const) {
  t.test(`an onRequest hook that replies 401 refuses the upgrade (${order}); close() stays prompt`, async (t) => {
    const app = Fastify({ logger: false })
    if (order === 'hook before the plugin') app.addHook('onRequest', authorize)
    await app.register(fastifyChannels, { client: false, origins: ['https://chat.example.com'] })
    if (order === 'hook after the plugin') app.addHook('onRequest', authorize)
    app.channels.on('connect', (socket) => {
      socket.context.user = (socket.request as FastifyRequest & { user?: string }).user
    })
    app.channels.on('message', { event: 'whoami' }, (socket) => socket.context.user)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo
    const url = `ws://127.0.0.1:${port}/ws`

    await refused(t, TestClient.open(url), 401, 'no token')
    await refused(t, TestClient.open(url, { headers: { authorization: 'Bearer bad' } }), 401, 'bad header')
    await refused(t, TestClient.open(`${url}?token=bad`), 401, 'bad query')
    await refused(t, TestClient.open(`${url}?token=good-token`, { origin: 'https://evil.example' }), 403, 'a foreign page')
    await t.rejects(RawClient.connect(port), /401/, 'a raw handshake is refused too')
    await until(() => app.websocketServer.clients.size === 0, 3000, 'ws holds no socket for a refused upgrade')
    t.equal(app.channels.stats().sockets, 0, 'no channel socket for a refused upgrade')

    const byHeader = await TestClient.connect(url, { headers: { authorization: 'Bearer good-token' } })
    const byQuery = await TestClient.connect(`${url}?token=good-token`, { origin: 'https://chat.example.com' })
    t.same(await byHeader.request({ type: 'message', event: 'whoami', id: 1 }), { type: 'ack', id: 1, data: 'alice' })
    t.same(await byQuery.request({ type: 'message', event: 'whoami', id: 2 }), { type: 'ack', id: 2, data: 'alice' })
    byQuery.close()
    await within(byQuery.closed, 3000, 'the client closes when it asks to')
    await until(() => app.websocketServer.clients.size === 1, 3000, 'ws lets go of the closed socket')

    // A refused client that keeps its end of the TCP connection open must not hold close() up.
    const lingering = net.connect({ port, host: '127.0.0.1' })
    lingering.on('error', () => {})
    const lingeringClosed = once(lingering, 'close')
    lingering.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
    const [response] = await within(once(lingering, 'data'), 3000, 'the refused client gets an answer') as [Buffer]
    t.match(response.toString(), /^HTTP\/1.1 401/)
    const ms = await timed(() => app.close())
    t.ok(ms < 1000, `close() completed promptly (${Math.round(ms)} ms)`)
    t.equal((await within(byHeader.closed, 3000, 'fastify.close() closes the authorised socket')).code, 1001)
    t.equal(await openConnections(app), 0, 'no socket left open')
    await within(lingeringClosed, 3000, 'the server hangs up on the refused client')
    t.pass('the server hung up on the refused client')
  })
}

t.test('a preValidation hook refuses too; a throwing hook gives 500 and no socket', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.addHook('preValidation', async (request, reply) => {
      if (request.headers['x-role'] === 'crash') throw new Error(secret)
      if (request.headers['x-role'] !== 'member') await reply.code(403).send({ error: 'members only' })
    })
  })
  await refused(t, TestClient.open(url), 403, 'not a member')
  await refused(t, TestClient.open(url, { headers: { 'x-role': 'crash' } }), 500, 'the hook threw')
  const member = await TestClient.connect(url, { headers: { 'x-role': 'member' } })
  t.ok(member.sessionId)
  const ms = await timed(() => app.close())
  t.ok(ms < 1000, `close() completed promptly (${Math.round(ms)} ms)`)
  t.equal(await openConnections(app), 0)
})

t.test('subscribe handlers refuse; no message reaches a channel the socket does not hold', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('subscribe', { channel: /^private-/ }, (socket) => {
      if (socket.request.headers['x-member'] !== 'yes') throw new ChannelError('FORBIDDEN', 'members only')
    })
    app.channels.on('subscribe', { channel: /^vip-/ }, async () => { throw new Error(secret) })
    app.channels.on('subscribe', { channel: /^banned-/ }, () => { throw new ChannelError('BANNED', 'you are banned') })
    app.channels.on('message', { event: 'say' }, (socket, data, meta) => {
      return socket.broadcastChannel(data, { channel: meta.channel, event: 'say' })
    })
    app.channels.on('message', { event: 'server-subscribe' }, async (socket, channel) => {
      await socket.subscribe(channel as string)
      return 'joined'
    })
  })
  t.teardown(() => app.close())
  const member = await TestClient.connect(url, { headers: { 'x-member': 'yes' } })
  const outsider = await TestClient.connect(url)
  t.match(await member.subscribe('private-1', 1), { type: 'subscribed', id: 1 })
  t.same(await outsider.subscribe('private-1', 2), { type: 'error', id: 2, code: 'FORBIDDEN', message: 'members only' })
  t.same(await outsider.subscribe('vip-1', 3), { type: 'error', id: 3, code: 'FORBIDDEN', message: 'subscription refused' },
    'a plain error refuses with FORBIDDEN and a generic message')
  t.same(await outsider.subscribe('banned-1', 4), { type: 'error', id: 4, code: 'BANNED', message: 'you are banned' })
  t.same(await outsider.request({ type: 'message', event: 'server-subscribe', data: 'private-2', id: 5 }),
    { type: 'error', id: 5, code: 'FORBIDDEN', message: 'members only' }, 'server-side subscribe() is refused the same way')

  t.match(await outsider.request({ type: 'message', event: 'say', channel: 'private-1', data: 'psst', id: 6 }),
    { type: 'error', id: 6, code: 'NOT_SUBSCRIBED' }, 'refused socket cannot write to the channel')
  t.match(await member.request({ type: 'message', event: 'say', channel: 'private-9', data: 'x', id: 7 }),
    { type: 'error', id: 7, code: 'NOT_SUBSCRIBED' }, 'nor can anyone to a channel it never joined')
  t.match(await member.request({ type: 'unsubscribe', channel: 'private-1', id: 8 }), { type: 'unsubscribed', id: 8 })
  t.match(await member.request({ type: 'message', event: 'say', channel: 'private-1', data: 'x', id: 9 }),
    { type: 'error', id: 9, code: 'NOT_SUBSCRIBED' }, 'nor after it left')
  await outsider.expectNothing((frame) => frame.event === 'say')
  t.equal(outsider.frames.length, 0)
  t.notOk(JSON.stringify([member.frames, outsider.frames]).includes('hunter2'))
})

t.test('session ids: 144 bits from the CSPRNG, base64url, unique', async (t) => {
  const { app, url } = await startApp()
  t.teardown(() => app.close())
  const ids = new Set<string>()
  for (let round = 0; round < 10; round++) {
    const clients = await Promise.all(Array.from({ length: 50 }, () => TestClient.connect(url)))
    for (const client of clients) {
      ids.add(client.sessionId)
      client.close()
    }
    await within(Promise.all(clients.map((client) => client.closed)), 5000, 'the 50 clients close when they ask to')
  }
  t.equal(ids.size, 500, '500 connections, 500 different ids')
  t.same([...ids].filter((id) => !/^[A-Za-z0-9_-]{24}$/.test(id)), [], 'each is 24 base64url characters = 144 bits')
  // Every character position varies (a counter or a timestamp prefix would not).
  for (let position = 0; position < 24; position++) {
    const seen = new Set([...ids].map((id) => id[position]))
    if (seen.size < 20) t.fail(`position ${position} takes only ${seen.size} values`)
  }
  t.pass('every position varies')
})

t.test('no internal error text reaches the client', async (t) => {
  const seen: string[] = []
  const { app, url, port } = await startApp({}, (app) => {
    app.channels.on('error', (_socket, error) => { seen.push(error.message) })
    app.channels.on('message', { event: 'throw' }, () => { throw new Error(secret) })
    app.channels.on('message', { event: 'reject' }, async () => { throw new Error(secret) })
    app.channels.on('message', { event: 'throw-string' }, () => { throw secret })
    app.channels.on('message', { event: 'throw-object' }, () => { throw Object.assign(new Error('x'), { code: 'ECONNREFUSED', detail: secret }) })
    app.channels.on('message', { event: 'bigint' }, () => ({ balance: 10n }))
    app.channels.on('message', { event: 'send-bigint' }, (socket) => { socket.send({ balance: 10n }) })
    app.channels.on('message', { event: 'cycle' }, () => { const a: Record<string, unknown> = {}; a.self = a; return a })
    app.channels.on('message', { event: 'bad-channel' }, (socket) => { socket.send('x', { channel: 'has space' }) })
    app.channels.on('connect', (socket) => {
      if (socket.request.headers['x-crash'] === 'yes') throw new Error(secret)
    })
  })
  t.teardown(() => app.close())
  // A raw client so that every byte the server sends is inspected.
  const raw = await RawClient.connect(port)
  const events = ['throw', 'reject', 'throw-string', 'throw-object', 'bigint', 'send-bigint', 'cycle', 'bad-channel']
  for (const [index, event] of events.entries()) {
    raw.sendJson({ type: 'message', event, id: index + 1 })
    await raw.waitFor(() => raw.json().some((frame) => frame.id === index + 1), 3000, `the ${event} handler's failure is answered`)
    const reply = raw.json().find((frame) => frame.id === index + 1)
    t.same(reply, { type: 'error', id: index + 1, code: 'HANDLER_ERROR', message: 'the handler failed' }, event)
  }
  t.notOk(Buffer.concat(raw.frames.map((frame) => frame.payload)).toString().includes('hunter2'), 'not a byte of it on the wire')
  t.ok(seen.filter((message) => message.includes('hunter2')).length >= 2, 'error handlers got the real errors')
  raw.destroy()

  const refused = await TestClient.open(url, { headers: { 'x-crash': 'yes' } })
  t.same(await within(refused.closed, 3000, 'a crashing connect handler closes the socket'), { code: 1008, reason: 'connection refused' },
    'a crashing connect handler: 1008, generic reason')
  t.notOk(JSON.stringify(refused.frames).includes('hunter2'))
})
