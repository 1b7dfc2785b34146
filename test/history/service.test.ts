/**
 * History channels on the memory broker, over real sockets: offsets and epochs, `last`,
 * `since` recovery, session exclusion, a recovery racing a publisher, `fastify.channels.history`.
 */
import { test } from 'tap'
import type { FastifyInstance } from 'fastify'
import fastifyChannels, { memoryBroker, type Broker, type ChannelsOptions } from '../../plugin/index.js'
import Fastify from 'fastify'
import { startApp, TestClient, nextId, recordSockets, type Frame } from '../helpers/server.js'
import { gatedHistoryBroker } from './helpers.js'

async function start (t: { teardown (fn: () => unknown): void }, options: ChannelsOptions = {}, setup?: (app: FastifyInstance) => void) {
  const started = await startApp({ history: { channel: /^h-/, size: 5 }, rateLimit: false, heartbeat: false, ...options }, setup)
  t.teardown(() => started.app.close())
  return started
}

async function connect (t: { teardown (fn: () => unknown): void }, url: string): Promise<TestClient> {
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  return client
}

const isMessage = (frame: Frame): boolean => frame.type === 'message'

async function messages (client: TestClient, count: number): Promise<Frame[]> {
  const got: Frame[] = []
  for (let i = 0; i < count; i++) got.push(await client.next(isMessage))
  return got
}

test('history channels: offsets on messages, epoch and offset on subscribed; other channels unchanged', async (t) => {
  const { app, url } = await start(t)
  const client = await connect(t, url)
  const first = await client.subscribe('h-room')
  t.match(first, { type: 'subscribed', channel: 'h-room', offset: 0 })
  t.type(first.epoch, 'string')
  t.notOk('recovered' in first, 'no recovered on a first subscription')
  await app.broadcastChannel('h-room', { n: 1 })
  await app.broadcastChannel('h-room', { n: 2 }, { event: 'chat' })
  t.same(await messages(client, 2), [
    { type: 'message', event: 'message', channel: 'h-room', data: { n: 1 }, offset: 1 },
    { type: 'message', event: 'chat', channel: 'h-room', data: { n: 2 }, offset: 2 }
  ])
  const plain = await client.subscribe('plain')
  t.same(plain, { type: 'subscribed', channel: 'plain', id: plain.id }, 'no epoch on a channel without history')
  await app.broadcastChannel('plain', 'x')
  t.same(await client.next(isMessage), { type: 'message', event: 'message', channel: 'plain', data: 'x' })
  const again = await connect(t, url)
  t.match(await again.subscribe('h-room'), { epoch: first.epoch, offset: 2 }, 'a later joiner sees the top offset')
  t.same(await app.channels.history('h-room'), {
    epoch: first.epoch,
    offset: 2,
    messages: [{ offset: 1, event: 'message', data: { n: 1 } }, { offset: 2, event: 'chat', data: { n: 2 } }]
  })
  t.same((await app.channels.history('h-room', { last: 1 })).messages.map((m) => m.offset), [2])
  t.same((await app.channels.history('h-never')).offset, 0)
  await t.rejects(app.channels.history('plain'), { code: 'FST_CHANNELS_NO_HISTORY' })
  await t.rejects(app.channels.history('bad name'), { code: 'FST_CHANNELS_INVALID_CHANNEL' })
  const badLast = await app.channels.history('h-room', { last: -1 }).then(() => undefined, (err: unknown) => err)
  t.ok(badLast instanceof TypeError, 'a bad last is a TypeError')
  t.match(badLast, { code: 'FST_CHANNELS_INVALID_ARGUMENT' }, 'with a code')
  await t.rejects(app.channels.history('h-room', { last: 1.5 }), { code: 'FST_CHANNELS_INVALID_ARGUMENT' })
})

test('last: n replays the stored publications after subscribed, then live ones; last and since are ignored without history', async (t) => {
  const { app, url } = await start(t)
  for (let n = 1; n <= 7; n++) await app.broadcastChannel('h-room', n)
  const client = await connect(t, url)
  const id = nextId()
  client.send({ type: 'subscribe', channel: 'h-room', id, last: 3 })
  t.match(await client.next(), { type: 'subscribed', id, offset: 7 }, 'subscribed comes first')
  t.same((await messages(client, 3)).map((m) => [m.offset, m.data]), [[5, 5], [6, 6], [7, 7]])
  await app.broadcastChannel('h-room', 8)
  t.match(await client.next(isMessage), { offset: 8 })
  const big = await connect(t, url)
  big.send({ type: 'subscribe', channel: 'h-room', id: 1, last: 1000 })
  await big.next((f) => f.type === 'subscribed')
  t.same((await messages(big, 5)).map((m) => m.offset), [4, 5, 6, 7, 8], 'last beyond size gives size')
  const plain = await connect(t, url)
  t.same(await plain.request({ type: 'subscribe', channel: 'plain', id: 2, last: 3, since: { epoch: 'x', offset: 1 } }),
    { type: 'subscribed', channel: 'plain', id: 2 })
  for (const bad of [{ last: 0 }, { last: 1.5 }, { since: { epoch: '', offset: 1 } }, { since: { epoch: 'e', offset: -1 } }, { since: 'x' }]) {
    t.match(await plain.request({ type: 'subscribe', channel: 'h-room', id: 3, ...bad }), { type: 'error', code: 'BAD_FRAME', id: 3 }, JSON.stringify(bad))
  }
})

