/**
 * A history channel's stream is lost while sockets stay connected (the memory broker swept it
 * idle; on Redis its keys are gone): the server sends each holder `subscribed` without an id,
 * the new epoch and `recovered: false`, before the first publication of the new epoch, and the
 * bundled client then gets every publication of the new epoch, though their offsets are lower
 * than those it saw before. End to end: a real server, the real client, a raw socket that
 * checks the exact frames.
 */
import t from 'tap'
import type { Test } from 'tap'
import { composeBroker } from '../../plugin/broker/compose.js'
import { clockedMemoryEngine } from '../../plugin/broker/memory/broker.js'
import type { Broker, ChannelsOptions } from '../../plugin/index.js'
import type { SubscribedInfo } from '../../client/index.js'
import { startApp, TestClient, type Frame, type TestApp } from '../helpers/server.js'
import { clientFor } from '../client/helpers.js'
import { eventually } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'
import { uniquePrefix } from '../redis/helpers.js'
import { redisBroker } from '../../plugin/index.js'

const isMessage = (frame: Frame): boolean => frame.type === 'message'
const day = 24 * 3600_000

/** Long enough for a few sweeps of a store whose ttl is 100 ms. */
async function sweeps (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 400))
}

interface Seen { offsets: number[], infos: SubscribedInfo[] }

/**
 * A node on `broker`, a bundled client and a raw socket holding history channel `h`, and
 * 50 publications seen by both.
 */
async function holding (t: Test, broker: Broker, options: ChannelsOptions = {}): Promise<{ node: TestApp, seen: Seen, raw: TestClient, epoch: string }> {
  const node = await startApp({ broker, heartbeat: false, rateLimit: false, history: { size: 100, ttl: 60_000 }, ...options })
  t.teardown(() => node.app.close())
  const seen: Seen = { offsets: [], infos: [] }
  const client = clientFor(t, node.url)
  client.on('line', (_data, meta) => { seen.offsets.push(meta.offset ?? -1) })
  client.onSubscribed((_channel, info) => { seen.infos.push(info) })
  await client.subscribe('h')
  const raw = await TestClient.connect(node.url)
  t.teardown(() => raw.close())
  const { epoch } = await raw.subscribe('h')
  for (let i = 1; i <= 50; i++) await node.app.broadcastChannel('h', i, { event: 'line' })
  await eventually(() => seen.offsets.length === 50, 5000, 'the client got the first 50')
  for (let i = 1; i <= 50; i++) await raw.next(isMessage)
  return { node, seen, raw, epoch: epoch as string }
}

/** After the loss: 60 publications, all of which must reach the client's listener. */
async function afterLoss (t: Test, { node, seen, raw, epoch }: Awaited<ReturnType<typeof holding>>): Promise<void> {
  for (let i = 1; i <= 60; i++) await node.app.broadcastChannel('h', 100 + i, { event: 'line' })
  const restart = await raw.next()
  t.equal(restart.type, 'subscribed', 'the raw socket gets subscribed before the first message of the new epoch')
  t.notOk('id' in restart, 'without an id')
  t.not(restart.epoch, epoch, 'a new epoch')
  t.same(restart, { type: 'subscribed', channel: 'h', epoch: restart.epoch, offset: 0, recovered: false })
  const next = await raw.next(isMessage)
  t.match(next, { offset: 1, data: 101 })
  await eventually(() => seen.offsets.length >= 110, 5000, 'the client got all 60 of the new epoch').catch(() => {})
  t.same(seen.offsets.slice(50), Array.from({ length: 60 }, (_, i) => i + 1), 'every publication of the new epoch reached the listener, in order')
  t.equal(seen.infos.length, 2)
  t.match(seen.infos[1], { recovered: false, epoch: restart.epoch, offset: 0 }, 'onSubscribed ran with recovered: false')
  t.equal((await node.app.channels.history('h')).epoch, restart.epoch)
}

t.test('memory broker: a stream swept idle while a socket holds it', async (t) => {
  let skew = 0
  const broker = composeBroker(clockedMemoryEngine(() => Date.now() + skew))
  // a short ttl: the store sweeps every 100 ms
  const state = await holding(t, broker, { history: { size: 100, ttl: 100 } })
  skew = day + 60_000 // a day without use: the next sweep drops the stream (a read now would use it)
  await sweeps()
  t.not((await state.node.app.channels.history('h')).epoch, state.epoch, 'the stream was swept')
  await afterLoss(t, state)
})

t.test('memory broker: publications of one epoch never restart anything', async (t) => {
  const state = await holding(t, composeBroker(clockedMemoryEngine(Date.now)))
  await state.node.app.broadcastChannel('h', 51, { event: 'line' })
  t.match(await state.raw.next(), { type: 'message', offset: 51 })
  t.equal(state.seen.infos.length, 1)
})

t.test('a socket excluded from the first publication of the new epoch (its own broadcastChannel) is restarted too', async (t) => {
  let skew = 0
  const node = await startApp({
    broker: composeBroker(clockedMemoryEngine(() => Date.now() + skew)),
    heartbeat: false,
    rateLimit: false,
    history: { size: 100, ttl: 100 }
  }, (app) => {
    app.channels.on('message', { event: 'say' }, async (socket, data) => {
      await socket.broadcastChannel(data, { channel: 'h' })
      return 'ok'
    })
  })
  t.teardown(() => node.app.close())
  const speaker = await TestClient.connect(node.url)
  t.teardown(() => speaker.close())
  const { epoch } = await speaker.subscribe('h')
  await node.app.broadcastChannel('h', 'one')
  t.match(await speaker.next(isMessage), { offset: 1 })
  skew = day + 60_000
  await sweeps()
  await speaker.request({ type: 'message', event: 'say', data: 'mine', id: 7 })
  const restart = await speaker.next((frame) => frame.type === 'subscribed')
  t.match(restart, { channel: 'h', offset: 0, recovered: false })
  t.not(restart.epoch, epoch)
  await node.app.broadcastChannel('h', 'two')
  t.match(await speaker.next(isMessage), { offset: 2, data: 'two' }, 'then the next publication, no second restart')
})

await forEachTarget(t, async (t, target) => {
  t.test('Redis: the keys of the stream are deleted while sockets hold it', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const state = await holding(t, redisBroker({ ...target.broker, prefix }))
    await target.deleteKeys(prefix) // what FLUSHALL, a restart without persistence or an expiry does to this prefix
    await afterLoss(t, state)
  })
})
