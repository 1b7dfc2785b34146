/**
 * History channels on the Redis broker, on one Redis and on a Redis Cluster: offsets, epochs and
 * entries in Redis; two processes publishing at once (one dense order, identical everywhere);
 * recovery on another node, also behind a stand-in load balancer after the first node was
 * SIGKILLed; keys under the prefix with TTLs, each in its channel's slot, and channels on
 * several shards. On one Redis only: a restart without persistence (a new epoch, `recovered: false`).
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { TestClient, nextId, type Frame } from '../../helpers/server.js'
import { eventually, PrivateRedis, startNode, uniquePrefix, withRedis } from '../../redis/helpers.js'
import { forEachTarget } from '../../redis/targets.js'
import { HistoryChild, TcpProxy } from '../../history/helpers.js'
import { keysUnder, shardOf, slotOf } from '../../history/slots.js'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { within } from '../../helpers/deadline.js'

const isMessage = (frame: Frame): boolean => frame.type === 'message'

async function messages (client: TestClient, count: number, timeoutMs = 5000): Promise<Frame[]> {
  const got: Frame[] = []
  for (let i = 0; i < count; i++) got.push(await client.next(isMessage, timeoutMs))
  return got
}

async function connect (t: { teardown (fn: () => unknown): void }, url: string): Promise<TestClient> {
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  return client
}

const history = { channel: /^h-/, size: 5, ttl: 60_000 }

await forEachTarget(t, async (t, target) => {
  t.test('offsets, epoch, last and since across two nodes; keys under the prefix with TTLs', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const a = await startNode(t, { ...target.broker, prefix }, undefined, { history })
    const b = await startNode(t, { ...target.broker, prefix }, undefined, { history })
    const onA = await connect(t, a.url)
    const onB = await connect(t, b.url)
    const first = await onA.subscribe('h-room')
    t.match(first, { type: 'subscribed', offset: 0 })
    t.match(await onB.subscribe('h-room'), { epoch: first.epoch, offset: 0 }, 'one epoch on every node')
    await a.app.broadcastChannel('h-room', 'a1')
    await b.app.broadcastChannel('h-room', 'b1')
    t.same((await messages(onA, 2)).map((m) => [m.offset, m.data]), [[1, 'a1'], [2, 'b1']])
    t.same((await messages(onB, 2)).map((m) => [m.offset, m.data]), [[1, 'a1'], [2, 'b1']])
    t.same(await b.app.channels.history('h-room'), {
      epoch: first.epoch,
      offset: 2,
      messages: [{ offset: 1, event: 'message', data: 'a1' }, { offset: 2, event: 'message', data: 'b1' }]
    })

    onA.close()
    for (let n = 3; n <= 5; n++) await b.app.broadcastChannel('h-room', `b${n}`)
    const back = await connect(t, a.url)
    t.same(await back.request({ type: 'subscribe', channel: 'h-room', id: 1, since: { epoch: first.epoch, offset: 2, session: onA.sessionId } }),
      { type: 'subscribed', channel: 'h-room', id: 1, epoch: first.epoch, offset: 5, recovered: true })
    t.same((await messages(back, 3)).map((m) => m.offset), [3, 4, 5])
    const late = await connect(t, b.url)
    late.send({ type: 'subscribe', channel: 'h-room', id: 2, last: 2 })
    t.match(await late.next(), { type: 'subscribed', offset: 5 })
    t.same((await messages(late, 2)).map((m) => m.offset), [4, 5])
    for (let n = 6; n <= 12; n++) await a.app.broadcastChannel('h-room', n)
    t.match(await late.request({ type: 'subscribe', channel: 'h-other', id: 3, since: { epoch: first.epoch, offset: 0 } }), { recovered: false }, 'another channel, another epoch')
    const beyond = await connect(t, b.url)
    t.match(await beyond.request({ type: 'subscribe', channel: 'h-room', id: 4, since: { epoch: first.epoch, offset: 5 } }), { recovered: false, offset: 12 }, 'beyond size')
    await beyond.expectNothing(isMessage)

    const keys = (await keysUnder(target, prefix)).filter((key) => key.includes(':hist:'))
    t.same(keys, [`${prefix}:hist:{h-room}:log`, `${prefix}:hist:{h-room}:meta`], 'channels without history store nothing; h-other, only read, nothing either')
    const bases = (await keysUnder(target, prefix)).filter((key) => key.includes(':hist-base:'))
    t.ok(bases.length >= 1 && bases.length <= 2, `one epoch base per slot used (${bases.join(', ')})`)
    const log = `${prefix}:hist:{h-room}:log`
    const meta = `${prefix}:hist:{h-room}:meta`
    t.equal(await target.admin.xlen(log), 5, 'the log holds at most size entries')
    const metaTtl = await target.admin.pttl(meta)
    t.ok(metaTtl > 23 * 3600_000 && metaTtl <= 24 * 3600_000, `the epoch and top offset outlive the entries by 24 h (${metaTtl})`)
    const logTtl = await target.admin.pttl(log)
    t.ok(logTtl > 0 && logTtl <= 60_000, `the entries expire with ttl (${logTtl})`)
  })

  t.test('channels on several shards: a multi-channel publication takes an offset in each; each key in its channel\'s slot', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const options = { history: { size: 5, ttl: 60_000 } }
    const a = await startNode(t, { ...target.broker, prefix }, (app) => {
      app.channels.on('message', { event: 'everywhere' }, async (socket, data) => { await socket.broadcastChannel(data) })
    }, options)
    const b = await startNode(t, { ...target.broker, prefix }, undefined, options)
    // on a 3-master cluster, h-room, h-c and h-other lie on three shards; the braces test the hash tags
    const channels = ['h-room', 'h-c', 'h-other', '}h', '{h}', 'h{x}']
    const speaker = await connect(t, a.url)
    for (const channel of channels) await speaker.subscribe(channel)
    await a.app.broadcastChannel('h-room', 'first')
    const listeners: TestClient[] = []
    for (const channel of channels) {
      const listener = await connect(t, b.url)
      t.match(await listener.subscribe(channel), { offset: channel === 'h-room' ? 1 : 0 }, channel)
      listeners.push(listener)
    }
    await speaker.request({ type: 'message', event: 'everywhere', data: 'all', id: nextId() })
    for (const [i, channel] of channels.entries()) {
      t.match(await listeners[i].next(isMessage), { channel, data: 'all', offset: channel === 'h-room' ? 2 : 1 }, `${channel}: its own offset`)
      t.match(await b.app.channels.history(channel), { offset: channel === 'h-room' ? 2 : 1 })
    }
    if (target.name !== 'cluster') return
    const names = new RedisKeys(prefix)
    const { admin } = target
    const shards = new Set(await Promise.all(['h-room', 'h-c', 'h-other'].map(async (channel) => await shardOf(admin, names.channel(channel)))))
    t.equal(shards.size, 3, 'the channels lie on three shards')
    const expected: string[] = []
    for (const channel of channels) {
      const slot = await slotOf(admin, names.channel(channel))
      for (const key of [names.historyMeta(channel), names.historyLog(channel)]) {
        expected.push(key)
        t.equal(await slotOf(admin, key), slot, `${key} in the slot of ${names.channel(channel)}`)
      }
    }
    t.same((await keysUnder(target, prefix)).filter((key) => key.includes(':hist:')), expected.sort(), 'and on the master owning it')
    const slots = new Set(await Promise.all(channels.map(async (channel) => await slotOf(admin, names.channel(channel)))))
    const bases = (await keysUnder(target, prefix)).filter((key) => key.includes(':hist-base:'))
    t.equal(bases.length, slots.size, 'one epoch base per slot of the channels')
    for (const base of bases) t.ok(slots.has(await slotOf(admin, base)), `${base} in the slot of one of the channels`)
  })

  t.test('session exclusion and expired entries on Redis', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const a = await startNode(t, { ...target.broker, prefix }, (app) => {
      app.channels.on('message', { event: 'say' }, async (socket, data, meta) => {
        await socket.broadcastChannel(data, { channel: meta.channel })
        return 'ok'
      })
    }, { history: { channel: /^h-/, size: 10, ttl: 300 } })
    const speaker = await connect(t, a.url)
    const { epoch } = await speaker.subscribe('h-room')
    await speaker.request({ type: 'message', event: 'say', channel: 'h-room', data: 'mine', id: nextId() })
    await a.app.broadcastChannel('h-room', 'theirs')
    await speaker.next(isMessage)
    speaker.close()
    const back = await connect(t, a.url)
    t.match(await back.request({ type: 'subscribe', channel: 'h-room', id: 1, since: { epoch, offset: 0, session: speaker.sessionId } }), { recovered: true, offset: 2 })
    t.same((await messages(back, 1)).map((m) => m.data), ['theirs'])
    await back.expectNothing(isMessage)
    await eventually(async () => (await a.app.channels.history('h-room')).messages.length === 0, 3000, 'entries expire after ttl')
    t.match(await back.request({ type: 'subscribe', channel: 'h-x', id: 2 }), { offset: 0 })
    const again = await connect(t, a.url)
    t.match(await again.request({ type: 'subscribe', channel: 'h-room', id: 3, since: { epoch, offset: 0 } }), { recovered: false, epoch, offset: 2 }, 'expired entries cannot be recovered; the epoch stays')
  })

  t.test('two node processes publishing to one channel at once: one dense order, identical on both', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const env = { ...target.env, PREFIX: prefix }
    const [one, two] = await Promise.all([HistoryChild.start(t, env), HistoryChild.start(t, env)])
    const onOne = await connect(t, one.url)
    const onTwo = await connect(t, two.url)
    await onOne.subscribe('race')
    await onTwo.subscribe('race')
    const count = 300
    await Promise.all([one.burst('race', count, 'one'), two.burst('race', count, 'two')])
    const gotOne = await messages(onOne, 2 * count)
    const gotTwo = await messages(onTwo, 2 * count)
    t.same(gotOne.map((m) => m.offset), Array.from({ length: 2 * count }, (_, i) => i + 1), 'dense offsets from 1')
    t.same(gotTwo, gotOne, 'the same frames in the same order on both nodes')
    const tags = gotOne.map((m) => (m.data as { tag: string }).tag)
    t.ok(tags.includes('one') && tags.includes('two'))
    for (const tag of ['one', 'two']) {
      const seq = gotOne.filter((m) => (m.data as { tag: string }).tag === tag).map((m) => (m.data as { i: number }).i)
      t.same(seq, Array.from({ length: count }, (_, i) => i), `${tag}: each publication once, in its publisher's order`)
    }
  })

  t.test('behind a stand-in load balancer, a client recovers on node B after node A was SIGKILLed', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const env = { ...target.env, PREFIX: prefix }
    const [nodeA, nodeB] = await Promise.all([HistoryChild.start(t, env), HistoryChild.start(t, env)])
    const proxy = await TcpProxy.start(t, nodeA.port)
    const client = await connect(t, proxy.url())
    const { epoch } = await client.subscribe('room')
    await nodeB.burst('room', 3, 'before')
    const seen = await messages(client, 3)
    const last = seen[2].offset as number
    await nodeA.kill('SIGKILL')
    await within(client.closed, 5000, 'the client sees node A die')
    proxy.target = nodeB.port
    await nodeB.burst('room', 4, 'missed')
    const back = await connect(t, proxy.url())
    back.send({ type: 'subscribe', channel: 'room', id: 1, since: { epoch, offset: last, session: client.sessionId } })
    t.same(await back.next(), { type: 'subscribed', channel: 'room', id: 1, epoch, offset: 7, recovered: true })
    t.same((await messages(back, 4)).map((m) => [m.offset, (m.data as { tag: string }).tag]),
      [[4, 'missed'], [5, 'missed'], [6, 'missed'], [7, 'missed']])
    await nodeB.burst('room', 1, 'live')
    t.match(await back.next(isMessage), { offset: 8, data: { tag: 'live' } })
  })
})

await withRedis(t, async () => {
  t.test('a Redis restart without persistence: a new epoch and recovered: false', async (t) => {
    const server = await PrivateRedis.start(t)
    const prefix = uniquePrefix()
    const node = await startNode(t, { url: server.url, prefix }, undefined, { history })
    const client = await connect(t, node.url)
    const { epoch } = await client.subscribe('h-room')
    await node.app.broadcastChannel('h-room', 1)
    t.match(await client.next(isMessage), { offset: 1 })
    await server.kill()
    await server.restart()
    const probe = new Redis(server.url)
    t.teardown(() => probe.disconnect())
    // Back means both connections: commands answered, and the channel subscribed again.
    await eventually(async () => {
      const [, subscribers] = await probe.pubsub('NUMSUB', new RedisKeys(prefix).channel('h-room')) as [string, number]
      return subscribers > 0 && await node.app.channels.history('h-room').then(() => true, () => false)
    }, 15000, 'the node reaches the restarted Redis')
    const back = await connect(t, node.url)
    const answer = await back.request({ type: 'subscribe', channel: 'h-room', id: 1, since: { epoch, offset: 1 } })
    t.equal(answer.recovered, false)
    t.not(answer.epoch, epoch, 'a new epoch')
    t.equal(answer.offset, 0)
    await node.app.broadcastChannel('h-room', 2)
    t.match(await back.next(isMessage), { offset: 1, data: 2 }, 'offsets start again in the new epoch')
  })
})
