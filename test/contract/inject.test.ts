/**
 * `fastify.channels.inject()`: the real client over an in-memory connection, through the
 * app's HTTP server and hooks, without `listen`.
 */
import t from 'tap'
import type { Duplex } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { Type } from '@sinclair/typebox'
import fastifyChannels, { type ChannelSocket, type DisconnectInfo } from '../../plugin/index.js'
import type { ChannelsClient, Status } from '../../client/index.js'
import type { AnyEvents } from '../../schemas/events.js'

/** Resolves with what `register` hands its callback; rejects with `what` after `ms`. */
function within<T> (what: string, register: (done: (value: T) => void) => void, ms = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`expected within ${ms} ms: ${what}`)), ms)
    register((value) => {
      clearTimeout(timer)
      resolve(value)
    })
  })
}

function statusReached (client: ChannelsClient<AnyEvents>, wanted: Status): Promise<Status> {
  return within(`client status ${wanted}`, (done) => {
    if (client.status === wanted) return done(wanted)
    const off = client.onStatus((status) => {
      if (status === wanted) {
        off()
        done(status)
      }
    })
  })
}

async function build (t: { teardown (fn: () => unknown): void }, setup?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false })
  setup?.(app)
  t.teardown(() => app.close())
  return app
}

t.test('no port: the app never listens, and the client is welcomed', async (t) => {
  const app = await build(t)
  const client = await app.channels.inject()
  t.equal(app.server.listening, false)
  t.equal(client.status, 'open')
  t.type(client.sessionId, 'string')
  t.equal(app.channels.stats().sockets, 1)
})

t.test('hooks run on the upgrade: headers and query reach them, a refusal rejects with its status and body', async (t) => {
  const seen: Array<{ auth?: string, room?: string, ip: string }> = []
  const app = await build(t, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      const auth = request.headers.authorization
      seen.push({ auth, room: (request.query as { room?: string }).room, ip: request.ip })
      if (auth !== 'Bearer good') return await reply.code(401).send({ error: 'who are you?' })
    })
  })
  const client = await app.channels.inject({ headers: { authorization: 'Bearer good' }, query: { room: 'lobby' } })
  t.equal(client.status, 'open')
  t.same(seen, [{ auth: 'Bearer good', room: 'lobby', ip: '127.0.0.1' }])

  const refused = await app.channels.inject({ headers: { authorization: 'Bearer bad' } }).then(
    () => { throw new Error('expected a refusal') },
    (err: Error & { code?: string, response?: { statusCode: number, body: string } }) => err)
  t.equal(refused.code, 'FST_CHANNELS_INJECT_REFUSED')
  t.equal(refused.response?.statusCode, 401)
  t.same(JSON.parse(refused.response?.body ?? ''), { error: 'who are you?' })
  t.equal(app.channels.stats().sockets, 1, 'the refused upgrade left no socket')
})

t.test('the upgrade gates apply as to a real upgrade: a foreign Origin is refused 403, the same origin is not', async (t) => {
  const app = await build(t)
  await t.rejects(app.channels.inject({ headers: { origin: 'https://evil.example' } }),
    { code: 'FST_CHANNELS_INJECT_REFUSED', response: { statusCode: 403 } })
  const client = await app.channels.inject({ headers: { origin: 'http://localhost' } })
  t.equal(client.status, 'open', 'the injected request is for http://localhost')
})

t.test('a refused upgrade leaves nothing behind: close() completes promptly', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false })
  app.addHook('preValidation', async (_request, reply) => await reply.code(403).send())
  await t.rejects(app.channels.inject(), { code: 'FST_CHANNELS_INJECT_REFUSED', response: { statusCode: 403 } })
  await within('app.close() after a refused injection', (done) => { app.close().then(() => done(undefined), () => done(undefined)) }, 2000)
})

t.test('subscribe, request with ack, validation error, NO_HANDLER, FORBIDDEN', async (t) => {
  const app = await build(t, (app) => {
    app.channels.on('subscribe', { channel: /^private-/ }, () => { throw new Error('members only') })
    app.channels.on('message', { event: 'add', schema: Type.Object({ a: Type.Number(), b: Type.Number() }) }, (_socket, { a, b }) => a + b)
    app.channels.on('message', { event: 'where', channel: 'room-1' }, (socket) => [...socket.channels])
  })
  const client = await app.channels.inject()
  await client.subscribe('room-1')
  t.same(client.channels, ['room-1'])
  t.equal(await client.request('add', { a: 2, b: 3 }), 5)
  t.same(await client.request('where', null, { channel: 'room-1' }), ['room-1'])
  await t.rejects(client.request('add', { a: 'two', b: 3 }), { code: 'VALIDATION_FAILED', errors: [{ path: '/a' }] })
  await t.rejects(client.request('nobody', 1), { code: 'NO_HANDLER' })
  await t.rejects(client.subscribe('private-x'), { code: 'FORBIDDEN' })
  await client.unsubscribe('room-1')
  t.same(client.channels, [])
})