test('since: recovery with a gap still kept, beyond size, with a wrong epoch, from the future', async (t) => {
  const { app, url } = await start(t)
  const client = await connect(t, url)
  const { epoch } = await client.subscribe('h-room')
  await app.broadcastChannel('h-room', 1)
  await client.next(isMessage)
  client.close()
  for (let n = 2; n <= 4; n++) await app.broadcastChannel('h-room', n)

  const back = await connect(t, url)
  const answer = await back.request({ type: 'subscribe', channel: 'h-room', id: 1, since: { epoch, offset: 1, session: client.sessionId } })
  t.same(answer, { type: 'subscribed', channel: 'h-room', id: 1, epoch, offset: 4, recovered: true })
  t.same((await messages(back, 3)).map((m) => m.data), [2, 3, 4])
  await back.expectNothing(isMessage)

  for (let n = 5; n <= 12; n++) await app.broadcastChannel('h-room', n)
  const late = await connect(t, url)
  t.match(await late.request({ type: 'subscribe', channel: 'h-room', id: 2, since: { epoch, offset: 4 } }),
    { recovered: false, offset: 12, epoch }, 'more missed than size')
  t.match(await late.request({ type: 'subscribe', channel: 'h-2', id: 3, since: { epoch: 'another', offset: 0 } }),
    { recovered: false, offset: 0 }, 'wrong epoch')
  t.match(await late.request({ type: 'subscribe', channel: 'h-3', id: 4, since: { epoch: 'x', offset: 99 } }), { recovered: false })
  await late.expectNothing(isMessage)
  const current = await connect(t, url)
  t.match(await current.request({ type: 'subscribe', channel: 'h-room', id: 5, since: { epoch, offset: 12 } }),
    { recovered: true, offset: 12 }, 'nothing missed')
  await current.expectNothing(isMessage)
})

test('since: the previous session\'s own broadcastChannel publications stay excluded; sendAndBroadcastChannel ones do not', async (t) => {
  const { url } = await start(t, {}, (app) => {
    app.channels.on('message', { event: 'say' }, async (socket, data, meta) => {
      await socket.broadcastChannel(data, { channel: meta.channel, event: 'said' })
    })
    app.channels.on('message', { event: 'shout' }, async (socket, data, meta) => {
      await socket.sendAndBroadcastChannel(data, { channel: meta.channel, event: 'shouted' })
    })
  })
  const speaker = await connect(t, url)
  const { epoch } = await speaker.subscribe('h-room')
  const other = await connect(t, url)
  await other.subscribe('h-room')
  speaker.send({ type: 'message', event: 'say', channel: 'h-room', data: 'mine', id: 10 })
  speaker.send({ type: 'message', event: 'shout', channel: 'h-room', data: 'loud', id: 11 })
  await speaker.next((f) => f.id === 11)
  t.same((await messages(other, 2)).map((m) => [m.event, m.offset]), [['said', 1], ['shouted', 2]])
  t.same((await messages(speaker, 1)).map((m) => m.offset), [2], 'the sender got only its shout live')
  other.send({ type: 'message', event: 'say', channel: 'h-room', data: 'theirs', id: 12 })
  await speaker.next(isMessage)
  speaker.close()
  const back = await connect(t, url)
  back.send({ type: 'subscribe', channel: 'h-room', id: 1, since: { epoch, offset: 0, session: speaker.sessionId } })
  t.match(await back.next(), { recovered: true, offset: 3 })
  t.same((await messages(back, 2)).map((m) => [m.offset, m.data]), [[2, 'loud'], [3, 'theirs']])
  await back.expectNothing(isMessage)
  const stranger = await connect(t, url)
  stranger.send({ type: 'subscribe', channel: 'h-room', id: 1, since: { epoch, offset: 0 } })
  t.match(await stranger.next(), { recovered: true })
  t.same((await messages(stranger, 3)).map((m) => m.offset), [1, 2, 3], 'without a session id every publication is replayed')
})

