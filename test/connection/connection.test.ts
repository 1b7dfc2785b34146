/**
 * One connection end to end (plugin/connection/connection.ts): welcome, the socket API handed to handlers,
 * inbound order, connect, close, messageLog. Its parts have their own files: dispatch,
 * membership, lifecycle, inbox, connection-state, outbound, report.
 */
import t from 'tap'
import { ChannelError } from '../../plugin/index.js'
import { events } from '../../plugin/observability/events.js'
import { startInMemory, startInMemoryWithSocket } from '../helpers/in-memory.js'
import { within } from '../helpers/deadline.js'
import { startApp, until } from '../helpers/server.js'
import { Opcode, RawClient } from '../hardening/raw-client.js'

t.test('welcome is the first frame and carries an unguessable session id', async (t) => {
  const { app, connect, open } = await startInMemory({}, (app) => {
    app.channels.on('connect', (socket) => { socket.send('hello from connect', { event: 'greeting' }) })
  })
  t.teardown(() => app.close())
  const a = await open()
  const first = await a.next()
  t.equal(first.type, 'welcome')
  t.equal(first.protocol, 1)
  t.match(first.sessionId, /^[A-Za-z0-9_-]{24}$/)
  t.same(await a.next(), { type: 'message', event: 'greeting', data: 'hello from connect' }, 'connect runs after welcome')
  const b = await connect()
  t.not(b.sessionId, first.sessionId)
  a.close()
  b.close()
})

t.test('a binary frame is a BAD_FRAME and the connection stays open', async (t) => {
  const { app, connect } = await startInMemory({}, (app) => { app.channels.on('message', () => 'still here') })
  t.teardown(() => app.close())
  const c = await connect()
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
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('subscribe', async () => { await new Promise((resolve) => setTimeout(resolve, 20)) })
    app.channels.on('message', { event: 'n' }, async (_s, data) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5))
      return data
    })
  })
  t.teardown(() => app.close())
  const c = await connect()
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
  const { app, connect, open } = await startInMemory({}, (app) => {
    app.channels.on('connect', async (socket) => {
      await new Promise((resolve) => setTimeout(resolve, 30))
      socket.context.nick = `user-${socket.id.slice(0, 4)}`
    })
    app.channels.on('message', { event: 'whoami' }, (socket) => socket.context.nick)
    app.channels.on('finish', (socket) => { contexts.push(socket.context.nick) })
  })
  t.teardown(() => app.close())
  const a = await open()
  a.send({ type: 'message', event: 'whoami', id: 1 }) // sent before connect handlers finished
  const welcome = await a.next()
  const nick = `user-${(welcome.sessionId as string).slice(0, 4)}`
  t.same(await a.next(), { type: 'ack', id: 1, data: nick })
  const b = await connect()
  t.same(await b.request({ type: 'message', event: 'whoami', id: 2 }), { type: 'ack', id: 2, data: `user-${b.sessionId.slice(0, 4)}` }, 'one context per connection')
  a.close()
  await until(() => contexts.length === 1, 3000, 'finish runs for the closed connection')
  t.same(contexts, [nick], 'context still there in finish')
  b.close()
})

t.test('server-side unsubscribe and close', async (t) => {
  const { client: c, server } = await startInMemoryWithSocket(t, {})
  await c.subscribe('a')
  await server.unsubscribe('a')
  t.same(await c.next(), { type: 'unsubscribed', channel: 'a' })
  await t.rejects(server.unsubscribe(''), { code: 'FST_CHANNELS_INVALID_CHANNEL' })
  server.close(4001, 'kicked')
  t.same(await within(c.closed, 3000, 'socket.close() closes the client'), { code: 4001, reason: 'kicked' })
})

t.test('socket.close() defaults to 1000 without a reason; a reason past 123 bytes is cut to fit', async (t) => {
  const plain = await startInMemoryWithSocket(t, {})
  plain.server.close()
  t.same(await within(plain.client.closed, 3000, 'socket.close() closes the client'), { code: 1000, reason: '' })
  const long = await startInMemoryWithSocket(t, {})
  long.server.close(4002, 'é'.repeat(100))
  t.same(await within(long.client.closed, 3000, 'socket.close() with a long reason closes the client'), { code: 4002, reason: 'é'.repeat(61) })
})

t.test('socket.channels is read-only', async (t) => {
  const { client: c, server } = await startInMemoryWithSocket(t, {})
  await c.subscribe('a')
  for (const method of ['add', 'delete', 'clear']) t.notOk(method in server.channels, `no ${method}`)
  t.ok(server.channels.has('a'))
  const seen: string[] = []
  server.channels.forEach((channel) => seen.push(channel))
  t.same(seen, ['a'])
  c.close()
})

