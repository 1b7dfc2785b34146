/**
 * The one join/leave path (plugin/connection/membership.ts), driven through its interfaces with a real
 * handler registry: the order join → `subscribed` → after-join steps, leave → on-leave steps →
 * `unsubscribe` handlers → `unsubscribed`, and the refusals. End to end (client frames and
 * `socket.subscribe()`), the same path is covered by test/plugin/connection.test.ts.
 */
import t from 'tap'
import Fastify from 'fastify'
import type { ServerFrame } from '../../schemas/protocol.js'
import { HandlerRegistry } from '../../plugin/handlers/registry.js'
import { ChannelError } from '../../plugin/errors.js'
import { join, leave, release } from '../../plugin/connection/membership.js'
import type { ChannelStep, Member, MembershipServer } from '../../plugin/channel-steps.js'
import type { ChannelSocket } from '../../plugin/types.js'
import { startInMemory, startInMemoryWithSocket } from '../helpers/in-memory.js'
import { recordSockets } from '../helpers/server.js'
import { within } from '../helpers/deadline.js'

interface Fixture {
  socket: Member
  log: string[]
  steps: ChannelStep[]
  handlers: HandlerRegistry
  setAcceptsJoins (value: boolean): void
}

function fixture (maxChannels = 10): Fixture {
  const log: string[] = []
  const steps: ChannelStep[] = []
  const handlers = new HandlerRegistry()
  let acceptsJoins = true
  const server: MembershipServer = {
    options: { maxChannels },
    channelSteps: steps,
    async addToChannel (channel) { log.push(`add ${channel}`) },
    removeFromChannel (channel) { log.push(`remove ${channel}`) }
  }
  const subscriptions = new Set<string>()
  const unused = (): never => { throw new Error('not used by the join/leave path') }
  const api: ChannelSocket = {
    id: 'session-1',
    request: undefined as never,
    context: {},
    channels: subscriptions,
    send: unused,
    broadcast: unused,
    broadcastChannel: unused,
    sendAndBroadcast: unused,
    sendAndBroadcastChannel: unused,
    subscribe: unused,
    unsubscribe: unused,
    close: unused,
    track: unused,
    untrack: unused,
    ask: unused
  }
  const socket: Member = {
    ...api,
    server,
    subscriptions,
    pendingJoins: 0,
    get acceptsJoins () { return acceptsJoins },
    handlers,
    log: Fastify({ logger: false }).log,
    deliveryStamp: 0,
    sendFrame: unused,
    sendControl (frame: ServerFrame) { log.push(`${frame.type} ${'channel' in frame ? String(frame.channel) : ''}`) }
  }
  return { socket, log, steps, handlers, setAcceptsJoins: (value) => { acceptsJoins = value } }
}

t.test('join: handlers, membership, subscribed, then the after-join steps, in that order', async (t) => {
  const { socket, log, steps, handlers } = fixture()
  handlers.on('subscribe', (_socket: ChannelSocket, channel: string) => { log.push(`handler ${channel}`) })
  steps.push({ afterJoin: (_socket, channel, frame) => { log.push(`history ${channel} id=${String(frame?.id)}`) } })
  steps.push({ afterJoin: async (_socket, channel) => { log.push(`presence ${channel}`) } })
  await join(socket, 'room', { type: 'subscribe', channel: 'room', id: 4 })
  t.same(log, ['handler room', 'add room', 'subscribed room', 'history room id=4', 'presence room'])
  t.same([...socket.subscriptions], ['room'])

  log.length = 0
  await join(socket, 'room')
  t.same(log, ['subscribed room'], 'already held: answered, but no handler, no second replay or presence state')
})

t.test('leave: out of the channel, on-leave steps, unsubscribe handlers, unsubscribed; idempotent', async (t) => {
  const { socket, log, steps, handlers } = fixture()
  handlers.on('unsubscribe', (s: ChannelSocket, channel: string) => { log.push(`handler ${channel} held=${String(s.channels.has(channel))}`) })
  steps.push({ onLeave: (_socket, channel) => { log.push(`untrack ${channel}`) } })
  await join(socket, 'room')
  log.length = 0
  await leave(socket, 'room')
  t.same(log, ['remove room', 'untrack room', 'handler room held=false', 'unsubscribed room'])
  log.length = 0
  await leave(socket, 'room')
  t.same(log, ['unsubscribed room'], 'a channel not held is answered unsubscribed, nothing else')
})

t.test('release (a refused socket\'s cleanup): on-leave steps, no unsubscribe handlers, no answer', async (t) => {
  const { socket, log, steps, handlers } = fixture()
  handlers.on('unsubscribe', () => { log.push('handler') })
  steps.push({ onLeave: (_socket, channel) => { log.push(`untrack ${channel}`) } })
  await join(socket, 'room')
  log.length = 0
  t.equal(await release(socket, 'room'), true)
  t.equal(await release(socket, 'room'), false, 'only once')
  t.same(log, ['remove room', 'untrack room'])
})

