import t from 'tap'
import Fastify from 'fastify'
import fastifyChannels, { memoryBroker, type Broker, type BrokerConnection } from '../../plugin/index.js'
import { within } from '../helpers/deadline.js'
import { startApp, startWithSocket, TestClient, until, type Frame } from '../helpers/server.js'
import type { BrokerNode } from '../../plugin/broker/types.js'

const isMessage = (frame: Frame): boolean => frame.type === 'message'

t.test('fastify.broadcast reaches every socket; socket.broadcast skips the sender', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('message', { event: 'shout' }, async (socket, data) => { await socket.broadcast(data, { event: 'shout' }) })
    app.channels.on('message', { event: 'all' }, async (socket, data) => { await socket.sendAndBroadcast(data) })
  })
  t.teardown(() => app.close())
  const [a, b, c] = await Promise.all([TestClient.connect(url), TestClient.connect(url), TestClient.connect(url)])
  await app.broadcast({ n: 1 }, { event: 'news' })
  for (const client of [a, b, c]) t.same(await client.next(), { type: 'message', event: 'news', data: { n: 1 } })
  await app.broadcast('plain')
  for (const client of [a, b, c]) t.same(await client.next(), { type: 'message', event: 'message', data: 'plain' }, 'event defaults to message')

  await a.request({ type: 'message', event: 'shout', data: 'hey', id: 1 })
  t.same(await b.next(), { type: 'message', event: 'shout', data: 'hey' })
  t.same(await c.next(), { type: 'message', event: 'shout', data: 'hey' })
  await a.expectNothing(isMessage)

  await a.request({ type: 'message', event: 'all', data: 'everyone', id: 2 })
  for (const client of [a, b, c]) t.same(await client.next(isMessage), { type: 'message', event: 'message', data: 'everyone' })
  for (const client of [a, b, c]) client.close()
})

t.test('fastify.broadcastChannel reaches only the channel', async (t) => {
  const { app, url } = await startApp()
  t.teardown(() => app.close())
  const [inRoom, outside] = await Promise.all([TestClient.connect(url), TestClient.connect(url)])
  await inRoom.subscribe('room-1')
  await outside.subscribe('room-2')
  await app.broadcastChannel('room-1', { text: 'hi' }, { event: 'chat' })
  t.same(await inRoom.next(), { type: 'message', event: 'chat', channel: 'room-1', data: { text: 'hi' } })
  await outside.expectNothing(isMessage)
  await app.broadcastChannel('empty-channel', 'nobody hears this')
  await t.rejects(app.broadcastChannel('bad name', 1), { code: 'FST_CHANNELS_INVALID_CHANNEL' })
  await t.rejects(app.broadcastChannel('room-1', { n: 1n }), { code: 'FST_CHANNELS_UNSERIALIZABLE' })
  await inRoom.expectNothing(isMessage)
  inRoom.close()
  outside.close()
})

