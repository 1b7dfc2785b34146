/**
 * Nodes in one process on a real Redis, and on a Redis Cluster: every delivery kind reaches
 * every socket on every node exactly once, whichever node published, and the sender stays
 * excluded across nodes.
 */
import t from 'tap'
import { NoSocketError } from '../../plugin/index.js'
import { nextId, type Frame } from '../helpers/server.js'
import { eventually, uniquePrefix } from './helpers.js'
import { forEachTarget } from './targets.js'
import { collectAfterFence, connect, isGot, startNodes } from './nodes.js'
import { within } from '../helpers/deadline.js'

const data = (frames: Frame[]): unknown[] => frames.map((frame) => frame.data)
const channelsOf = (frames: Frame[]): unknown[] => frames.map((frame) => frame.channel)

await forEachTarget(t, async (t, target) => {
  t.test('fastify.broadcast reaches every socket on three nodes once', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [a, b, c] = await startNodes(t, 3, { ...target.broker, prefix })
    const clients = [await connect(t, a), await connect(t, a), await connect(t, b), await connect(t, c)]
    for (const from of [a, b, c]) {
      await from.app.broadcast({ n: 1 }, { event: 'got' })
      const got = await collectAfterFence(from, clients)
      t.same(got.map(data), [[{ n: 1 }], [{ n: 1 }], [{ n: 1 }], [{ n: 1 }]], 'published on one node, each socket once')
      t.same(got.map(channelsOf), [[undefined], [undefined], [undefined], [undefined]])
    }
  })

  t.test('fastify.broadcastChannel reaches the channel subscribers on every node once', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [a, b, c] = await startNodes(t, 3, { ...target.broker, prefix })
    const onA = await connect(t, a, ['room'])
    const onB = await connect(t, b, ['room', 'other'])
    const onBOther = await connect(t, b, ['other'])
    const onC = await connect(t, c)
    for (const from of [a, b, c]) {
      await from.app.broadcastChannel('room', { hi: true }, { event: 'got' })
      const got = await collectAfterFence(from, [onA, onB, onBOther, onC])
      t.same(got.map(data), [[{ hi: true }], [{ hi: true }], [], []])
      t.same(got.map(channelsOf), [['room'], ['room'], [], []])
    }
  })

  t.test('socket.broadcast and sendAndBroadcast: the sender is excluded or included once, across nodes', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [a, b] = await startNodes(t, 2, { ...target.broker, prefix })
    const sender = await connect(t, a)
    const others = [await connect(t, a), await connect(t, b), await connect(t, b)]
    await sender.request({ type: 'message', event: 'broadcast', data: 1, id: nextId() })
    t.same((await collectAfterFence(a, [sender, ...others])).map(data), [[], [1], [1], [1]])
    await sender.request({ type: 'message', event: 'sendAndBroadcast', data: 2, id: nextId() })
    t.same((await collectAfterFence(a, [sender, ...others])).map(data), [[2], [2], [2], [2]])
  })

  t.test('socket.broadcastChannel to one channel, across nodes, sender excluded', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [a, b] = await startNodes(t, 2, { ...target.broker, prefix })
    const sender = await connect(t, a, ['room'])
    const peers = [await connect(t, a, ['room']), await connect(t, b, ['room']), await connect(t, b)]
    await sender.request({ type: 'message', event: 'broadcastChannel', channel: 'room', data: 'x', id: nextId() })
    t.same((await collectAfterFence(a, [sender, ...peers])).map(data), [[], ['x'], ['x'], []])
    await sender.request({ type: 'message', event: 'sendAndBroadcastChannel', channel: 'room', data: 'y', id: nextId() })
    t.same((await collectAfterFence(a, [sender, ...peers])).map(data), [['y'], ['y'], ['y'], []])
  })

  t.test('a multi-channel broadcast reaches a remote socket once, though its node holds several of the channels', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [a, b, c] = await startNodes(t, 3, { ...target.broker, prefix })
    const sender = await connect(t, a, ['r1', 'r2', 'r3'])
    const receivers = [
      await connect(t, a, ['r3', 'r1']), // same node as the sender
      await connect(t, b, ['r3', 'r2', 'r1']), // all three, subscribed in another order
      await connect(t, b, ['r2']),
      await connect(t, b, ['r3']),
      await connect(t, c, ['r2', 'r3']),
      await connect(t, c, ['elsewhere'])
    ]
    await sender.request({ type: 'message', event: 'broadcastChannel', data: 'm', id: nextId() })
    const got = await collectAfterFence(a, [sender, ...receivers])
    t.same(got.map(data), [[], ['m'], ['m'], ['m'], ['m'], ['m'], []], 'each socket once, the sender excluded')
    t.same(got.map(channelsOf), [[], ['r1'], ['r1'], ['r2'], ['r3'], ['r2'], []],
      'each frame names the first channel the socket holds in the sender\'s order')

    await sender.request({ type: 'message', event: 'sendAndBroadcastChannel', data: 'n', id: nextId() })
    const again = await collectAfterFence(a, [sender, ...receivers])
    t.same(again.map(data), [['n'], ['n'], ['n'], ['n'], ['n'], ['n'], []], 'the sender included once')

    // a burst of them interleaved with other traffic still dedupes per publication
    for (let i = 0; i < 20; i++) {
      sender.send({ type: 'message', event: 'broadcastChannel', data: i })
      await a.app.broadcastChannel('r2', { other: i }, { event: 'noise' })
    }
    await sender.request({ type: 'message', event: 'broadcastChannel', data: 'last', id: nextId() })
    const burst = await collectAfterFence(a, receivers)
    const expected = [...Array.from({ length: 20 }, (_, i) => i), 'last']
    t.same(burst.map(data), [expected, expected, expected, expected, expected, []])
  })

  t.test('a node with subscribers of only some of the channels gets the publication through them', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [a, b] = await startNodes(t, 2, { ...target.broker, prefix })
    const onB = await connect(t, b, ['c3'])
    const sender = await connect(t, a, ['c1', 'c2', 'c3'])
    await sender.request({ type: 'message', event: 'broadcastChannel', data: 'z', id: nextId() })
    t.same((await collectAfterFence(a, [onB])).map(channelsOf), [['c3']])
  })

  t.test('socket.send stays on its node; fastify.send reaches a session on another node once', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [a, b, c] = await startNodes(t, 3, { ...target.broker, prefix })
    const onA = await connect(t, a)
    const onB = await connect(t, b)
    const onC = await connect(t, c)
    await onA.request({ type: 'message', event: 'send', data: 'self', id: nextId() })
    t.same((await collectAfterFence(a, [onA, onB, onC])).map(data), [['self'], [], []])

    await a.app.send(onB.sessionId, { to: 'b' }, { event: 'got', channel: 'room' })
    await c.app.send(onA.sessionId, { to: 'a' }, { event: 'got' })
    await b.app.send(onC.sessionId, { to: 'c' }, { event: 'got' })
    const got = await collectAfterFence(a, [onA, onB, onC])
    t.same(got.map(data), [[{ to: 'a' }], [{ to: 'b' }], [{ to: 'c' }]])
    t.same(got[1][0].channel, 'room')

    await t.rejects(a.app.send('no-such-session', 1), NoSocketError)

    onB.close()
    await within(onB.closed, 5000, 'the closed client is closed')
    await eventually(async () => {
      try {
        await a.app.send(onB.sessionId, 1)
        return false
      } catch (err) {
        return (err as { code?: string }).code === 'FST_CHANNELS_NO_SOCKET'
      }
    }, 5000, 'a closed session is gone from the registry')
  })

  t.test('a node that closes takes its sessions with it at once', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [a, b] = await startNodes(t, 2, { ...target.broker, prefix })
    const onB = await connect(t, b)
    await a.app.send(onB.sessionId, 'before', { event: 'got' })
    t.same((await onB.next(isGot)).data, 'before')
    await b.app.close()
    await t.rejects(a.app.send(onB.sessionId, 'after'), { code: 'FST_CHANNELS_NO_SOCKET' })
  })
  t.test('two apps on one Redis with different prefixes never see each other', async (t) => {
    const prefixA = uniquePrefix()
    const prefixB = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefixA))
    t.teardown(() => target.deleteKeys(prefixB))
    const [a1, a2] = await startNodes(t, 2, { ...target.broker, prefix: prefixA })
    const [b1] = await startNodes(t, 1, { ...target.broker, prefix: prefixB })
    const onA2 = await connect(t, a2, ['room'])
    const onB1 = await connect(t, b1, ['room'])
    await a1.app.broadcast('all', { event: 'got' })
    await a1.app.broadcastChannel('room', 'room', { event: 'got' })
    await t.rejects(a1.app.send(onB1.sessionId, 'x'), NoSocketError, 'sessions of the other app are not found')
    const [seen] = (await collectAfterFence(a1, [onA2])).map(data)
    // on a cluster "all" and "room" travel through different shards: only order per channel holds
    t.same(target.name === 'cluster' ? [...seen].sort() : seen, ['all', 'room'])
    t.same((await collectAfterFence(b1, [onB1])).map(data), [[]], 'nothing crossed over')
  })
})