t.test('a failing step is reported to error handlers; the subscription stands', async (t) => {
  const { socket, log, steps, handlers } = fixture()
  const errors: string[] = []
  handlers.on('error', (_socket: ChannelSocket, error: Error) => { errors.push(error.message) })
  steps.push({ afterJoin: () => { throw new Error('history store down') }, onLeave: async () => { throw new Error('presence down') } })
  steps.push({ afterJoin: () => { log.push('next step still runs') } })
  await join(socket, 'room')
  t.ok(socket.subscriptions.has('room'))
  t.ok(log.includes('next step still runs'))
  await leave(socket, 'room')
  t.same(errors, ['history store down', 'presence down'])
  t.ok(log.includes('unsubscribed room'))
})

t.test('answerJoin: the first step that answers sends subscribed itself; a throwing one is reported and skipped', async (t) => {
  const { socket, log, steps, handlers } = fixture()
  const errors: string[] = []
  handlers.on('error', (_socket: ChannelSocket, error: Error) => { errors.push(error.message) })
  steps.push({ onLeave: () => { log.push('untrack') } }) // no join hooks: skipped on join, no error
  steps.push({ answerJoin: () => { throw new Error('history store down') } })
  steps.push({ answerJoin: async (s, channel) => { log.push(`history answers ${channel}`); s.sendControl({ type: 'subscribed', channel }); return channel === 'room' } })
  steps.push({ answerJoin: () => { log.push('never asked'); return true }, afterJoin: (_socket, channel) => { log.push(`after ${channel}`) } })
  await join(socket, 'room', { type: 'subscribe', channel: 'room', id: 1 })
  t.same(log, ['add room', 'history answers room', 'subscribed room', 'after room'], 'one subscribed, from the step that answered')
  t.same(errors, ['history store down'])

  log.length = 0
  await join(socket, 'room')
  t.same(log, ['subscribed room'], 'already held: a plain subscribed, no step asked')

  log.length = 0
  const { socket: plain, log: plainLog, steps: plainSteps } = fixture()
  plainSteps.push({ answerJoin: () => false }, { answerJoin: async () => false })
  await join(plain, 'lobby')
  t.same(plainLog, ['add lobby', 'subscribed lobby'], 'no step answered: the plain subscribed')
})

t.test('joins still running count against maxChannels; a channel joined meanwhile is not joined twice', async (t) => {
  const { socket, handlers, log, steps } = fixture(1)
  const gates: Array<() => void> = []
  handlers.on('subscribe', () => new Promise<void>((resolve) => { gates.push(resolve) }))
  steps.push({ afterJoin: (_socket, channel) => { log.push(`after ${channel}`) } })
  const first = join(socket, 'a')
  await t.rejects(within(join(socket, 'b'), 2000, 'b refused at once'), { code: 'TOO_MANY_CHANNELS', message: 'a socket may hold at most 1 channels' },
    'the pending join of a counts')
  gates.splice(0).forEach((open) => { open() })
  await within(first, 2000, 'a joins once its handler is done')
  t.same([...socket.subscriptions], ['a'])

  const { socket: twice, handlers: twiceHandlers, log: twiceLog, steps: twiceSteps } = fixture(5)
  twiceHandlers.on('subscribe', () => new Promise<void>((resolve) => { gates.push(resolve) }))
  twiceSteps.push({ afterJoin: (_socket, channel) => { twiceLog.push(`after ${channel}`) } })
  const one = join(twice, 'room')
  const two = join(twice, 'room')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(gates.length, 2, 'both joins run their handlers')
  gates.splice(0).forEach((open) => { open() })
  await within(Promise.all([one, two]), 2000, 'both joins answered')
  const count = (line: string): number => twiceLog.filter((entry) => entry === line).length
  t.same([count('add room'), count('after room'), count('subscribed room')], [1, 1, 2], 'one membership, one after-join, two answers')
})

t.test('refusals: a ChannelError\'s code, FORBIDDEN for anything else, TOO_MANY_CHANNELS, a closed socket', async (t) => {
  const { socket, handlers, setAcceptsJoins, log } = fixture(1)
  handlers.on('subscribe', { channel: 'vip' }, () => { throw new ChannelError('PAYMENT_REQUIRED', 'vip costs extra') })
  handlers.on('subscribe', { channel: 'broken' }, () => { throw new Error('database down') })
  await t.rejects(join(socket, 'vip'), { code: 'PAYMENT_REQUIRED', message: 'vip costs extra' })
  await t.rejects(join(socket, 'broken'), { code: 'FORBIDDEN', message: 'subscription refused' })
  await join(socket, 'one')
  await t.rejects(join(socket, 'two'), { code: 'TOO_MANY_CHANNELS' })
  await leave(socket, 'one')
  setAcceptsJoins(false)
  await t.rejects(join(socket, 'late'), { code: 'FORBIDDEN', message: 'the socket is closed' })
  t.same([...socket.subscriptions], [])
  t.equal(socket.pendingJoins, 0, 'no join left pending')
  t.notOk(log.some((line) => line.startsWith('subscribed vip') || line.startsWith('subscribed late')), 'no subscribed for a refusal')
})

