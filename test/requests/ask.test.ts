/**
 * Server → client requests (plugin/requests/, client/requests.ts): `socket.ask` answered by the
 * bundled client's `handle()`, its coded rejections, bad replies from a raw client (unknown or
 * answered `rid`, both `data` and `error`, a non-integer `rid`), replies against the rate
 * limit, the cap on waiting requests, and `fastify.channels.ask` across two nodes on the memory
 * broker (test/requests/ask-redis.test.ts runs that on Redis and a Redis Cluster).
 */
import t from 'tap'
import { memoryBroker, type ChannelSocket } from '../../plugin/index.js'
import { maxPendingRequests } from '../../plugin/requests/pending.js'
import { startApp, TestClient, until, recordSockets } from '../helpers/server.js'
import { clientFor, statusOf } from '../client/helpers.js'
import { crossNodeAskSuite } from './helpers.js'

t.test('socket.ask: the client\'s handler answers; a message handler may await it', async (t) => {
  const { app, url } = await startApp({ rateLimit: false }, (app) => {
    app.channels.on('message', { event: 'buy' }, async (socket, data) => {
      const answer = await socket.ask('confirm', { item: data })
      return { answer }
    })
    app.channels.on('connect', async (socket) => {
      socket.context.greeting = await socket.ask('hello', 'who are you?', { timeout: 2000 }).catch((err: { code: string }) => err.code)
    })
  })
  t.teardown(() => app.close())
  const client = clientFor(t, url)
  const off = client.handle('hello', (data) => `me, asked "${String(data)}"`)
  client.handle('confirm', async (data) => ({ ok: true, data }))
  const result = await client.request('buy', 'shoes')
  t.same(result, { answer: { ok: true, data: { item: 'shoes' } } }, 'the reply passed the inbox the handler holds')
  off()
  t.type(off, 'function')
})

t.test('socket.ask rejections: client error, no handler, timeout, disconnected, bad arguments', async (t) => {
  let sockets = new Map<string, ChannelSocket>()
  const { app, url } = await startApp({ rateLimit: false }, (app) => { sockets = recordSockets(app) })
  t.teardown(() => app.close())
  const client = clientFor(t, url)
  await statusOf(client, 'open')
  await until(() => sockets.size === 1)
  const socket = [...sockets.values()][0] as ChannelSocket
  client.handle('boom', () => { throw new Error('plain') })
  client.handle('bigint', () => 10n)
  client.handle('never', async () => await new Promise(() => {}))

  await t.rejects(socket.ask('boom'), { code: 'FST_CHANNELS_CLIENT_ERROR', clientCode: 'HANDLER_ERROR', message: 'plain' })
  await t.rejects(socket.ask('missing'), { code: 'FST_CHANNELS_CLIENT_ERROR', clientCode: 'NO_HANDLER' })
  await t.rejects(socket.ask('bigint'), { code: 'FST_CHANNELS_CLIENT_ERROR', clientCode: 'UNSERIALIZABLE' })
  await t.rejects(socket.ask('never', undefined, { timeout: 50 }), { code: 'FST_CHANNELS_REQUEST_TIMEOUT' })
  await t.rejects(socket.ask('', {}), { code: 'FST_CHANNELS_INVALID_ARGUMENT' })
  await t.rejects(socket.ask('x', {}, { timeout: 0 }), { code: 'FST_CHANNELS_INVALID_ARGUMENT' })
  await t.rejects(socket.ask('x', 10n), { code: 'FST_CHANNELS_UNSERIALIZABLE' })
  const pending = socket.ask('never', undefined, { timeout: 10_000 })
  client.close()
  await t.rejects(pending, { code: 'FST_CHANNELS_DISCONNECTED' })
  await t.rejects(socket.ask('never'), { code: 'FST_CHANNELS_DISCONNECTED' }, 'after the close too')
  await t.rejects(socket.ask('never', 10n), { code: 'FST_CHANNELS_DISCONNECTED' }, 'refused as closed before its data is encoded')
})