t.test('broadcasts arrive in order, from handlers and from the decorators', async (t) => {
  const app = await build(t, (app) => {
    app.channels.on('message', { event: 'say', channel: 'room-1' }, async (socket, data, meta) => {
      await socket.broadcastChannel(data, { channel: meta.channel, event: 'said' })
    })
  })
  const alice = await app.channels.inject()
  const bob = await app.channels.inject()
  await alice.subscribe('room-1')
  await bob.subscribe('room-1')
  const heard: unknown[] = []
  const all = within('bob hears 50 lines', (done) => {
    bob.on('said', (data, meta) => {
      heard.push(data)
      t.equal(meta.channel, 'room-1')
      if (heard.length === 50) done(undefined)
    })
  })
  for (let i = 0; i < 50; i++) alice.send('say', i, { channel: 'room-1' })
  await all
  t.same(heard, Array.from({ length: 50 }, (_, i) => i))

  const news = within<unknown>('bob hears the broadcast', (done) => { bob.on('news', done) })
  await app.broadcastChannel('room-1', { headline: 'hi' }, { event: 'news' })
  t.same(await news, { headline: 'hi' })
  const direct = within<unknown>('alice hears the send', (done) => { alice.on('direct', done) })
  await app.send(alice.sessionId as string, 'just you', { event: 'direct' })
  t.equal(await direct, 'just you')
})

t.test('a server-side close is seen by the client', async (t) => {
  const sockets = new Map<string, ChannelSocket>()
  const app = await build(t, (app) => {
    app.channels.on('connect', (socket) => { sockets.set(socket.id, socket) })
  })
  const client = await app.channels.inject({ reconnect: false })
  const closed = statusReached(client, 'closed')
  sockets.get(client.sessionId as string)?.close(4000, 'bye')
  t.equal(await closed, 'closed')

  // A client that reconnects comes back over a new in-memory connection, as over the network.
  const persistent = await app.channels.inject({ backoff: () => 10 })
  await persistent.subscribe('room-1')
  const first = persistent.sessionId as string
  const reconnecting = statusReached(persistent, 'reconnecting')
  sockets.get(first)?.close(1000)
  await reconnecting
  await statusReached(persistent, 'open')
  t.not(persistent.sessionId, first, 'a new session')
  const rejoined = await within<string[]>('the channel is rejoined', (done) => {
    const check = (): void => {
      const socket = sockets.get(persistent.sessionId as string)
      if (socket?.channels.has('room-1') === true) done([...socket.channels])
      else setImmediate(check)
    }
    check()
  })
  t.same(rejoined, ['room-1'])
})

t.test('a client close is seen by the server at once: disconnect and finish run, the socket is gone', async (t) => {
  const disconnects: DisconnectInfo[] = []
  let finished!: (id: string) => void
  const finish = new Promise<string>((resolve) => { finished = resolve })
  const app = await build(t, (app) => {
    app.channels.on('disconnect', (_socket, info) => { disconnects.push(info) })
    app.channels.on('finish', (socket) => { finished(socket.id) })
  })
  const client = await app.channels.inject()
  await client.subscribe('room-1')
  const id = client.sessionId
  client.close()
  // Far below ws's 30 s close timeout: the in-memory connection really ends.
  t.equal(await within('finish ran', (done) => { finish.then(done, () => {}) }, 1000), id)
  t.same(disconnects, [{ code: 1000, reason: '' }])
  t.has(app.channels.stats(), { sockets: 0, channels: 0 })
})

t.test('app.close() closes injected clients for good (no reconnect into a closed app)', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false })
  const client = await app.channels.inject({ backoff: () => 5 })
  const codes: Status[] = []
  client.onStatus((status) => codes.push(status))
  await app.close()
  t.equal(client.status, 'closed')
  t.equal(codes.at(-1), 'closed')
})

t.test('a connect handler that refuses closes the client with 1008 (no reconnect)', async (t) => {
  const app = await build(t, (app) => {
    app.channels.on('connect', () => { throw new Error('not today') })
  })
  const client = await app.channels.inject().catch((err: unknown) => err)
  // The welcome comes first, so the client may be open for a moment before the 1008.
  if (client instanceof Error) {
    t.match(client, { code: 'FST_CHANNELS_INJECT_FAILED' })
  } else {
    t.equal(await statusReached(client as ChannelsClient<AnyEvents>, 'closed'), 'closed')
  }
})

t.test('an https or http2 app cannot be injected into: a clear error', async (t) => {
  const app = Fastify({ logger: false, http2: true })
  await app.register(fastifyChannels, { client: false })
  t.teardown(() => app.close())
  await t.rejects(app.channels.inject(), { code: 'FST_CHANNELS_INJECT_FAILED' })
})

