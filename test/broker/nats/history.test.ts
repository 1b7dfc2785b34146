/**
 * History channels on the NATS broker: offsets, epochs and entries in one JetStream stream per
 * prefix; two nodes publishing at once (one dense order, identical on every node); `last` and
 * `since` across nodes; all or nothing beyond `size`; a stream whose state is lost (the stream
 * purged, its epoch base with it) starts a new epoch, offsets begin again at 1.
 */
import t from 'tap'
import { connect as natsConnect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { TestClient, nextId, type Frame } from '../../helpers/server.js'
import { NatsNames } from '../../../plugin/broker/nats/names.js'
import { deleteStreams, natsUrl, startNatsNode, uniquePrefix, withNats } from './helpers.js'

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

await withNats(t, async () => {
  t.test('offsets, epoch, last and since across two nodes', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const a = await startNatsNode(t, { prefix }, undefined, { history })
    const b = await startNatsNode(t, { prefix }, undefined, { history })
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
      { type: 'subscribed', channel: 'h-room', id: 1, epoch: first.epoch, offset: 5, recovered: true }, 'recovered on the other node')
    t.same((await messages(back, 3)).map((m) => m.offset), [3, 4, 5])
    const late = await connect(t, b.url)
    late.send({ type: 'subscribe', channel: 'h-room', id: 2, last: 2 })
    t.match(await late.next(), { type: 'subscribed', offset: 5 })
    t.same((await messages(late, 2)).map((m) => m.offset), [4, 5], 'last: 2')
    for (let n = 6; n <= 12; n++) await a.app.broadcastChannel('h-room', n)
    t.match(await late.request({ type: 'subscribe', channel: 'h-other', id: 3, since: { epoch: first.epoch, offset: 0 } }), { recovered: false }, 'another channel, another epoch')
    const beyond = await connect(t, b.url)
    t.match(await beyond.request({ type: 'subscribe', channel: 'h-room', id: 4, since: { epoch: first.epoch, offset: 5 } }), { recovered: false, offset: 12 }, 'beyond size')
    await beyond.expectNothing(isMessage)
    const kept = await a.app.channels.history('h-room', { last: 5 })
    t.same(kept.messages.map((m) => m.offset), [8, 9, 10, 11, 12], 'at most size entries')
  })

  t.test('two nodes publishing at once: one dense order, the same on both', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const options = { history: { channel: /^h-/, size: 100, ttl: 60_000 } }
    const a = await startNatsNode(t, { prefix }, undefined, options)
    const b = await startNatsNode(t, { prefix }, undefined, options)
    const onA = await connect(t, a.url)
    const onB = await connect(t, b.url)
    await onA.subscribe('h-race')
    await onB.subscribe('h-race')
    const count = 25
    await Promise.all([
      ...Array.from({ length: count }, async (_, i) => await a.app.broadcastChannel('h-race', `a${i}`)),
      ...Array.from({ length: count }, async (_, i) => await b.app.broadcastChannel('h-race', `b${i}`))
    ])
    const gotA = await messages(onA, 2 * count)
    const gotB = await messages(onB, 2 * count)
    t.same(gotA.map((m) => m.offset), Array.from({ length: 2 * count }, (_, i) => i + 1), 'dense, in order')
    t.same(gotB.map((m) => [m.offset, m.data]), gotA.map((m) => [m.offset, m.data]), 'the same order on both nodes')
    const aOrder = gotA.map((m) => m.data as string).filter((data) => data.startsWith('a'))
    t.same(aOrder, Array.from({ length: count }, (_, i) => `a${i}`), 'each node\'s publications in the order it made them')
    const stored = await b.app.channels.history('h-race', { last: 2 * count })
    t.same(stored.messages.map((m) => [m.offset, m.data]), gotA.map((m) => [m.offset, m.data]), 'what is stored is what was delivered')
  })

  t.test('a stream whose state is lost: a new epoch, offsets from 1, the old epoch not recoverable', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const a = await startNatsNode(t, { prefix }, undefined, { history })
    const b = await startNatsNode(t, { prefix }, undefined, { history })
    const onB = await connect(t, b.url)
    const first = await onB.subscribe('h-lost')
    await a.app.broadcastChannel('h-lost', 'before')
    t.match(await onB.next(isMessage), { offset: 1, data: 'before' })

    const nc = await natsConnect({ servers: natsUrl })
    t.teardown(() => nc.close())
    const names = new NatsNames(prefix)
    const jsm = await jetstreamManager(nc)
    await jsm.streams.purge(names.historyStream) // what losing the server's store does

    await a.app.broadcastChannel('h-lost', 'after')
    t.match(await onB.next(isMessage), { offset: 1, data: 'after' }, 'offsets begin again')
    const now = await b.app.channels.history('h-lost')
    t.not(now.epoch, first.epoch, 'in a new epoch')
    t.same(now.messages.map((m) => [m.offset, m.data]), [[1, 'after']], 'nothing of the old epoch mixed in')
    const back = await connect(t, a.url)
    t.match(await back.request({ type: 'subscribe', channel: 'h-lost', id: nextId(), since: { epoch: first.epoch, offset: 1 } }), { recovered: false }, 'the old epoch cannot be recovered')
  })
})