t.test('bad replies: ignored or BAD_FRAME, never a crash or a wrongly settled request', async (t) => {
  const sockets = new Map<string, ChannelSocket>()
  const { app, url } = await startApp({ rateLimit: false }, (app) => {
    app.channels.on('connect', (socket) => { sockets.set(socket.id, socket) })
  })
  t.teardown(() => app.close())
  const raw = await TestClient.connect(url)
  t.teardown(() => raw.close())
  await until(() => sockets.has(raw.sessionId))
  const socket = sockets.get(raw.sessionId) as ChannelSocket

  const first = socket.ask('q', 1)
  const request = await raw.next((frame) => frame.type === 'request')
  t.same(request, { type: 'request', rid: 1, event: 'q', data: 1 })
  raw.send({ type: 'reply', rid: 99, data: 'unknown rid' })
  raw.send({ type: 'reply', rid: 1, data: 'x', error: { code: 'E', message: 'm' } })
  t.match(await raw.next((frame) => frame.type === 'error'), { code: 'BAD_FRAME', message: 'a reply carries data or error, not both' }, 'data and error: BAD_FRAME')
  raw.send({ type: 'reply', rid: 1.5, data: 'x' })
  t.same((await raw.next((frame) => frame.type === 'error')).code, 'BAD_FRAME', 'a non-integer rid: BAD_FRAME')
  raw.send({ type: 'reply', rid: '1', data: 'x' })
  t.same((await raw.next((frame) => frame.type === 'error')).code, 'BAD_FRAME')
  raw.send({ type: 'reply', rid: 1, error: { code: '' } })
  t.same((await raw.next((frame) => frame.type === 'error')).code, 'BAD_FRAME', 'a malformed error: BAD_FRAME')
  raw.send('{"type":"\\u0072eply","rid":1,"data":"the answer"}') // escaped: reaches dispatch, not the fast path
  t.equal(await first, 'the answer', 'settled by its own reply only')
  raw.send({ type: 'reply', rid: 1, data: 'a second reply' })
  await raw.expectNothing((frame) => frame.type === 'error')

  const second = socket.ask('q', 2)
  await raw.next((frame) => frame.type === 'request' && frame.rid === 2)
  raw.send({ type: 'reply', rid: 2 })
  t.equal(await second, undefined, 'a reply without data resolves undefined')
})

t.test('replies count against the rate limit', async (t) => {
  const sockets = new Map<string, ChannelSocket>()
  const { app, url } = await startApp({ rateLimit: { max: 5, interval: 60_000 } }, (app) => {
    app.channels.on('connect', (socket) => { sockets.set(socket.id, socket) })
  })
  t.teardown(() => app.close())
  const raw = await TestClient.connect(url)
  t.teardown(() => raw.close())
  await until(() => sockets.has(raw.sessionId))
  for (let i = 0; i < 6; i++) raw.send({ type: 'reply', rid: 1000 + i })
  t.equal((await raw.next((frame) => frame.type === 'error')).code, 'RATE_LIMITED')
  const socket = sockets.get(raw.sessionId) as ChannelSocket
  const limited = socket.ask('q', undefined, { timeout: 300 })
  const request = await raw.next((frame) => frame.type === 'request')
  raw.send({ type: 'reply', rid: request.rid, data: 'dropped unparsed' })
  await t.rejects(limited, { code: 'FST_CHANNELS_REQUEST_TIMEOUT' }, 'a reply past the limit is dropped like any frame')
})

t.test('a socket holds at most maxPendingRequests waiting requests', async (t) => {
  const sockets = new Map<string, ChannelSocket>()
  const { app, url } = await startApp({ rateLimit: false }, (app) => {
    app.channels.on('connect', (socket) => { sockets.set(socket.id, socket) })
  })
  t.teardown(() => app.close())
  const raw = await TestClient.connect(url)
  t.teardown(() => raw.close())
  await until(() => sockets.has(raw.sessionId))
  const socket = sockets.get(raw.sessionId) as ChannelSocket
  const waiting = Array.from({ length: maxPendingRequests }, () => socket.ask('never', undefined, { timeout: 60_000 }))
  await t.rejects(socket.ask('one too many'), { code: 'FST_CHANNELS_TOO_MANY_REQUESTS' })
  await until(() => raw.frames.filter((frame) => frame.type === 'request').length === maxPendingRequests, 5000)
  raw.send({ type: 'reply', rid: 1, data: 'first' })
  t.equal(await waiting[0], 'first')
  t.same(await socket.ask('again', undefined, { timeout: 50 }).catch((err: { code: string }) => err.code), 'FST_CHANNELS_REQUEST_TIMEOUT', 'room again after one settled')
  raw.close()
  const settled = await Promise.allSettled(waiting.slice(1))
  t.ok(settled.every((outcome) => outcome.status === 'rejected' && (outcome.reason as { code: string }).code === 'FST_CHANNELS_DISCONNECTED'),
    'every waiting request rejects DISCONNECTED on close')
})

t.test('fastify.channels.ask across two nodes on the memory broker', async (t) => {
  const shared = memoryBroker()
  await crossNodeAskSuite(t, () => shared)
})