t.test("@fastify/websocket's injectWS works too (its upgrade request has no socket)", async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyWebsocket)
  await app.register(fastifyChannels, { client: false })
  app.channels.on('message', { event: 'echo' }, (_socket, data) => data)
  const disconnected = new Promise<void>((resolve) => { app.channels.on('disconnect', () => resolve()) })
  t.teardown(() => app.close())
  await app.ready()
  const frames: Array<Record<string, unknown>> = []
  let twoFrames!: () => void
  const welcomeAndAck = within('welcome and ack', (done) => { twoFrames = () => done(undefined) })
  // The welcome may arrive before injectWS resolves: listen from the start.
  const ws = await app.injectWS('/ws', {}, {
    onInit: (ws) => {
      ws.on('message', (data: Buffer) => {
        frames.push(JSON.parse(data.toString()) as Record<string, unknown>)
        if (frames.length === 2) twoFrames()
      })
    }
  })
  ws.send(JSON.stringify({ type: 'message', event: 'echo', data: 'hi', id: 1 }))
  await welcomeAndAck
  t.match(frames, [{ type: 'welcome' }, { type: 'ack', id: 1, data: 'hi' }])
  ws.terminate()
  await within('the server sees the injectWS socket go', (done) => { disconnected.then(done, () => {}) })
})

t.test('an https app is refused too, each with its reason', async (t) => {
  const https = Fastify({ logger: false, https: {} })
  await https.register(fastifyChannels, { client: false })
  t.teardown(() => https.close())
  await t.rejects(https.channels.inject(), { code: 'FST_CHANNELS_INJECT_FAILED', message: /not https/ })
  const http2 = Fastify({ logger: false, http2: true })
  await http2.register(fastifyChannels, { client: false })
  t.teardown(() => http2.close())
  await t.rejects(http2.channels.inject(), { code: 'FST_CHANNELS_INJECT_FAILED', message: /not http2/ })
})

t.test('a refusal keeps its headers and the first 64 KiB of its body', async (t) => {
  const app = await build(t, (app) => {
    app.addHook('onRequest', async (_request, reply) => await reply.code(429).header('retry-after', '7').send('x'.repeat(100_000)))
  })
  const refused = await app.channels.inject().then(
    () => { throw new Error('expected a refusal') },
    (err: Error & { response?: { statusCode: number, headers: Record<string, unknown>, body: string } }) => err)
  t.equal(refused.response?.statusCode, 429)
  t.equal(refused.response?.headers['retry-after'], '7')
  t.equal(refused.response?.body, 'x'.repeat(65536))
  t.match(refused.message, /refused with HTTP 429/)
})

t.test('no welcome within the timeout: FST_CHANNELS_INJECT_FAILED, and the client is closed for good', async (t) => {
  let release = (): void => {}
  const app = await build(t, (app) => {
    app.addHook('onRequest', async () => { await new Promise<void>((resolve) => { release = resolve }) })
  })
  const started = Date.now()
  await t.rejects(app.channels.inject({ timeout: 100 }), { code: 'FST_CHANNELS_INJECT_FAILED', message: /no welcome within 100 ms/ })
  t.ok(Date.now() - started < 2000, 'rejected at the timeout, not at the default one')
  release()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(app.channels.stats().sockets, 0, 'the upgrade that came late found the client gone')
})

t.test('an upgrade given up before it opened drops the server end of its connection (nothing is kept for a hook that never settles)', async (t) => {
  const stuck: Duplex[] = []
  let hold = false
  const sockets = new Map<string, ChannelSocket>()
  const app = await build(t, (app) => {
    app.addHook('onRequest', async (request) => {
      if (!request.ws || !hold) return
      stuck.push(request.raw.socket)
      await new Promise<void>(() => {}) // never settles
    })
    app.channels.on('connect', (socket) => { sockets.set(socket.id, socket) })
  })
  const dropped = (index: number): Promise<boolean> => within(`the server end of upgrade #${index} is destroyed`, (done) => {
    const check = (): void => { if (stuck[index]?.destroyed === true) done(true); else setTimeout(check, 5) }
    check()
  })

  // inject() rejected at its timeout
  hold = true
  await t.rejects(app.channels.inject({ timeout: 50 }), { code: 'FST_CHANNELS_INJECT_FAILED' })
  t.equal(stuck.length, 1)
  t.ok(await dropped(0), 'the timed-out upgrade')

  // a reconnect stuck in the hook, abandoned by client.close()
  hold = false
  const client = await app.channels.inject({ backoff: () => 10 })
  hold = true
  sockets.get(client.sessionId as string)?.close(4000)
  await within('the reconnect reaches the hook', (done) => {
    const check = (): void => { if (stuck.length === 2) done(true); else setTimeout(check, 5) }
    check()
  })
  t.equal(stuck[1].destroyed, false, 'pending while the client still waits')
  client.close()
  t.ok(await dropped(1), 'the abandoned reconnect')
})
