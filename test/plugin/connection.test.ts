import t from 'tap'
import { Type } from '@sinclair/typebox'
import { ChannelError, type ChannelSocket } from '../../plugin/index.js'
import { startApp, startWithSocket, TestClient, nextId, recordSockets, until } from '../helpers/server.js'

const Chat = Type.Object({ text: Type.String({ minLength: 1, maxLength: 500 }) })

t.test('welcome is the first frame and carries an unguessable session id', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('connect', (socket) => { socket.send('hello from connect', { event: 'greeting' }) })
  })
  t.teardown(() => app.close())
  const a = await TestClient.open(url)
  const first = await a.next()
  t.equal(first.type, 'welcome')
  t.equal(first.protocol, 1)
  t.match(first.sessionId, /^[A-Za-z0-9_-]{24}$/)
  t.same(await a.next(), { type: 'message', event: 'greeting', data: 'hello from connect' }, 'connect runs after welcome')
  const b = await TestClient.connect(url)
  t.not(b.sessionId, first.sessionId)
  a.close()
  b.close()
})

t.test('subscribe, unsubscribe, idempotence', async (t) => {
  const seen: string[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('subscribe', (socket, channel) => { seen.push(`+${channel}:${[...socket.channels].join(',')}`) })
    app.channels.on('unsubscribe', (socket, channel) => { seen.push(`-${channel}:${[...socket.channels].join(',')}`) })
  })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  t.same(await c.request({ type: 'subscribe', channel: 'room-42', id: 1 }), { type: 'subscribed', channel: 'room-42', id: 1 })
  t.same(await c.request({ type: 'subscribe', channel: 'room-42', id: 2 }), { type: 'subscribed', channel: 'room-42', id: 2 }, 'again: still subscribed')
  t.same(await c.request({ type: 'unsubscribe', channel: 'room-42', id: 3 }), { type: 'unsubscribed', channel: 'room-42', id: 3 })
  t.same(await c.request({ type: 'unsubscribe', channel: 'room-42', id: 4 }), { type: 'unsubscribed', channel: 'room-42', id: 4 }, 'idempotent')
  t.same(await c.request({ type: 'unsubscribe', channel: 'never-held', id: 5 }), { type: 'unsubscribed', channel: 'never-held', id: 5 })
  t.same(seen, ['+room-42:', '-room-42:'], 'handlers run once each; unsubscribe runs after the channel left')
  t.same(app.channels.stats(), { sockets: 1, channels: 0 })
  c.close()
})

t.test('frames without an id are answered without one', async (t) => {
  const { app, url } = await startApp()
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  c.send({ type: 'subscribe', channel: 'a' })
  t.same(await c.next(), { type: 'subscribed', channel: 'a' })
  c.send({ type: 'message', event: 'nothing' })
  t.same(await c.next(), { type: 'error', code: 'NO_HANDLER', message: 'no handler for event "nothing"' })
  c.close()
})

t.test('INVALID_CHANNEL for every frame that names a bad channel', async (t) => {
  const { app, url } = await startApp({}, (app) => { app.channels.on('message', () => 'ok') })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  for (const channel of ['', 'has space', 'x'.repeat(201), 'ctl\u0001', 'nbsp\u00a0']) {
    for (const type of ['subscribe', 'unsubscribe', 'message']) {
      const answer = await c.request({ type, channel, id: nextId() })
      t.equal(answer.code, 'INVALID_CHANNEL', `${type} ${channel.length}`)
    }
  }
  t.same(app.channels.stats().channels, 0)
  c.close()
})

t.test('TOO_MANY_CHANNELS past maxChannels, for client frames and server-side subscribe', async (t) => {
  const { client: c, server } = await startWithSocket(t, { maxChannels: 2 })
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
  const { app, url } = await startApp({}, (app) => {
    sockets = recordSockets(app)
    app.channels.on('subscribe', { channel: /^private-/ }, (socket) => {
      if (socket.request.headers['x-member'] !== 'yes') throw new ChannelError('FORBIDDEN', 'members only')
    })
    app.channels.on('subscribe', { channel: 'vip' }, async () => { throw new ChannelError('PAYMENT_REQUIRED', 'vip costs extra') })
    app.channels.on('subscribe', { channel: 'broken' }, () => { throw new Error('database down: secret internals') })
    app.channels.on('error', (_socket, error) => { errors.push(error) })
  })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
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
  const member = await TestClient.connect(url, { headers: { 'x-member': 'yes' } })
  t.equal((await member.subscribe('private-1')).type, 'subscribed')
  member.close()
  c.close()
})