t.test('messageLog logs inbound and outbound frames through the Fastify logger', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  const { app, connect } = await startInMemory({ messageLog: true }, (app) => {
    app.channels.on('message', () => 'pong')
  }, { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  const c = await connect()
  await c.request({ type: 'message', data: 'ping', id: 1 })
  const inbound = lines.find((line) => line.msg === 'channels: message in')
  const outbound = lines.filter((line) => line.msg === 'channels: message out')
  t.equal(inbound?.frame, '{"type":"message","data":"ping","id":1}')
  t.equal(inbound?.sessionId, c.sessionId)
  t.ok(outbound.some((line) => line.frame === '{"type":"ack","id":1,"data":"pong"}'))
  t.ok(inbound?.reqId, 'logged through the request logger')
  c.close()
})

t.test('messageLog of two apps in one process: each logs its own sockets\' frames only, and stops on close', async (t) => {
  const logOf = async (): Promise<{ lines: Array<Record<string, unknown>>, started: Awaited<ReturnType<typeof startInMemory>> }> => {
    const lines: Array<Record<string, unknown>> = []
    const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
    const started = await startInMemory({ messageLog: true }, (app) => {
      app.channels.on('message', () => 'pong')
    }, { logger: { level: 'info', stream } })
    return { lines, started }
  }
  const one = await logOf()
  const two = await logOf()
  t.teardown(() => one.started.app.close())
  t.teardown(() => two.started.app.close())
  const c = await two.started.connect()
  await c.request({ type: 'message', data: 'ping', id: 1 })
  const logged = (lines: Array<Record<string, unknown>>): Array<Record<string, unknown>> => lines.filter((line) => String(line.msg).startsWith('channels: message'))
  t.same(logged(one.lines), [], 'the other app logs nothing of them')
  t.same(logged(two.lines).map((line) => line.msg), ['channels: message out', 'channels: message in', 'channels: message out'], 'welcome, ping, ack: once each')
  c.close()
  await one.started.app.close()
  await two.started.app.close()
  t.equal(events.frameIn.hasSubscribers, false, 'closed: no frame-in subscriber left')
  t.equal(events.frameOut.hasSubscribers, false, 'closed: no frame-out subscriber left')
})

t.test('without messageLog no frame is logged', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('message', () => 'pong')
  }, { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  const c = await connect()
  t.same(await c.request({ type: 'message', data: 'ping', id: 1 }), { type: 'ack', id: 1, data: 'pong' })
  t.same(lines.filter((line) => String(line.msg).startsWith('channels: message')), [])
  c.close()
})

t.test('a connect handler refusing with a ChannelError is logged at info; any other throw is an error event', async (t) => {
  for (const thrown of [new ChannelError('NOT_INVITED', 'not invited'), new Error('connect broke')]) {
    const lines: Array<Record<string, unknown>> = []
    const errors: unknown[] = []
    const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
    const { app, open } = await startInMemory({}, (app) => {
      app.channels.on('connect', () => { throw thrown })
      app.channels.on('error', (_socket, err) => { errors.push(err) })
    }, { logger: { level: 'info', stream } })
    t.teardown(() => app.close())
    const c = await open()
    const { sessionId } = await c.next()
    t.equal((await within(c.closed, 3000, 'the refused connection closes')).code, 1008)
    const refusals = lines.filter((line) => line.msg === 'channels: connection refused')
    if (thrown instanceof ChannelError) {
      t.same(errors, [], 'a refusal is no error event')
      t.match(refusals, [{ sessionId, code: 'NOT_INVITED' }], 'logged at info with its code')
    } else {
      t.same(errors, [thrown], 'any other throw is an error event')
      t.same(refusals, [])
    }
  }
})

t.test('sendAndBroadcastChannel from a socket holding no channel still reaches the sender', async (t) => {
  const { client, server } = await startInMemoryWithSocket(t)
  await server.sendAndBroadcastChannel('to myself', { event: 'note' })
  t.same(await client.next(), { type: 'message', event: 'note', data: 'to myself' })
})

t.test('frames queued behind a slow handler are not handled once the socket closed', async (t) => {
  let release = (): void => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const handled: unknown[] = []
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('message', { event: 'slow' }, async () => { await gate })
    app.channels.on('message', { event: 'count' }, (_socket, data) => { handled.push(data) })
  })
  t.teardown(() => app.close())
  const c = await connect()
  c.send({ type: 'message', event: 'slow', data: 0 })
  for (let i = 1; i <= 3; i++) c.send({ type: 'message', event: 'count', data: i })
  await new Promise((resolve) => setTimeout(resolve, 50)) // all three queued behind the slow one
  c.close()
  await within(c.closed, 3000, 'the client closes')
  await until(() => app.channels.stats().sockets === 0, 3000, 'the server saw the close')
  release()
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(handled, [], 'the queued frames were dropped with the socket')
})

t.test('nothing is written behind the close frame: a send right after socket.close() is dropped', async (t) => {
  const { app, port } = await startApp({}, (app) => {
    app.channels.on('message', { event: 'bye' }, (socket) => {
      socket.close(4000, 'bye')
      socket.send('too late', { event: 'late' })
    })
  })
  t.teardown(() => app.close())
  const raw = await RawClient.connect(port)
  t.teardown(() => raw.destroy())
  raw.sendJson({ type: 'message', event: 'bye' })
  await raw.waitFor(() => raw.closeCode() !== undefined, 3000, 'the close frame arrives')
  await new Promise((resolve) => setTimeout(resolve, 100)) // a frame written behind it would be here by now
  const close = raw.frames.findIndex((frame) => frame.opcode === Opcode.close)
  t.equal(raw.closeCode(), 4000)
  t.same(raw.frames.slice(close + 1), [], 'no frame after the close frame')
})

t.test('a bad channel name: one coded error for every server-side call, INVALID_CHANNEL for every client frame', async (t) => {
  const { client: c, server } = await startInMemoryWithSocket(t, {})
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
