/**
 * A shard of a Redis Cluster that hangs (SIGSTOP) without closing its connections, then wakes
 * (SIGCONT). The calls that go to it time out after `commandTimeout` (a `send` rejects, a
 * publication is reported failed) and begin an outage on each node; local delivery goes on;
 * nothing reported failed is delivered once the shard wakes (the deadline in each script call
 * refuses it); the outage ends once, with cross-node delivery and `send` working again.
 * The shard hung here holds both the test's channel and the session registry.
 */
import t, { type Test } from 'tap'
import { RedisKeys } from '../../plugin/broker/redis/keys.js'
import { keySlot } from '../../plugin/broker/redis/slot.js'
import { within } from '../helpers/deadline.js'
import type { Frame } from '../helpers/server.js'
import { PrivateCluster, clusterClient, serves, shardsOf, withRedisServer } from './cluster-server.js'
import { capturedLogger, eventually, startNode, uniquePrefix, type LogLine } from './helpers.js'
import { collectAfterFence, connect } from './nodes.js'
import { socketMethods } from './fixtures/methods.js'

const commandTimeout = 500
const unreachable = 'channels: redis unreachable; delivering to local sockets only until it is back'
const back = 'channels: redis is back; channels resubscribed and sessions registered again'

async function hangs (t: Test): Promise<void> {
  const cluster = await PrivateCluster.start(t, 3, 0)
  const seed = cluster.seed(t)
  const prefix = uniquePrefix()
  const keys = new RedisKeys(prefix)
  const victim = (await shardsOf(seed)).find((shard) => serves(shard, keySlot(keys.nodes)))!
  let room = ''
  for (let i = 0; room === ''; i++) if (serves(victim, keySlot(keys.channel(`room-${i}`)))) room = `room-${i}`

  const logsA: LogLine[] = []
  const logsB: LogLine[] = []
  const broker = { redis: clusterClient(t, cluster.seeds), prefix, nodeTtl: 5000, commandTimeout }
  const a = await startNode(t, broker, socketMethods, {}, capturedLogger(logsA))
  const b = await startNode(t, broker, socketMethods, {}, capturedLogger(logsB))
  const onA = await connect(t, a, [room])
  const onB = await connect(t, b, [room])
  await eventually(async () => await a.app.send(onB.sessionId, 'before', { event: 'got' }).then(() => true, () => false), 5000, 'the session registered')
  await a.app.broadcastChannel(room, 'before', { event: 'got' })
  t.same((await collectAfterFence(a, [onB]))[0].map((frame) => frame.data), ['before', 'before'])

  await cluster.pause(victim.port)
  t.teardown(() => cluster.resume(victim.port))
  const pausedAt = Date.now()
  for (let i = 0; i < 5; i++) {
    await within(a.app.broadcastChannel(room, `during-${i}`, { event: 'during' }), 5 * commandTimeout, 'a publication returns while the shard hangs')
    await onA.next((frame: Frame) => frame.event === 'during' && frame.data === `during-${i}`, 1000)
  }
  t.pass('local delivery goes on')
  await within(t.rejects(a.app.send(onB.sessionId, 'rejected', { event: 'during' }), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE' }),
    5 * commandTimeout, 'a send rejects while the shard hangs')
  await eventually(() => logsA.some((line) => line.msg === unreachable), 5000, 'node a logs the outage')
  // hung for longer than the cluster's node timeout (1 s): the others mark it failed
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 2500 - (Date.now() - pausedAt))))
  await cluster.resume(victim.port)

  await eventually(async () => {
    await a.app.broadcastChannel(room, 'probe', { event: 'probe' })
    return onB.frames.some((frame) => frame.event === 'probe')
  }, 30000, 'cross-node delivery resumes')
  await eventually(async () => await a.app.send(onB.sessionId, 'after', { event: 'got' }).then(() => true, () => false), 10000, 'send resumes')
  const isLate = (frame: Frame): boolean => frame.event === 'during'
  t.same((await collectAfterFence(a, [onB], isLate))[0], [], 'nothing reported failed arrived after the shard woke')
  t.same(onB.frames.filter(isLate), [])
  for (const [name, lines] of [['a', logsA], ['b', logsB]] as const) {
    await eventually(() => lines.some((line) => line.msg === back), 15000, `node ${name} logs the end of the outage`)
    t.equal(lines.filter((line) => line.msg === unreachable).length, 1, `node ${name}: the outage begins once`)
    t.equal(lines.filter((line) => line.msg === back).length, 1, `node ${name}: and ends once`)
  }
}

await withRedisServer(t, 'the hung-shard test', async () => {
  await t.test('a shard that hangs, then wakes', hangs)
})