t.test('messages: handlers, filters, acks and every message error', async (t) => {
  const calls: string[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('message', { event: 'chat', channel: /^room-/, schema: Chat }, (socket, data, meta) => {
      calls.push(`room:${data.text}:${meta.channel ?? ''}:${meta.id ?? ''}`)
    })
    app.channels.on('message', { event: 'chat' }, async (_socket, data) => {
      calls.push('any-chat')
      return { ok: true, echoed: data }
    })
    app.channels.on('message', { event: 'chat' }, () => ({ ignored: 'a later value is not the ack' }))
    app.channels.on('message', { event: 'silent' }, () => undefined)
    app.channels.on('message', { event: 'refuse' }, () => { throw new ChannelError('NICK_TAKEN', 'that nick is taken') })
    app.channels.on('message', { event: 'crash' }, async () => { throw new Error('secret stack details') })
    app.channels.on('message', { event: 'bigint' }, () => ({ n: 1n }))
  })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  await c.subscribe('room-1')

  const ack = await c.request({ type: 'message', event: 'chat', channel: 'room-1', data: { text: 'hi' }, id: 3 })
  t.same(ack, { type: 'ack', id: 3, data: { ok: true, echoed: { text: 'hi' } } }, 'the first defined return value')
  t.same(calls, ['room:hi:room-1:3', 'any-chat'], 'all matching handlers, in registration order')

  calls.length = 0
  const invalid = await c.request({ type: 'message', event: 'chat', channel: 'room-1', data: { text: '' }, id: 4 })
  t.equal(invalid.code, 'VALIDATION_FAILED')
  t.same(invalid.errors, [{ path: '/text', message: 'Expected string length greater or equal to 1' }])
  t.same(calls, [], 'a failed schema runs no handler, not even the unvalidated ones')

  t.same(await c.request({ type: 'message', event: 'chat', data: 'no schema applies without a channel', id: 5 }),
    { type: 'ack', id: 5, data: { ok: true, echoed: 'no schema applies without a channel' } })
  t.same(await c.request({ type: 'message', event: 'silent', id: 6 }), { type: 'ack', id: 6 }, 'ack without data')
  t.same(await c.request({ type: 'message', event: 'unknown', id: 7 }),
    { type: 'error', id: 7, code: 'NO_HANDLER', message: 'no handler for event "unknown"' })
  t.same(await c.request({ type: 'message', event: 'chat', channel: 'room-2', data: { text: 'x' }, id: 8 }),
    { type: 'error', id: 8, code: 'NOT_SUBSCRIBED', message: 'not subscribed to channel "room-2"' })
  t.same(await c.request({ type: 'message', event: 'refuse', id: 9 }),
    { type: 'error', id: 9, code: 'NICK_TAKEN', message: 'that nick is taken' })
  t.same(await c.request({ type: 'message', event: 'crash', id: 10 }),
    { type: 'error', id: 10, code: 'HANDLER_ERROR', message: 'the handler failed' })
  t.same(await c.request({ type: 'message', event: 'bigint', id: 11 }),
    { type: 'error', id: 11, code: 'HANDLER_ERROR', message: 'the handler failed' }, 'an ack that cannot be encoded')

  c.send({ type: 'message', event: 'silent' })
  await c.expectNothing((f) => f.type === 'ack')
  c.close()
})

t.test('a message without event is the "message" event', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('message', { event: 'message' }, (_s, data) => ({ got: data }))
  })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  t.same(await c.request({ type: 'message', data: 1, id: 1 }), { type: 'ack', id: 1, data: { got: 1 } })
  c.close()
})

t.test('error handlers: filtered by channel, given the error, never leaking it', async (t) => {
  const seen: string[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('message', { event: 'crash' }, () => { throw new Error('boom') })
    app.channels.on('error', (_s, err) => { seen.push(`all:${err.message}`) })
    app.channels.on('error', { channel: /^room-/ }, (_s, err) => { seen.push(`room:${err.message}`) })
    app.channels.on('error', () => { throw new Error('an error handler failing is only logged') })
  })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  await c.subscribe('room-1')
  await c.request({ type: 'message', event: 'crash', id: 1 })
  await c.request({ type: 'message', event: 'crash', channel: 'room-1', id: 2 })
  t.same(seen, ['all:boom', 'all:boom', 'room:boom'])
  c.close()
})

