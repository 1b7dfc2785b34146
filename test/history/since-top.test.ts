/**
 * A client that rejoins with `since` equal to the channel's top offset missed nothing: it must
 * get `recovered: true`, no replay, then live publications. On the memory broker, on one Redis
 * and on a Redis Cluster (test/redis/targets.ts: skipped loudly without them, failed under
 * CI=true). The cases: a stream longer than `size` (the log trimmed), entries expired by `ttl`
 * while the epoch and top stay, the top being the rejoining session's own publication (excluded
 * from its replay), a channel never published to (top 0), and a rejoin on another node.
 */
import t, { type Test } from 'tap'
import { memoryBroker, type ChannelsOptions } from '../../plugin/index.js'
import { startApp, TestClient, nextId, type Frame, type TestApp } from '../helpers/server.js'
import { eventually, startNode, uniquePrefix } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'

const isMessage = (frame: Frame): boolean => frame.type === 'message'

/**
 * Starts a node with `options`; nodes started with the same `store` share one history store
 * (the same Redis prefix), and each test has its own.
 */
type StartNode = (t: Test, options: ChannelsOptions, store: string) => Promise<TestApp>

const say = (node: TestApp): void => {
  node.app.channels.on('message', { event: 'say' }, async (socket, data, meta) => {
    await socket.broadcastChannel(data, { channel: meta.channel })
    return 'ok'
  })
}

async function connect (t: Test, url: string): Promise<TestClient> {
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  return client
}

async function rejoin (client: TestClient, channel: string, since: { epoch: unknown, offset: number, session?: string }): Promise<Frame> {
  return await client.request({ type: 'subscribe', channel, id: nextId(), since })
}

/** The answer without its id: the whole frame, to see that it carries nothing else. */
function withoutId ({ id: _id, ...frame }: Frame): Frame {
  return frame
}

/** The cases, on nodes made by `start` (two of them share the broker's store). */
function suite (t: Test, startIn: StartNode, shared: boolean): void {
  let store = ''
  t.beforeEach(() => { store = uniquePrefix() })
  const start = async (t: Test, options: ChannelsOptions): Promise<TestApp> => await startIn(t, options, store)

  t.test('the log trimmed to size: since the top is recovered, nothing replayed, then live', async (t) => {
    const node = await start(t, { history: { channel: /^h-/, size: 3, ttl: 60_000 } })
    const client = await connect(t, node.url)
    const { epoch } = await client.subscribe('h-room')
    for (let n = 1; n <= 7; n++) await node.app.broadcastChannel('h-room', n)
    for (let n = 1; n <= 7; n++) t.match(await client.next(isMessage), { offset: n })
    client.close()
    const back = await connect(t, node.url)
    t.same(withoutId(await rejoin(back, 'h-room', { epoch, offset: 7, session: client.sessionId })),
      { type: 'subscribed', channel: 'h-room', epoch, offset: 7, recovered: true })
    await back.expectNothing(isMessage)
    await node.app.broadcastChannel('h-room', 8)
    t.match(await back.next(isMessage), { offset: 8, data: 8 })
    t.match(await rejoin(await connect(t, node.url), 'h-room', { epoch, offset: 8 }), { recovered: true, offset: 8 }, 'without a session too')
    t.match(await rejoin(await connect(t, node.url), 'h-room', { epoch, offset: 4 }), { recovered: false, offset: 8 }, 'one below what is kept is not')
  })

  t.test('entries expired by ttl: since the top still has nothing missing, so it is recovered', async (t) => {
    const node = await start(t, { history: { channel: /^h-/, size: 10, ttl: 300 } })
    const client = await connect(t, node.url)
    const { epoch } = await client.subscribe('h-room')
    await node.app.broadcastChannel('h-room', 'a')
    await node.app.broadcastChannel('h-room', 'b')
    await client.next(isMessage)
    await client.next(isMessage)
    await eventually(async () => (await node.app.channels.history('h-room')).messages.length === 0, 5000, 'the entries expire after ttl')
    const back = await connect(t, node.url)
    t.match(await rejoin(back, 'h-room', { epoch, offset: 2, session: client.sessionId }), { epoch, offset: 2, recovered: true })
    t.match(await rejoin(await connect(t, node.url), 'h-room', { epoch, offset: 1 }), { epoch, offset: 2, recovered: false },
      'one behind the top: that entry is gone')
    await back.expectNothing(isMessage)
    await node.app.broadcastChannel('h-room', 'c')
    t.match(await back.next(isMessage), { offset: 3, data: 'c' })
  })

  t.test('the top is the rejoining session\'s own publication: recovered, and it is not replayed', async (t) => {
    const node = await start(t, { history: { channel: /^h-/, size: 10, ttl: 60_000 } })
    say(node)
    const speaker = await connect(t, node.url)
    const { epoch } = await speaker.subscribe('h-room')
    await node.app.broadcastChannel('h-room', 'theirs')
    await speaker.next(isMessage)
    await speaker.request({ type: 'message', event: 'say', channel: 'h-room', data: 'mine', id: nextId() })
    speaker.close()
    const back = await connect(t, node.url)
    t.match(await rejoin(back, 'h-room', { epoch, offset: 1, session: speaker.sessionId }), { offset: 2, recovered: true },
      'below the top, only its own publication missed')
    await back.expectNothing(isMessage)
    const again = await connect(t, node.url)
    t.match(await rejoin(again, 'h-room', { epoch, offset: 2, session: speaker.sessionId }), { offset: 2, recovered: true }, 'at the top')
    await again.expectNothing(isMessage)
  })

  t.test('a channel never published to: since its epoch and offset 0 is recovered', async (t) => {
    const node = await start(t, { history: { channel: /^h-/, size: 10, ttl: 60_000 } })
    const client = await connect(t, node.url)
    const first = await client.subscribe('h-quiet')
    t.match(first, { offset: 0 })
    const back = await connect(t, node.url)
    t.match(await rejoin(back, 'h-quiet', { epoch: first.epoch, offset: 0, session: client.sessionId }),
      { epoch: first.epoch, offset: 0, recovered: true })
    await back.expectNothing(isMessage)
  })

  if (!shared) return
  t.test('since the top on another node of the same store', async (t) => {
    const history = { channel: /^h-/, size: 5, ttl: 60_000 }
    const a = await start(t, { history })
    const b = await start(t, { history })
    const client = await connect(t, a.url)
    const { epoch } = await client.subscribe('h-room')
    for (let n = 1; n <= 9; n++) await (n % 2 === 0 ? a : b).app.broadcastChannel('h-room', n)
    for (let n = 1; n <= 9; n++) await client.next(isMessage)
    client.close()
    const back = await connect(t, b.url)
    t.match(await rejoin(back, 'h-room', { epoch, offset: 9, session: client.sessionId }), { epoch, offset: 9, recovered: true })
    await back.expectNothing(isMessage)
    await a.app.broadcastChannel('h-room', 10)
    t.match(await back.next(isMessage), { offset: 10 })
  })
}

t.test('on the memory broker', async (t) => {
  suite(t, async (t, options) => {
    const node = await startApp({ broker: memoryBroker(), heartbeat: false, rateLimit: false, ...options })
    t.teardown(() => node.app.close())
    return node
  }, false)
})

await forEachTarget(t, async (t, target) => {
  suite(t, async (t, options, prefix) => {
    t.teardown(() => target.deleteKeys(prefix))
    return await startNode(t, { ...target.broker, prefix }, undefined, options)
  }, true)
})