// ---- end to end: client frames and socket.subscribe() over a real socket ----

t.test('subscribe, unsubscribe, idempotence', async (t) => {
  const seen: string[] = []
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('subscribe', (socket, channel) => { seen.push(`+${channel}:${[...socket.channels].join(',')}`) })
    app.channels.on('unsubscribe', (socket, channel) => { seen.push(`-${channel}:${[...socket.channels].join(',')}`) })
  })
  t.teardown(() => app.close())
  const c = await connect()
  t.same(await c.request({ type: 'subscribe', channel: 'room-42', id: 1 }), { type: 'subscribed', channel: 'room-42', id: 1 })
  t.same(await c.request({ type: 'subscribe', channel: 'room-42', id: 2 }), { type: 'subscribed', channel: 'room-42', id: 2 }, 'again: still subscribed')
  t.same(await c.request({ type: 'unsubscribe', channel: 'room-42', id: 3 }), { type: 'unsubscribed', channel: 'room-42', id: 3 })
  t.same(await c.request({ type: 'unsubscribe', channel: 'room-42', id: 4 }), { type: 'unsubscribed', channel: 'room-42', id: 4 }, 'idempotent')
  t.same(await c.request({ type: 'unsubscribe', channel: 'never-held', id: 5 }), { type: 'unsubscribed', channel: 'never-held', id: 5 })
  t.same(seen, ['+room-42:', '-room-42:'], 'handlers run once each; unsubscribe runs after the channel left')
  t.has(app.channels.stats(), { sockets: 1, channels: 0 })
  c.close()
})

t.test('TOO_MANY_CHANNELS past maxChannels, for client frames and server-side subscribe', async (t) => {
  const { client: c, server } = await startInMemoryWithSocket(t, { maxChannels: 2 })
  await c.subscribe('a')
  await c.subscribe('b')
  const refused = await c.request({ type: 'subscribe', channel: 'c', id: 9 })
  t.equal(refused.code, 'TOO_MANY_CHANNELS')
  t.equal(refused.id, 9)
  t.equal((await c.request({ type: 'subscribe', channel: 'a', id: 10 })).type, 'subscribed', 're-subscribing a held one is fine')
  await t.rejects(server.subscribe('c'), { code: 'TOO_MANY_CHANNELS' })
  await c.request({ type: 'unsubscribe', channel: 'a', id: 11 })
  await server.subscribe('c')
  t.same(await c.next((f) => f.type === 'subscribed'), { type: 'subscribed', channel: 'c' }, 'server-side subscribe tells the client')
  t.same([...server.channels], ['b', 'c'])
  c.close()
})

t.test('subscribe handlers refuse with a ChannelError code or FORBIDDEN', async (t) => {
  let sockets = new Map<string, ChannelSocket>()
  const errors: Error[] = []
  const { app, connect } = await startInMemory({}, (app) => {
    sockets = recordSockets(app)
    app.channels.on('subscribe', { channel: /^private-/ }, (socket) => {
      if (socket.request.headers['x-member'] !== 'yes') throw new ChannelError('FORBIDDEN', 'members only')
    })
    app.channels.on('subscribe', { channel: 'vip' }, async () => { throw new ChannelError('PAYMENT_REQUIRED', 'vip costs extra') })
    app.channels.on('subscribe', { channel: 'broken' }, () => { throw new Error('database down: secret internals') })
    app.channels.on('error', (_socket, error) => { errors.push(error) })
  })
  t.teardown(() => app.close())
  const c = await connect()
  const server = sockets.get(c.sessionId) as ChannelSocket
  t.same(await c.request({ type: 'subscribe', channel: 'private-1', id: 1 }),
    { type: 'error', id: 1, code: 'FORBIDDEN', message: 'members only' })
  t.same(await c.request({ type: 'subscribe', channel: 'vip', id: 2 }),
    { type: 'error', id: 2, code: 'PAYMENT_REQUIRED', message: 'vip costs extra' }, 'an app-defined code reaches the client')
  const broken = await c.request({ type: 'subscribe', channel: 'broken', id: 3 })
  t.equal(broken.code, 'FORBIDDEN')
  t.notMatch(broken.message, /secret/, 'no internals leak')
  t.equal(errors.length, 1, 'a plain error reaches error handlers')
  t.match(errors[0].message, /database down/)
  t.equal(server.channels.size, 0)
  await t.rejects(server.subscribe('private-2'), { code: 'FORBIDDEN', message: 'members only' }, 'server-side subscribe rejects too')
  await t.rejects(server.subscribe('bad channel'), { code: 'FST_CHANNELS_INVALID_CHANNEL' })
  t.equal(app.channels.stats().channels, 0)
  const member = await connect({ headers: { 'x-member': 'yes' } })
  t.equal((await member.subscribe('private-1')).type, 'subscribed')
  member.close()
  c.close()
})
