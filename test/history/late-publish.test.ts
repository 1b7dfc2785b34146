/**
 * A history publication reported failed is never stored nor delivered later. Redis hangs
 * (SIGSTOP) for 5 s during a steady stream of publications: the node gives up on the appends
 * it sent meanwhile, and Redis, once it runs again (SIGCONT), finds them in its buffers. The
 * append script checks its deadline on Redis' clock, as plain publications do, so none of them
 * is stored or published: no socket on another node ever gets one, history() and a recovery do
 * not replay one; the publishing node delivered each to its own sockets at once, without an
 * offset (and never again). Every append that succeeded is delivered once, in offset order.
 * Each append's outcome is recorded where the node learns it (the broker connection's promise).
 */
import t from 'tap'
import type { Test } from 'tap'
import { redisBroker, type Broker } from '../../plugin/index.js'
import { startApp, TestClient, type Frame } from '../helpers/server.js'
import { eventually, PrivateRedis, uniquePrefix, withRedis } from '../redis/helpers.js'
import { PrivateCluster, clusterClient, serves, shardsOf, withRedisServer } from '../redis/cluster-server.js'
import { RedisKeys } from '../../plugin/broker/redis/keys.js'
import { keySlot } from '../../plugin/broker/redis/slot.js'

type Outcome = 'ok' | 'failed'

/** `inner`, recording for each history publication `{ i }` whether the broker took it. */
function recording (inner: Broker, outcomes: Map<number, Outcome>): Broker {
  return {
    async connect (node) {
      const connection = await inner.connect(node)
      const publish = connection.publishHistory?.bind(connection)
      if (publish === undefined) throw new Error('the Redis broker keeps history')
      connection.publishHistory = async (channel, frame, except, limits) => {
        const { i } = (JSON.parse(frame) as { data: { i: number } }).data
        try {
          const offset = await publish(channel, frame, except, limits)
          outcomes.set(i, 'ok')
          return offset
        } catch (err) {
          outcomes.set(i, 'failed')
          throw err
        }
      }
      return connection
    }
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const indexOf = (frame: Frame): number => (frame.data as { i: number }).i
const isMessage = (frame: Frame): boolean => frame.type === 'message'

interface Freezable { pause: () => unknown, resume: () => unknown }

async function frozenDuringBurst (t: Test, broker: (prefix: string) => Broker, redis: Freezable): Promise<void> {
  const prefix = uniquePrefix()
  const outcomes = new Map<number, Outcome>()
  const options = { heartbeat: false as const, rateLimit: false as const, history: { size: 2000, ttl: 600_000 } }
  const a = await startApp({ ...options, broker: recording(broker(prefix), outcomes) })
  t.teardown(() => a.app.close())
  const b = await startApp({ ...options, broker: broker(prefix) })
  t.teardown(() => b.app.close())
  const onA = await TestClient.connect(a.url)
  const onB = await TestClient.connect(b.url)
  t.teardown(() => { onA.close(); onB.close() })
  const { epoch } = await onA.subscribe('h')
  await onB.subscribe('h')
  await sleep(1000) // each node has read Redis' clock: its appends carry deadlines

  // one publication every 10 ms for 8 s; Redis hangs from 1.5 s to 6.5 s
  const pending: Array<Promise<void>> = []
  let i = 0
  const started = Date.now()
  t.teardown(() => redis.resume())
  let paused = false
  let resumed = false
  while (Date.now() - started < 8000) {
    const at = Date.now() - started
    if (!paused && at >= 1500) { await redis.pause(); paused = true }
    if (!resumed && at >= 6500) { await redis.resume(); resumed = true }
    pending.push(a.app.broadcastChannel('h', { i: i++ }))
    await sleep(10)
  }
  await Promise.all(pending)
  t.equal(outcomes.size, i, 'every publication has an outcome')
  const ok = [...outcomes].filter(([, outcome]) => outcome === 'ok').map(([n]) => n).sort((x, y) => x - y)
  const failed = new Set([...outcomes].filter(([, outcome]) => outcome === 'failed').map(([n]) => n))
  t.ok(failed.size > 0, `some publications failed while Redis hung (${failed.size} of ${i})`)
  t.ok(ok.length > 0, `some went through (${ok.length})`)

  // Redis runs what sat in its buffers now: give it time to deliver anything it would.
  await eventually(() => onB.frames.filter(isMessage).length >= ok.length, 15000, 'node B got every publication reported ok').catch(() => {})
  await sleep(2000)
  await onB.expectNothing(() => false)
  const onBNow = onB.frames.filter(isMessage)
  t.same(onBNow.map(indexOf), ok, 'node B: exactly the publications reported ok, each once, in order')
  t.same(onBNow.map((frame) => frame.offset), ok.map((_, n) => n + 1), 'with dense offsets')
  const onANow = onA.frames.filter(isMessage)
  t.same(onANow.filter((frame) => frame.offset !== undefined).map(indexOf), ok, 'node A: the ok ones from the stream, each once')
  t.same(new Set(onANow.filter((frame) => frame.offset === undefined).map(indexOf)), failed, 'the failed ones delivered locally at once, without an offset')
  t.equal(onANow.length, i, 'and nothing twice')

  const view = await b.app.channels.history('h')
  t.same(view.messages.map((message) => (message.data as { i: number }).i), ok, 'history() holds the ok ones only')
  t.equal(view.offset, ok.length)
  const back = await TestClient.connect(b.url)
  t.teardown(() => back.close())
  t.match(await back.request({ type: 'subscribe', channel: 'h', id: 1, since: { epoch, offset: 0 } }), { recovered: true, offset: ok.length })
  const replayed: Frame[] = []
  for (let n = 0; n < ok.length; n++) replayed.push(await back.next(isMessage))
  t.same(replayed.map(indexOf), ok, 'a recovery replays the ok ones only')
}

await withRedis(t, async () => {
  t.test('one Redis hangs during a burst of history publications', async (t) => {
    const redis = await PrivateRedis.start(t)
    await frozenDuringBurst(t, (prefix) => redisBroker({ url: redis.url, prefix, nodeTtl: 1500, commandTimeout: 1000 }), redis)
  })
})

await withRedisServer(t, 'the hung-shard history test', async () => {
  t.test('the Redis Cluster shard of the channel hangs during a burst of history publications', async (t) => {
    const cluster = await PrivateCluster.start(t, 3, 0)
    const channelSlot = keySlot(new RedisKeys('any').channel('h'))
    const victim = (await shardsOf(cluster.seed(t))).find((shard) => serves(shard, channelSlot))!
    await frozenDuringBurst(t, (prefix) => redisBroker({ redis: clusterClient(t, cluster.seeds), prefix, nodeTtl: 1500, commandTimeout: 1000 }), {
      pause: async () => await cluster.pause(victim.port),
      resume: async () => await cluster.resume(victim.port)
    })
  })
})