t.test('a binary frame is a BAD_FRAME and the connection stays open', async (t) => {
  const { app, url } = await startApp({}, (app) => { app.channels.on('message', () => 'still here') })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  c.ws.send(Buffer.from('{"type":"message","id":1}'), { binary: true })
  t.same(await c.next(), { type: 'error', code: 'BAD_FRAME', message: 'binary frames are not accepted: send JSON text frames' })
  t.same(await c.request({ type: 'message', id: 2 }), { type: 'ack', id: 2, data: 'still here' })
  c.send('{"type":"message","id":3,"__proto__":{"x":1}}')
  t.equal((await c.next()).code, 'BAD_FRAME')
  c.send('{"type":"nope","id":4}')
  t.same(await c.next(), { type: 'error', id: 4, code: 'BAD_FRAME', message: 'unknown frame type' }, 'a bad frame with an id is answered with it')
  c.close()
})

t.test('frames of one socket are handled in order, even behind slow handlers', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('subscribe', async () => { await new Promise((resolve) => setTimeout(resolve, 20)) })
    app.channels.on('message', { event: 'n' }, async (_s, data) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5))
      return data
    })
  })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  c.send({ type: 'subscribe', channel: 'slow', id: 1 })
  c.send({ type: 'message', channel: 'slow', event: 'n', data: 0, id: 2 })
  for (let i = 1; i <= 20; i++) c.send({ type: 'message', event: 'n', data: i, id: 2 + i })
  t.same(await c.next(), { type: 'subscribed', channel: 'slow', id: 1 })
  t.same(await c.next(), { type: 'ack', id: 2, data: 0 }, 'the message after a subscribe sees it')
  for (let i = 1; i <= 20; i++) t.same(await c.next(), { type: 'ack', id: 2 + i, data: i })
  c.close()
})

t.test('connect: context lives as long as the connection; frames wait for connect', async (t) => {
  const contexts: unknown[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('connect', async (socket) => {
      await new Promise((resolve) => setTimeout(resolve, 30))
      socket.context.nick = `user-${socket.id.slice(0, 4)}`
    })
    app.channels.on('message', { event: 'whoami' }, (socket) => socket.context.nick)
    app.channels.on('finish', (socket) => { contexts.push(socket.context.nick) })
  })
  t.teardown(() => app.close())
  const a = await TestClient.open(url)
  a.send({ type: 'message', event: 'whoami', id: 1 }) // sent before connect handlers finished
  const welcome = await a.next()
  const nick = `user-${(welcome.sessionId as string).slice(0, 4)}`
  t.same(await a.next(), { type: 'ack', id: 1, data: nick })
  const b = await TestClient.connect(url)
  t.same(await b.request({ type: 'message', event: 'whoami', id: 2 }), { type: 'ack', id: 2, data: `user-${b.sessionId.slice(0, 4)}` }, 'one context per connection')
  a.close()
  await until(() => contexts.length === 1)
  t.same(contexts, [nick], 'context still there in finish')
  b.close()
})

t.test('a connect handler that throws closes with 1008; no disconnect or finish for it', async (t) => {
  const ran: string[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('connect', async (socket) => {
      await socket.subscribe('lobby')
      if (socket.request.headers['x-token'] !== 'ok') throw new ChannelError('UNAUTHORIZED', 'bad token')
    })
    app.channels.on('connect', (socket) => {
      if (socket.request.headers['x-crash'] === 'yes') throw new Error('internal detail')
    })
    app.channels.on('disconnect', () => { ran.push('disconnect') })
    app.channels.on('unsubscribe', () => { ran.push('unsubscribe') })
    app.channels.on('finish', () => { ran.push('finish') })
  })
  t.teardown(() => app.close())
  const refused = await TestClient.open(url)
  t.same(await refused.closed, { code: 1008, reason: 'bad token' })
  const crashed = await TestClient.open(url, { headers: { 'x-token': 'ok', 'x-crash': 'yes' } })
  t.same(await crashed.closed, { code: 1008, reason: 'connection refused' }, 'no internals in the reason')
  await until(() => app.channels.stats().sockets === 0)
  t.same(app.channels.stats(), { sockets: 0, channels: 0 }, 'the refused socket left its channels')
  t.same(ran, [])
})

