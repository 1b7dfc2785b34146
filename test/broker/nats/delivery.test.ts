/**
 * Fastify nodes on NATS with real WebSocket clients: every socket method reaches the sockets of
 * the other node exactly once, a send reaches a session held by another node, channel names
 * and a prefix NATS gives a meaning (`.`, `*`, `>`, white space) work and never alias, and a
 * connection the app passed in stays open after fastify.close().
 */
import t from 'tap'
import { connect as natsConnect } from '@nats-io/transport-node'
import { socketMethods } from '../../redis/fixtures/methods.js'
import { collectAfterFence, connect, isGot } from '../../redis/nodes.js'
import { nextId } from '../../helpers/server.js'
import { deleteStreams, eventually, natsUrl, startNatsNode, uniquePrefix, withNats } from './helpers.js'

await withNats(t, async () => {
  t.test('every socket method reaches the other node once', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const a = await startNatsNode(t, { prefix }, socketMethods)
    const b = await startNatsNode(t, { prefix }, socketMethods)
    const sender = await connect(t, a, ['room'])
    const onA = await connect(t, a, ['room'])
    const onB = await connect(t, b, ['room'])
    const onBElsewhere = await connect(t, b, ['other'])
    for (const event of ['broadcast', 'sendAndBroadcast', 'broadcastChannel', 'sendAndBroadcastChannel']) {
      await sender.request({ type: 'message', event, channel: 'room', data: event, id: nextId() })
    }
    await a.app.broadcastChannel('room', 'out-of-band', { event: 'got' })
    const [gotA, gotB, gotElsewhere] = await collectAfterFence(a, [onA, onB, onBElsewhere])
    const all = ['broadcast', 'sendAndBroadcast', 'broadcastChannel', 'sendAndBroadcastChannel', 'out-of-band']
    t.same(gotB.map((frame) => frame.data), all, 'the other node: each once, in order')
    t.same(gotA.map((frame) => frame.data), all, 'this node: each once')
    t.same(gotElsewhere.map((frame) => frame.data), ['broadcast', 'sendAndBroadcast'], 'another channel: the broadcasts only')
  })

  t.test('a send reaches the session on the other node, and only once', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const a = await startNatsNode(t, { prefix }, socketMethods)
    const b = await startNatsNode(t, { prefix }, socketMethods)
    const onB = await connect(t, b, [])
    await eventually(async () => await a.app.send(onB.sessionId, 'first', { event: 'got' }).then(() => true, () => false), 5000, 'the session is found')
    await a.app.send(onB.sessionId, 'second', { event: 'got' })
    const [got] = await collectAfterFence(a, [onB])
    t.same(got.map((frame) => frame.data), ['first', 'second'])
    onB.close()
    await eventually(async () => await a.app.send(onB.sessionId, 'gone', { event: 'got' }).then(() => false, () => true), 5000, 'a closed session is not found')
  })

  t.test('names NATS gives a meaning: encoded, never refused, never aliased', async (t) => {
    const prefix = `${uniquePrefix()} my.app*>`
    t.teardown(() => deleteStreams(prefix))
    const a = await startNatsNode(t, { prefix }, socketMethods, { history: true, presence: true })
    const b = await startNatsNode(t, { prefix }, socketMethods, { history: true, presence: true })
    const names = ['a.b', 'a_2Eb', 'a*', 'a>', '>', '*', 'a.*.>', 'x.y.z', '{tag}']
    const clients = []
    for (const name of names) clients.push(await connect(t, b, [name]))
    for (const name of names) await a.app.broadcastChannel(name, name, { event: 'got' })
    for (const [i, client] of clients.entries()) {
      const frame = await client.next(isGot, 5000)
      t.equal(frame.data, names[i], `${names[i]} gets its own`)
      t.equal(frame.offset, 1, `${names[i]} has its own stream`)
    }
    const history = await b.app.channels.history('a.*.>', { last: 5 })
    t.same(history.messages.map((message) => message.data), ['a.*.>'])
    for (const client of clients) await client.expectNothing(isGot)
  })

  t.test('a connection passed in stays the app\'s', async (t) => {
    const nc = await natsConnect({ servers: natsUrl })
    t.teardown(() => nc.close())
    // the client's own bookkeeping (not a public API): what the broker leaves behind on it
    const internals = nc as unknown as { protocol: { subscriptions: { size (): number }, listeners: unknown[] } }
    await nc.request('nobody.listens.here', '', { timeout: 1000 }).catch(() => {}) // the client's one request inbox, made on first use
    const subscriptionsBefore = internals.protocol.subscriptions.size()
    const listenersBefore = internals.protocol.listeners.length
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const a = await startNatsNode(t, { prefix, connection: nc }, socketMethods)
    const b = await startNatsNode(t, { prefix }, socketMethods)
    const onB = await connect(t, b, ['room'])
    await a.app.broadcastChannel('room', 'through the app\'s connection', { event: 'got' })
    t.equal((await onB.next(isGot, 5000)).data, 'through the app\'s connection')
    await a.app.close()
    t.equal(nc.isClosed(), false, 'fastify.close() left it open')
    t.equal(internals.protocol.subscriptions.size(), subscriptionsBefore, 'with none of the broker\'s subscriptions left on it')
    t.equal(internals.protocol.listeners.length, listenersBefore, 'nor its status listener')
    await nc.flush()
    t.pass('it still answers')
  })
})
