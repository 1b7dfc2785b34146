/**
 * The client when the connection drops: reconnect with backoff (the random wait after a server
 * that went away is reconnect-jitter.test.ts), resubscribe, the offline queue and its bound,
 * DISCONNECTED for requests on the wire, and the closes it must not reconnect after (its own
 * close(), 1008).
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { ChannelError } from '../../plugin/index.js'
import type { ChannelSocket } from '../../plugin/types.js'
import type { ChannelsClientError, Status } from '../../client/index.js'
import { startApp, until } from '../helpers/server.js'
import { clientFor, nextEvent, statusOf } from './helpers.js'

interface Server {
  app: FastifyInstance
  url: string
  /** every socket that connected, in order */
  sockets: ChannelSocket[]
  /** every frame handled by the server, as "session:what" */
  log: string[]
  /** resolves the pending 'hold' request */
  release: () => void
}

async function server (t: Test, options: { refuse?: () => boolean } = {}): Promise<Server> {
  const state = { sockets: [], log: [], release: () => {} } as unknown as Server
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('connect', (socket) => {
      if (options.refuse?.() === true) throw new ChannelError('BANNED', 'go away')
      state.sockets.push(socket)
    })
    app.channels.on('subscribe', (socket, channel) => {
      if (channel === 'members-only' && socket.context.member !== true) throw new ChannelError('FORBIDDEN', 'members only')
      state.log.push(`${state.sockets.indexOf(socket)}:subscribe ${channel}`)
    })
    app.channels.on('message', { event: 'note' }, (socket, data, meta) => {
      state.log.push(`${state.sockets.indexOf(socket)}:note ${String(data)}${meta.channel === undefined ? '' : ' @' + meta.channel}`)
      return data
    })
    app.channels.on('message', { event: 'login' }, (socket) => { socket.context.member = true })
    app.channels.on('message', { event: 'hold' }, (socket) => new Promise<void>((resolve) => {
      state.log.push(`${state.sockets.indexOf(socket)}:hold`)
      state.release = resolve
    }))
  })
  t.teardown(() => app.close())
  state.url = url
  state.app = app
  return state
}

for (const [how, cut] of [
  ['a server-side close (4000)', (socket: ChannelSocket) => socket.close(4000, 'bye')],
  ['a server-side close (1001)', (socket: ChannelSocket) => socket.close(1001, 'restart')],
  ['a dropped TCP connection (1006)', (socket: ChannelSocket) => (socket as unknown as { ws: { terminate: () => void } }).ws.terminate()]
] as const) {
  t.test(`reconnects after ${how}, with a new session, and resubscribes every channel`, async (t) => {
    const s = await server(t)
    // A 1001 is followed by a random wait of up to reconnectJitter (reconnect-jitter.test.ts).
    const client = clientFor(t, s.url, { reconnectJitter: 100 })
    await client.subscribe('room-a')
    await client.subscribe('room-b')
    const first = client.sessionId
    const statuses: Status[] = []
    client.onStatus((status) => statuses.push(status))

    cut(s.sockets[0])
    await statusOf(client, 'reconnecting')
    t.same(client.channels, ['room-a', 'room-b'], 'the channels stay wanted while offline')
    await statusOf(client, 'open')
    t.same(statuses, ['reconnecting', 'open'])
    t.not(client.sessionId, first)
    t.equal(client.sessionId, s.sockets[1].id)
    await until(() => s.sockets[1].channels.size === 2, 3000, 'the new session rejoins both channels')
    t.same([...s.sockets[1].channels], ['room-a', 'room-b'], 'resubscribed in subscription order')
    t.same(client.channels, ['room-a', 'room-b'])

    const got = nextEvent(client, 'news')
    await s.app.broadcastChannel('room-b', 'fresh', { event: 'news' })
    t.same(await got, { data: 'fresh', channel: 'room-b' }, 'channel traffic flows again')
  })
}

t.test('sends made offline are queued and sent after the resubscribe, in order', async (t) => {
  const s = await server(t)
  const client = clientFor(t, s.url)
  await client.subscribe('room-a')
  const replies: Array<Promise<unknown>> = []
  client.onStatus((status) => {
    if (status !== 'reconnecting') return
    // Synchronously inside the status change: certainly offline.
    t.equal(client.send('note', 1, { channel: 'room-a' }), true)
    replies.push(client.request('note', 2, { channel: 'room-a' }))
    t.equal(client.send('note', 3), true)
    t.equal(client.queued, 3)
  })
  s.sockets[0].close(4000)
  await statusOf(client, 'reconnecting')
  await statusOf(client, 'open')
  t.same(await Promise.all(replies), [2], 'the queued request is answered by the new session')
  await until(() => s.log.length === 5, 3000, 'the queued frames reach the new session')
  t.same(s.log, ['0:subscribe room-a', '1:subscribe room-a', '1:note 1 @room-a', '1:note 2 @room-a', '1:note 3'])
  t.equal(client.queued, 0)
})