t.test('disconnect order: disconnect (channels held), unsubscribe each, finish once', async (t) => {
  const log: string[] = []
  let done!: () => void
  const finished = new Promise<void>((resolve) => { done = resolve })
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('disconnect', { channel: /^room-/ }, (socket, info) => {
      log.push(`disconnect room filter: ${[...socket.channels].join(',')} code=${info.code} reason=${info.reason}`)
    })
    app.channels.on('disconnect', { channel: 'nowhere' }, () => { log.push('never: no held channel matches') })
    app.channels.on('unsubscribe', async (socket, channel) => {
      log.push(`unsubscribe ${channel}; still held: ${[...socket.channels].join(',')}`)
      await socket.broadcastChannel({ left: socket.id }, { channel, event: 'left' })
    })
    app.channels.on('finish', (socket) => {
      log.push(`finish; held: ${socket.channels.size}`)
      done()
    })
  })
  t.teardown(() => app.close())
  const leaver = await TestClient.connect(url)
  const stayer = await TestClient.connect(url)
  await leaver.subscribe('room-1')
  await leaver.subscribe('room-2')
  await stayer.subscribe('room-2')
  leaver.ws.close(4000, 'bye')
  await finished
  t.same(log, [
    'disconnect room filter: room-1,room-2 code=4000 reason=bye',
    'unsubscribe room-1; still held: room-2',
    'unsubscribe room-2; still held: ',
    'finish; held: 0'
  ])
  t.same(await stayer.next(), { type: 'message', event: 'left', channel: 'room-2', data: { left: leaver.sessionId } }, 'a leave notice reaches the others')
  t.same(app.channels.stats(), { sockets: 1, channels: 1 })
  stayer.close()
})

t.test('server-side unsubscribe and close', async (t) => {
  const { client: c, server } = await startWithSocket(t, {})
  await c.subscribe('a')
  await server.unsubscribe('a')
  t.same(await c.next(), { type: 'unsubscribed', channel: 'a' })
  await t.rejects(server.unsubscribe(''), { code: 'FST_CHANNELS_INVALID_CHANNEL' })
  server.close(4001, 'kicked')
  t.same(await c.closed, { code: 4001, reason: 'kicked' })
})

t.test('socket.channels is read-only', async (t) => {
  const { client: c, server } = await startWithSocket(t, {})
  await c.subscribe('a')
  const view = server.channels as unknown as { add?: unknown, delete?: unknown, clear?: unknown }
  t.equal(view.add, undefined)
  t.equal(view.delete, undefined)
  t.equal(view.clear, undefined)
  t.ok(server.channels.has('a'))
  const seen: string[] = []
  server.channels.forEach((channel) => seen.push(channel))
  t.same(seen, ['a'])
  c.close()
})

t.test('messageLog logs inbound and outbound frames through the Fastify logger', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  const { app, url } = await startApp({ messageLog: true }, (app) => {
    app.channels.on('message', () => 'pong')
  }, { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  await c.request({ type: 'message', data: 'ping', id: 1 })
  const inbound = lines.find((line) => line.msg === 'channels: message in')
  const outbound = lines.filter((line) => line.msg === 'channels: message out')
  t.equal(inbound?.frame, '{"type":"message","data":"ping","id":1}')
  t.equal(inbound?.sessionId, c.sessionId)
  t.ok(outbound.some((line) => line.frame === '{"type":"ack","id":1,"data":"pong"}'))
  t.ok(inbound?.reqId, 'logged through the request logger')
  c.close()
})

t.test('a bad channel name: one coded error for every server-side call, INVALID_CHANNEL for every client frame', async (t) => {
  const { client: c, server } = await startWithSocket(t, {})
  const code = 'FST_CHANNELS_INVALID_CHANNEL'
  await t.rejects(server.subscribe('a b'), { code }, 'subscribe rejects')
  await t.rejects(server.unsubscribe('a b'), { code }, 'unsubscribe rejects')
  t.throws(() => server.send(1, { channel: 'a b' }), { code }, 'send (synchronous) throws')
  await t.rejects(server.broadcastChannel(1, { channel: 'a b' }), { code }, 'broadcastChannel rejects')
  await t.rejects(server.sendAndBroadcastChannel(1, { channel: 'a b' }), { code }, 'sendAndBroadcastChannel rejects')
  t.same([...server.channels], [], 'nothing joined')
  for (const [i, type] of ['subscribe', 'unsubscribe', 'message'].entries()) {
    const answer = await c.request({ type, channel: 'a b', id: i + 1 })
    t.match(answer, { type: 'error', code: 'INVALID_CHANNEL', id: i + 1 }, `a ${type} frame`)
  }
  c.close()
})