test('a recovery racing a publisher that never stops: offsets strictly consecutive, each once', async (t) => {
  const broker = memoryBroker()
  const a = await start(t, { broker, history: { channel: /^h-/, size: 1000 } })
  const b = await start(t, { broker, history: { channel: /^h-/, size: 1000 } })
  const state = { running: true }
  let published = 0
  const publisher = (async () => {
    while (state.running) {
      await a.app.broadcastChannel('h-race', ++published)
      await b.app.broadcastChannel('h-race', ++published)
      if (published % 10 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  })()
  t.teardown(async () => { state.running = false; await publisher })
  for (let round = 0; round < 20; round++) {
    const client = await connect(t, round % 2 === 0 ? a.url : b.url)
    const id = nextId()
    client.send({ type: 'subscribe', channel: 'h-race', id, last: 5 })
    const subscribed = await client.next((f) => f.id === id)
    const got = await messages(client, 40)
    const offsets = got.map((m) => m.offset as number)
    const top = subscribed.offset as number
    t.equal(offsets[0], Math.max(1, top - 4), `round ${round}: starts with the backlog`)
    t.ok(offsets.every((offset, i) => i === 0 || offset === offsets[i - 1] + 1), `round ${round}: consecutive ${offsets.join(',')}`)
    t.ok(got.every((m) => m.data === m.offset), 'each offset carries its own publication')
    client.close()
  }
  state.running = false
  await publisher
})

test('history channels over two nodes of one memory broker: one order everywhere', async (t) => {
  const broker = memoryBroker()
  const a = await start(t, { broker })
  const b = await start(t, { broker })
  const onA = await connect(t, a.url)
  const onB = await connect(t, b.url)
  await onA.subscribe('h-room')
  await onB.subscribe('h-room')
  await Promise.all([a.app.broadcastChannel('h-room', 'a1'), b.app.broadcastChannel('h-room', 'b1'), a.app.broadcastChannel('h-room', 'a2')])
  const seenA = (await messages(onA, 3)).map((m) => [m.offset, m.data])
  const seenB = (await messages(onB, 3)).map((m) => [m.offset, m.data])
  t.same(seenA, seenB)
  t.same(seenA.map(([offset]) => offset), [1, 2, 3])
})

test('a multi-channel broadcastChannel: each history channel is a publication of its own', async (t) => {
  const { url } = await start(t, {}, (app) => {
    app.channels.on('message', { event: 'all' }, async (socket, data) => { await socket.sendAndBroadcastChannel(data) })
  })
  const client = await connect(t, url)
  await client.subscribe('h-one')
  await client.subscribe('h-two')
  await client.subscribe('plain')
  await client.request({ type: 'message', event: 'all', data: 'x', id: 50 })
  const got = await messages(client, 3)
  t.same(got.map((m) => [m.channel, m.offset]).sort(), [['h-one', 1], ['h-two', 1], ['plain', undefined]])
})

test('publications during a slow join are held back, then follow the replay; a joiner that leaves meanwhile gets nothing', async (t) => {
  const { broker, open } = gatedHistoryBroker('now')
  let sockets = new Map()
  const { app, url } = await start(t, { broker }, (app) => { sockets = recordSockets(app) })
  await app.broadcastChannel('h-room', 1)
  const client = await connect(t, url)
  const leaver = await connect(t, url)
  client.send({ type: 'subscribe', channel: 'h-room', id: 1, last: 5 })
  leaver.send({ type: 'subscribe', channel: 'h-room', id: 2 })
  await new Promise((resolve) => setTimeout(resolve, 50)) // both reads are waiting at the gate
  await app.broadcastChannel('h-room', 2)
  await app.broadcastChannel('h-room', 3)
  await sockets.get(leaver.sessionId).unsubscribe('h-room')
  open()
  t.match(await client.next(), { type: 'subscribed', id: 1, offset: 1 }, 'subscribed first: 2 and 3 were held back')
  t.same((await messages(client, 3)).map((m) => m.offset), [1, 2, 3])
  t.match(await leaver.next(), { type: 'unsubscribed', channel: 'h-room' })
  await leaver.expectNothing((f) => f.type === 'subscribed' || isMessage(f))
  await sockets.get(client.sessionId).subscribe('h-room')
  t.same(await client.next(), { type: 'subscribed', channel: 'h-room' }, 'already held: plain subscribed')
})

test('the history option: validated at registration; refused with a broker that keeps no history', async (t) => {
  for (const history of [{ size: 0 }, { ttl: 1.5 }, { channel: 5 }, { nope: 1 }, 'yes', null]) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(fastifyChannels, { history: history as never }).ready() }, { code: 'FST_CHANNELS_INVALID_OPTION' }, JSON.stringify(history))
    await app.close()
  }
  const plainBroker: Broker = {
    async connect () {
      return {
        async publish () {},
        async subscribe () {},
        async unsubscribe () {},
        async addSession () {},
        async removeSession () {},
        async sendToSession () { return false },
        async close () {}
      }
    }
  }
  const app = Fastify()
  await t.rejects(async () => { await app.register(fastifyChannels, { history: true, broker: plainBroker }).ready() },
    { code: 'FST_CHANNELS_INVALID_OPTION', message: /this broker keeps no history/ })
  await app.close()
  // half a history broker is none: it must both publish and read
  const half = (method: 'publishHistory' | 'readHistory'): Broker => ({
    async connect (node) {
      return Object.assign(await plainBroker.connect(node), { [method]: async () => { throw new Error('unused') } })
    }
  })
  for (const method of ['publishHistory', 'readHistory'] as const) {
    const partial = Fastify()
    await t.rejects(async () => { await partial.register(fastifyChannels, { history: true, broker: half(method) }).ready() },
      { code: 'FST_CHANNELS_INVALID_OPTION' }, `only ${method}`)
    await partial.close()
  }
  const ok = Fastify()
  await ok.register(fastifyChannels, { history: false, broker: plainBroker, client: false })
  await ok.ready()
  await ok.close()
})