t.test('socket.broadcastChannel: to a channel, or to all held channels once per socket', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('message', { event: 'to' }, async (socket, data) => {
      await socket.broadcastChannel(data, { channel: 'b', event: 'to' })
    })
    app.channels.on('message', { event: 'held' }, async (socket, data) => {
      await socket.broadcastChannel(data, { event: 'held' })
    })
    app.channels.on('message', { event: 'held-self' }, async (socket, data) => {
      await socket.sendAndBroadcastChannel(data, { event: 'held-self' })
    })
    app.channels.on('message', { event: 'elsewhere' }, async (socket, data) => {
      await socket.sendAndBroadcastChannel(data, { channel: 'c', event: 'elsewhere' })
    })
  })
  t.teardown(() => app.close())
  const [sender, both, onlyB, onlyC, none] = await Promise.all(Array.from({ length: 5 }, () => TestClient.connect(url)))
  // the sender subscribes b first, then a: its order is [b, a]
  await sender.subscribe('b')
  await sender.subscribe('a')
  await both.subscribe('a')
  await both.subscribe('b')
  await onlyB.subscribe('b')
  await onlyC.subscribe('c')

  await sender.request({ type: 'message', event: 'to', data: 1, id: 1 })
  t.same(await both.next(), { type: 'message', event: 'to', channel: 'b', data: 1 })
  t.same(await onlyB.next(), { type: 'message', event: 'to', channel: 'b', data: 1 })

  await sender.request({ type: 'message', event: 'held', data: 2, id: 2 })
  t.same(await both.next(), { type: 'message', event: 'held', channel: 'b', data: 2 }, 'named after the sender\'s first channel')
  t.same(await onlyB.next(), { type: 'message', event: 'held', channel: 'b', data: 2 })
  await both.expectNothing(isMessage) // exactly once, though it holds both channels
  await sender.expectNothing(isMessage)
  await onlyC.expectNothing(isMessage)
  await none.expectNothing(isMessage)

  await sender.request({ type: 'message', event: 'held-self', data: 3, id: 3 })
  t.same(await sender.next(isMessage), { type: 'message', event: 'held-self', channel: 'b', data: 3 }, 'sender included, once')
  t.same(await both.next(isMessage), { type: 'message', event: 'held-self', channel: 'b', data: 3 })
  await sender.expectNothing(isMessage)

  await sender.request({ type: 'message', event: 'elsewhere', data: 4, id: 4 })
  t.same(await sender.next(isMessage), { type: 'message', event: 'elsewhere', channel: 'c', data: 4 }, 'sender included though it does not hold c')
  t.same(await onlyC.next(isMessage), { type: 'message', event: 'elsewhere', channel: 'c', data: 4 })
  await both.expectNothing(isMessage)
  for (const client of [sender, both, onlyB, onlyC, none]) client.close()
})

t.test('socket.send and fastify.send', async (t) => {
  const { app, client: c, server } = await startWithSocket(t, {})
  server.send({ direct: true }, { event: 'dm', channel: 'room-1' })
  t.same(await c.next(), { type: 'message', event: 'dm', channel: 'room-1', data: { direct: true } })
  t.throws(() => server.send(1, { channel: ' bad' }), { code: 'FST_CHANNELS_INVALID_CHANNEL' })
  t.throws(() => server.send({ n: 1n }), { code: 'FST_CHANNELS_UNSERIALIZABLE' })

  await app.send(c.sessionId, 'out of band', { event: 'job' })
  t.same(await c.next(), { type: 'message', event: 'job', data: 'out of band' })
  await t.rejects(app.send('no-such-session', 1), { code: 'FST_CHANNELS_NO_SOCKET', statusCode: 404 })
  await t.rejects(app.send(c.sessionId, 1, { channel: '' }), { code: 'FST_CHANNELS_INVALID_CHANNEL' })
  c.close()
  await within(c.closed, 3000, 'the client closes when it asks to')
  await new Promise((resolve) => setImmediate(resolve))
  await t.rejects(app.send(c.sessionId, 1), { code: 'FST_CHANNELS_NO_SOCKET' }, 'a closed session is gone')
})

/** A memory broker whose connections take `methods` (given the real connection) in place of their own. */
function memoryBrokerWith (methods: (connection: BrokerConnection) => Partial<BrokerConnection>): Broker {
  const inner = memoryBroker()
  return {
    async connect (node) {
      const connection = await inner.connect(node)
      return { ...connection, ...methods(connection) }
    }
  }
}

/** A memory broker that records every session id it is asked to find. */
function askedBroker (): { broker: Broker, asked: unknown[] } {
  const asked: unknown[] = []
  const broker = memoryBrokerWith((connection) => ({
    async sendToSession (sessionId, frame) {
      asked.push(sessionId)
      return await connection.sendToSession(sessionId, frame)
    }
  }))
  return { asked, broker }
}