t.test('the offline queue is bounded: past maxQueue, send returns false and request rejects QUEUE_FULL', async (t) => {
  const s = await server(t)
  const client = clientFor(t, s.url, { maxQueue: 2, backoff: () => 200 })
  await statusOf(client, 'open')
  s.sockets[0].close(4000)
  await statusOf(client, 'reconnecting')
  t.equal(client.send('note', 'a'), true)
  const queuedRequest = client.request('note', 'b')
  t.equal(client.send('note', 'c'), false, 'dropped: the queue is full')
  await t.rejects(client.request('note', 'd'), { code: 'QUEUE_FULL' })
  await statusOf(client, 'open')
  t.equal(await queuedRequest, 'b')
  await until(() => s.log.length === 2, 3000, 'the queued send and request reach the new session')
  t.same(s.log, ['1:note a', '1:note b'], 'what fit was sent, in order; the rest never')
})

t.test('a request on the wire when the connection drops rejects DISCONNECTED; a queued one survives', async (t) => {
  const s = await server(t)
  const client = clientFor(t, s.url)
  await statusOf(client, 'open')
  const held = client.request('hold', null)
  await until(() => s.log.includes('0:hold'), 3000, 'the held request reaches the server')
  s.sockets[0].close(4000)
  const error = await held.catch((err: ChannelsClientError) => err)
  t.match(error, { name: 'ChannelsClientError', code: 'DISCONNECTED' })
  s.release()
  t.equal(client.status, 'reconnecting', 'it rejects as soon as the drop is seen')
  await statusOf(client, 'open')
  t.equal(await client.request('note', 'after'), 'after')
})

t.test('a subscription on the wire when the connection drops rejects DISCONNECTED and is not rejoined', async (t) => {
  const s = await server(t)
  const client = clientFor(t, s.url)
  await statusOf(client, 'open')
  const held = client.request('hold', null).catch((err: ChannelsClientError) => err) // blocks the socket's frame queue
  const joining = client.subscribe('room-late')
  s.sockets[0].close(4000)
  await t.rejects(joining, { code: 'DISCONNECTED', channel: 'room-late' })
  t.match(await held, { code: 'DISCONNECTED' })
  s.release()
  await statusOf(client, 'open')
  t.same(client.channels, [])
})

t.test('a subscription asked for while offline is made once connected', async (t) => {
  const s = await server(t)
  const client = clientFor(t, s.url, { backoff: () => 100 })
  await statusOf(client, 'open')
  s.sockets[0].close(4000)
  await statusOf(client, 'reconnecting')
  const joined = client.subscribe('room-z')
  t.equal(client.subscribe('room-z'), joined, 'the same pending promise')
  await joined
  t.equal(client.status, 'open')
  t.same([...s.sockets[1].channels], ['room-z'])

  // unsubscribe while offline: nothing to undo, the next session starts without it
  s.sockets[1].close(4000)
  await statusOf(client, 'reconnecting')
  const waiting = client.subscribe('room-never')
  await client.unsubscribe('room-z')
  await client.unsubscribe('room-never')
  await t.rejects(waiting, { code: 'CANCELLED' })
  await statusOf(client, 'open')
  await client.request('note', 'sync')
  t.same([...s.sockets[2].channels], [])
})

t.test('frames sent from an "open" status listener precede the resubscribe (re-authentication)', async (t) => {
  const s = await server(t)
  const client = clientFor(t, s.url)
  client.onStatus((status) => { if (status === 'open') client.send('login', null) })
  await client.subscribe('members-only')
  s.sockets[0].close(4000)
  await statusOf(client, 'reconnecting')
  await statusOf(client, 'open')
  await until(() => s.sockets[1].channels.has('members-only'), 3000, 'the new session, logged in first, rejoins members-only')
  t.pass('the rejoin passed the subscribe handler that needs the login')
})

t.test('a refused rejoin drops the channel and reaches onError', async (t) => {
  const s = await server(t)
  const client = clientFor(t, s.url)
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  await client.request('login', null)
  await client.subscribe('members-only')
  await client.subscribe('room-a')
  s.sockets[0].close(4000) // the new session has not logged in
  await statusOf(client, 'reconnecting')
  await until(() => errors.length === 1, 3000, 'the refused rejoin reaches onError')
  t.match(errors[0], { code: 'FORBIDDEN', channel: 'members-only' })
  t.same(client.channels, ['room-a'])
})

t.test('no reconnect after 1008 (refused on purpose): closed, and pending requests reject', async (t) => {
  let refuse = false
  const s = await server(t, { refuse: () => refuse })
  const client = clientFor(t, s.url)
  await client.subscribe('room-a')
  const statuses: Status[] = []
  client.onStatus((status) => statuses.push(status))
  const held = client.request('hold', null)
  refuse = true
  s.sockets[0].close(1008, 'policy')
  await t.rejects(held, { code: 'DISCONNECTED' })
  await statusOf(client, 'closed')
  t.same(statuses, ['closed'])
  t.same(client.channels, [])
  await t.rejects(client.request('note', 1), { code: 'CLOSED' })
})

t.test('a connect handler that refuses (1008) stops the client from retrying', async (t) => {
  const s = await server(t, { refuse: () => true })
  const client = clientFor(t, s.url)
  await statusOf(client, 'closed')
  t.equal(s.sockets.length, 0)
})

t.test('keeps trying while the server is down, then connects', async (t) => {
  // A port with nothing listening yet: take one, free it, connect to it, then listen there.
  const { default: Fastify } = await import('fastify')
  const { default: fastifyChannels } = await import('../../plugin/index.js')
  const probe = Fastify()
  await probe.listen({ port: 0, host: '127.0.0.1' })
  const freePort = (probe.server.address() as { port: number }).port
  await probe.close()
  const tries: number[] = []
  const client = clientFor(t, `ws://127.0.0.1:${freePort}/ws`, { backoff: (n) => { tries.push(n); return 10 } })
  await until(() => tries.length >= 3, 3000, 'the client keeps trying while nothing listens')
  t.equal(client.status, 'reconnecting')
  const late = Fastify()
  await late.register(fastifyChannels, { client: false })
  t.teardown(() => late.close())
  await late.listen({ port: freePort, host: '127.0.0.1' })
  await statusOf(client, 'open')
  t.same(tries.slice(0, 3), [1, 2, 3], 'the backoff is asked with a growing try count')
})

t.test('close() from a "reconnecting" listener stops for good: no retry is even scheduled', async (t) => {
  const s = await server(t)
  const tries: number[] = []
  const client = clientFor(t, s.url, { backoff: (n) => { tries.push(n); return 10 } })
  await statusOf(client, 'open')
  client.onStatus((status) => { if (status === 'reconnecting') client.close() })
  s.sockets[0].close(4000)
  await statusOf(client, 'closed')
  t.same(tries, [], 'the backoff was never asked: no reconnect is scheduled')
  t.equal(s.sockets.length, 1)
})

t.test('a rejoin of more channels than the rate limit allows is not throttled', async (t) => {
  const sockets: ChannelSocket[] = []
  const { app, url } = await startApp({ rateLimit: { max: 2, interval: 60_000 } }, (app) => {
    app.channels.on('connect', async (socket) => {
      if (sockets.push(socket) === 1) for (const channel of ['a', 'b', 'c', 'd', 'e']) await socket.subscribe(channel)
    })
  })
  t.teardown(() => app.close())
  const client = clientFor(t, url)
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  await until(() => client.channels.length === 5, 3000, 'the client tracks the five server-side subscriptions')
  sockets[0].close(4000)
  await until(() => sockets.length === 2 && sockets[1].channels.size === 5, 5000, 'the new session rejoins all five channels')
  t.same(errors, [], 'no RATE_LIMITED: the first maxChannels subscribe frames do not count')
})

t.test('a rejoin the server dropped (rate limit) is sent again after the timeout', async (t) => {
  const sockets: ChannelSocket[] = []
  const { app, url } = await startApp({ rateLimit: { max: 2, interval: 300 }, maxChannels: 3 }, (app) => {
    app.channels.on('connect', async (socket) => {
      // The first session is put in three channels by the server, so that the client's
      // resubscribe after the reconnect is three frames at once: one more than the limit.
      if (sockets.push(socket) === 1) for (const channel of ['a', 'b', 'c']) await socket.subscribe(channel)
    })
    app.channels.on('message', () => {})
  })
  t.teardown(() => app.close())
  const client = clientFor(t, url, { timeout: 400 })
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  await until(() => client.channels.length === 3, 3000, 'the client tracks the three server-side subscriptions')
  // Three frames that mention "subscribe" go out before the rejoin (status listeners run
  // first) and use up the rejoin exemption (maxChannels = 3), so the rejoin counts again.
  const off = client.onStatus((status) => {
    if (status !== 'open') return
    off()
    for (let i = 0; i < 3; i++) client.send('note', 'subscribe')
  })
  sockets[0].close(4000)
  await until(() => sockets.length === 2 && sockets[1].channels.size === 3, 5000, 'the dropped rejoin is sent again and all three are joined')
  t.same([...sockets[1].channels].sort(), ['a', 'b', 'c'])
  t.match(errors, [{ code: 'RATE_LIMITED' }], 'the dropped frame was reported')
  t.same(client.channels, ['a', 'b', 'c'])
})