t.test('fastify.send with a session id that is not a string rejects with FST_CHANNELS_NO_SOCKET, the broker unasked', async (t) => {
  const { broker, asked } = askedBroker()
  const { app, client } = await startWithSocket(t, { broker })
  for (const sessionId of [42, undefined, null, { id: client.sessionId }, [client.sessionId]]) {
    await t.rejects(app.send(sessionId as unknown as string, 'x'), { code: 'FST_CHANNELS_NO_SOCKET', statusCode: 404 },
      `${JSON.stringify(sessionId) ?? 'undefined'} rejects, it does not resolve`)
  }
  t.same(asked, [], 'no broker round trip for an id no node can hold')
  await client.expectNothing()
  await app.send(client.sessionId, 'x')
  t.same(asked, [], 'a local session needs no broker either')
  t.equal((await client.next()).data, 'x')
  client.close()
})

t.test('fastify.send once the app is closing (broker gone) rejects with FST_CHANNELS_NO_SOCKET', async (t) => {
  const { broker, asked } = askedBroker()
  const one = await startApp({ broker })
  const two = await startApp({ broker })
  t.teardown(() => two.app.close())
  const onTwo = await TestClient.connect(two.url)
  await one.app.send(onTwo.sessionId, 'before', { event: 'dm' })
  t.same(await onTwo.next(isMessage), { type: 'message', event: 'dm', data: 'before' }, 'reachable across nodes while open')
  t.same(asked, [onTwo.sessionId])

  await one.app.close()
  await t.rejects(one.app.send(onTwo.sessionId, 'after', { event: 'dm' }), { code: 'FST_CHANNELS_NO_SOCKET' },
    'a closed app holds no session and asks no broker: it rejects, it does not resolve')
  t.same(asked, [onTwo.sessionId], 'the closed node did not ask the broker')
  await onTwo.expectNothing(isMessage)
  onTwo.close()
})

t.test('a shared memory broker joins apps as nodes of one server', async (t) => {
  const broker = memoryBroker()
  const one = await startApp({ broker }, (app) => {
    app.channels.on('message', { event: 'say' }, async (socket, data) => {
      await socket.broadcastChannel(data, { event: 'say' })
    })
  })
  const two = await startApp({ broker })
  t.teardown(async () => { await one.app.close(); await two.app.close() })
  const [sender, local, remote, remoteOther] = await Promise.all([
    TestClient.connect(one.url), TestClient.connect(one.url), TestClient.connect(two.url), TestClient.connect(two.url)])
  for (const client of [sender, local, remote]) await client.subscribe('room')

  await sender.request({ type: 'message', event: 'say', channel: 'room', data: 'hi', id: 1 })
  t.same(await local.next(isMessage), { type: 'message', event: 'say', channel: 'room', data: 'hi' })
  t.same(await remote.next(isMessage), { type: 'message', event: 'say', channel: 'room', data: 'hi' })
  await sender.expectNothing(isMessage)
  await remote.expectNothing(isMessage)
  await remoteOther.expectNothing(isMessage)

  await two.app.broadcast('to all', { event: 'all' })
  for (const client of [sender, local, remote, remoteOther]) {
    t.same(await client.next(isMessage), { type: 'message', event: 'all', data: 'to all' })
  }
  await one.app.send(remoteOther.sessionId, 'across nodes', { event: 'dm' })
  t.same(await remoteOther.next(isMessage), { type: 'message', event: 'dm', data: 'across nodes' })
  await t.rejects(one.app.send('nobody', 1), { code: 'FST_CHANNELS_NO_SOCKET' })
  for (const client of [sender, local, remote, remoteOther]) client.close()
})

t.test('an unreachable broker never blocks local delivery', async (t) => {
  const warnings: string[] = []
  const failing: Broker = {
    async connect () {
      const down = async (): Promise<never> => { throw new Error('broker down') }
      return {
        publish: down,
        subscribe: down,
        unsubscribe: down,
        addSession: down,
        removeSession: down,
        sendToSession: down,
        close: async () => {}
      }
    }
  }
  const stream = {
    write: (line: string) => {
      const entry = JSON.parse(line) as { level: number, msg: string }
      if (entry.level === 40) warnings.push(entry.msg)
    }
  }
  const { app, url } = await startApp({ broker: failing }, undefined, { logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  t.equal((await c.subscribe('room')).type, 'subscribed', 'subscribing works while the broker is down')
  await app.broadcastChannel('room', 'still delivered')
  t.same(await c.next(), { type: 'message', event: 'message', channel: 'room', data: 'still delivered' })
  await app.broadcast('also delivered')
  t.same(await c.next(), { type: 'message', event: 'message', data: 'also delivered' })
  await app.send(c.sessionId, 'a local session needs no broker')
  t.equal((await c.next()).data, 'a local session needs no broker')
  await t.rejects(app.send('elsewhere', 1), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE' })
  t.ok(warnings.some((msg) => /publish failed/.test(msg)), 'the failed publish was logged')
  t.ok(warnings.some((msg) => /subscribe failed/.test(msg)))
  c.close()
})

/** A memory broker whose publishes reject while `down` is set. */
function flakyBroker (): { broker: Broker, state: { down: boolean } } {
  const state = { down: true }
  const broker = memoryBrokerWith((connection) => ({
    async publish (publication) {
      if (state.down) throw new Error('broker down')
      await connection.publish(publication)
    }
  }))
  return { state, broker }
}

t.test('failed publishes log one warn line per run of failures, and one info line with the count when it ends', async (t) => {
  const { broker, state } = flakyBroker()
  const lines: Array<{ level: number, msg: string, dropped?: number }> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } }
  const { app, url } = await startApp({ broker }, undefined, { logger: { level: 'info', stream } })
  const c = await TestClient.connect(url)
  await c.subscribe('room')
  const publishLines = (): typeof lines => lines.filter((line) => /broker publish|publishes were failing/.test(line.msg))

  for (let i = 0; i < 3; i++) {
    await app.broadcast(i) // resolves: the caller sees a failed publish as local-only delivery, as before
    t.equal((await c.next(isMessage)).data, i, 'delivered locally while the broker is down')
  }
  await app.broadcastChannel('room', 'in the channel')
  t.equal((await c.next(isMessage)).data, 'in the channel')
  t.match(publishLines(), [{ level: 40, msg: 'channels: broker publish failed; delivered locally only' }],
    'four failed publishes, one warn line')
  t.equal(publishLines().length, 1)

  state.down = false
  await app.broadcast('back')
  t.equal((await c.next(isMessage)).data, 'back')
  t.match(publishLines()[1], { level: 30, msg: 'channels: broker publish works again', dropped: 4 }, 'the run ends with its count')
  await app.broadcast('still up')
  t.equal(publishLines().length, 2, 'nothing more while publishes go through')

  state.down = true
  await app.broadcast('down again')
  await app.broadcast('and again')
  t.match(publishLines()[2], { level: 40, msg: 'channels: broker publish failed; delivered locally only' }, 'a new run warns again')
  c.close()
  await app.close()
  t.match(publishLines()[3], { level: 30, msg: 'channels: broker closed while publishes were failing', dropped: 2 },
    'closing during a run logs its count')
  t.equal(publishLines().length, 4)
})

t.test('registration: decorators, path option, plugin metadata', async (t) => {
  const app = Fastify()
  await app.register(fastifyChannels, { path: '/live', client: false })
  await app.ready()
  t.equal(typeof app.broadcast, 'function')
  t.equal(typeof app.broadcastChannel, 'function')
  t.equal(typeof app.send, 'function')
  t.equal(typeof app.channels.on, 'function')
  t.equal(app.channels.on('connect', () => {}), app.channels, 'on() chains')
  t.ok(app.hasRoute({ method: 'GET', url: '/live' }))
  t.equal((fastifyChannels as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')], 'fastify-channels')
  t.match((fastifyChannels as unknown as Record<symbol, unknown>)[Symbol.for('plugin-meta')], { name: 'fastify-channels', fastify: '5.x' },
    'named, and for Fastify 5')
  await app.close()
})

/** A memory broker that records each call of its connections (`method argument`) and keeps the nodes it served. */
function recordingBroker (): { broker: Broker, calls: string[], nodes: BrokerNode[] } {
  const inner = memoryBroker()
  const calls: string[] = []
  const nodes: BrokerNode[] = []
  const broker: Broker = {
    async connect (node) {
      nodes.push(node)
      const connection = await inner.connect(node)
      return {
        ...connection,
        async publish (publication) {
          calls.push(`publish ${publication.kind}${publication.kind === 'channels' ? ` ${publication.channels.join(',')}` : ''}`)
          await connection.publish(publication)
        },
        async subscribe (channel) { calls.push(`subscribe ${channel}`); await connection.subscribe(channel) },
        async unsubscribe (channel) { calls.push(`unsubscribe ${channel}`); await connection.unsubscribe(channel) },
        async addSession (sessionId) { calls.push(`addSession ${sessionId}`); await connection.addSession(sessionId) },
        async removeSession (sessionId) { calls.push(`removeSession ${sessionId}`); await connection.removeSession(sessionId) },
        async close () { calls.push('close'); await connection.close() }
      }
    }
  }
  return { broker, calls, nodes }
}

/** Log lines at warn level and above, parsed. */
function warnLines (): { lines: Array<{ level: number, msg: string, [key: string]: unknown }>, stream: { write (line: string): void } } {
  const lines: Array<{ level: number, msg: string }> = []
  return { lines, stream: { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } } }
}

t.test('the broker hears of each session once, of a channel at its first local member and after its last', async (t) => {
  const { broker, calls } = recordingBroker()
  const { lines, stream } = warnLines()
  const { app, url } = await startApp({ broker }, (app) => {
    app.channels.on('message', { event: 'to-held' }, async (socket, data) => { await socket.broadcastChannel(data) })
  }, { logger: { level: 'warn', stream } })
  const [a, b] = await Promise.all([TestClient.connect(url), TestClient.connect(url)])
  t.same(calls.filter((call) => call.startsWith('addSession')).sort(), [`addSession ${a.sessionId}`, `addSession ${b.sessionId}`].sort())

  await a.request({ type: 'message', event: 'to-held', data: 'to no channel', id: 1 })
  t.notOk(calls.some((call) => call.startsWith('publish')), 'a channel broadcast to no held channel publishes nothing')

  await a.subscribe('room')
  await b.subscribe('room')
  await a.request({ type: 'unsubscribe', channel: 'room', id: 2 })
  const channelCalls = (): string[] => calls.filter((call) => /^(un)?subscribe /.test(call))
  t.same(channelCalls(), ['subscribe room'], 'one broker subscription for two local members, kept while one is left')
  await b.request({ type: 'unsubscribe', channel: 'room', id: 3 })
  t.same(channelCalls(), ['subscribe room', 'unsubscribe room'], 'given up with the last local member')

  b.close()
  await within(b.closed, 3000, 'b closes')
  await until(() => calls.includes(`removeSession ${b.sessionId}`), 3000, 'the closed session is removed from the broker')
  t.equal(calls.filter((call) => call.startsWith('removeSession')).length, 1)
  a.close()
  await app.close()
  t.equal(calls.filter((call) => call === 'close').length, 1, 'closing the app closes its broker connection')
  const before = calls.length
  await app.broadcast('after close')
  t.equal(calls.length, before, 'a closed app asks no broker')
  t.same(lines, [], 'and logs no failure for it')
})

t.test('failed broker calls are logged with what failed: the method, the channel, the close', async (t) => {
  const down = async (): Promise<never> => { throw new Error('broker down') }
  const failing = memoryBrokerWith(() => ({ subscribe: down, unsubscribe: down, addSession: down, removeSession: down, close: down }))
  const { lines, stream } = warnLines()
  const { app, url } = await startApp({ broker: failing }, undefined, { logger: { level: 'warn', stream } })
  const c = await TestClient.connect(url)
  await c.subscribe('room')
  await c.request({ type: 'unsubscribe', channel: 'room', id: 1 })
  c.close()
  await within(c.closed, 3000, 'the client closes')
  await until(() => lines.filter((line) => line.msg === 'channels: broker call failed').length === 3, 3000, 'three failed broker calls logged')
  t.same(lines.filter((line) => line.msg === 'channels: broker call failed').map((line) => line.method).sort(),
    ['addSession', 'removeSession', 'unsubscribe'])
  t.match(lines.find((line) => /broker subscribe failed/.test(line.msg)), { level: 40, channel: 'room', err: { message: 'broker down' } })
  await app.close()
  t.match(lines.find((line) => line.msg === 'channels: broker close failed'), { level: 40, err: { message: 'broker down' } },
    'a failing close is logged; app.close() still resolves')
})

t.test('a joiner\'s subscribed waits for the broker subscription under way, also after a leave and a rejoin', async (t) => {
  const gates: Array<() => void> = []
  const broker = memoryBrokerWith((connection) => ({
    async subscribe (channel) {
      await new Promise<void>((resolve) => { gates.push(resolve) })
      await connection.subscribe(channel)
    }
  }))
  const { url, server } = await startWithSocket(t, { broker })
  const isSubscribed = (frame: Frame): boolean => frame.type === 'subscribed'
  const first = server.subscribe('room') // broker subscription 1 under way
  await until(() => gates.length === 1, 3000, 'the broker is asked to subscribe')
  await server.unsubscribe('room')
  const again = server.subscribe('room') // the last member left: subscription 2
  await until(() => gates.length === 2, 3000, 'the broker is asked again')
  gates[0]()
  await within(first, 3000, 'the first join ends once its subscription does')
  const other = await TestClient.connect(url)
  other.send({ type: 'subscribe', channel: 'room', id: 7 })
  // Subscription 2 is still under way (frames of a socket are served in order, so no probe
  // frame can tell: give the join time to answer too early).
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.notOk(other.frames.some(isSubscribed), 'no subscribed while the broker subscription is under way')
  gates[1]()
  t.same(await other.next(isSubscribed), { type: 'subscribed', channel: 'room', id: 7 })
  await within(again, 3000, 'the rejoin ends')
  other.close()
})

t.test('deliveries a node cannot place are dropped: a session gone meanwhile, history on a node without any', async (t) => {
  const { broker, nodes, calls } = recordingBroker()
  const plain = await startApp({ broker })
  t.teardown(() => plain.app.close())
  const withHistory = await startApp({ broker, history: { channel: /^h-/ } })
  t.teardown(() => withHistory.app.close())
  t.doesNotThrow(() => { nodes[0].deliver({ kind: 'session', sessionId: 'gone', frame: '{"type":"message","data":1}' }) })
  const member = await TestClient.connect(withHistory.url)
  // a notice of a later release (another mark) is for the nodes: never handed to a socket
  nodes[1].deliver({ kind: 'all', frame: '#channels-notice:2\n{"type":"news"}' })
  await member.subscribe('h-room')
  // The memory broker hands a history publication to every node, the plain one too.
  await withHistory.app.broadcastChannel('h-room', 'kept')
  t.match(await member.next(isMessage), { type: 'message', channel: 'h-room', data: 'kept', offset: 1 }, 'published with its offset')
  t.notOk(member.frames.some((frame) => JSON.stringify(frame).includes('news')), 'the other release\'s notice never reached the socket')
  t.notOk(calls.some((call) => call.startsWith('publish')), 'a history channel goes out through its stream only, not as a plain publication')
  member.close()
})

t.test('a history publication the broker refuses is still delivered here, without an offset', async (t) => {
  const failing = memoryBrokerWith(() => ({ publishHistory: async () => { throw new Error('history store down') } }))
  const { lines, stream } = warnLines()
  const { app, url } = await startApp({ broker: failing, history: { channel: /^h-/ } }, undefined, { logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  const member = await TestClient.connect(url)
  await member.subscribe('h-room')
  await app.broadcastChannel('h-room', 'local only', { event: 'chat' })
  t.same(await member.next(isMessage), { type: 'message', event: 'chat', channel: 'h-room', data: 'local only' })
  t.match(lines, [{ msg: /history publish failed/, channel: 'h-room' }])
  member.close()
})
