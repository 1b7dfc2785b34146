/**
 * One master of a Redis Cluster without replicas goes down (SIGSTOP, for longer than the
 * cluster's node timeout, so the cluster marks it failed) and stays down for a while: each node
 * logs one line when the outage of that shard begins (naming the shard by its address and slot
 * ranges) and one when it ends, only after the shard answers again; nothing flaps meanwhile.
 */
import t, { type Test } from 'tap'
import { PrivateCluster, clusterClient, shardsOf, withRedisServer } from './cluster-server.js'
import { capturedLogger, eventually, startNode, uniquePrefix, type LogLine } from './helpers.js'
import { connect } from './nodes.js'
import { socketMethods } from './fixtures/methods.js'

const unreachable = 'channels: redis unreachable; delivering to local sockets only until it is back'
const back = 'channels: redis is back; channels resubscribed and sessions registered again'

interface OutageLine extends LogLine { shard?: string }

async function staysDown (t: Test): Promise<void> {
  const cluster = await PrivateCluster.start(t, 3, 0)
  const shards = await shardsOf(cluster.seed(t))
  const victim = shards[1]
  const logs: OutageLine[] = []
  const broker = { redis: clusterClient(t, cluster.seeds), prefix: uniquePrefix(), nodeTtl: 1000, commandTimeout: 500 }
  const a = await startNode(t, broker, socketMethods, {}, capturedLogger(logs as LogLine[]))
  await connect(t, a, ['room'])
  const outageLines = (): OutageLine[] => logs.filter((line) => line.msg === unreachable || line.msg === back)
  const dump = (): void => { for (const line of logs) t.comment(`${line.time ?? ''} ${line.level} ${line.msg} ${line.shard ?? ''} ${line.err?.message ?? ''}`) }

  await cluster.pause(victim.port)
  t.teardown(() => cluster.resume(victim.port))
  // down for long: the cluster marks the master failed; keep the node busy meanwhile
  const until = Date.now() + 12000
  while (Date.now() < until) {
    await a.app.broadcastChannel('room', 'x', { event: 'got' }).catch(() => {})
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  const during = outageLines()
  if (during.length !== 1) dump()
  t.equal(during.filter((line) => line.msg === back).length, 0, 'no end while the shard is down')
  t.equal(during.filter((line) => line.msg === unreachable).length, 1, 'one start line')
  t.match(during[0]?.shard, new RegExp(`127\\.0\\.0\\.1:${victim.port} \\(slots ${victim.ranges.map(([from, to]) => `${from}-${to}`).join(', ')}\\)`), 'naming the shard')

  await cluster.resume(victim.port)
  await eventually(() => logs.some((line) => line.msg === back), 20000, 'the end of the outage is logged').catch((err: unknown) => { dump(); throw err })
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const all = outageLines()
  if (all.length !== 2) dump()
  t.same(all.map((line) => line.msg), [unreachable, back], 'one start and one end')
  t.equal(all[1].shard, all[0].shard, 'for the same shard')
}

await withRedisServer(t, 'the shard outage log test', async () => {
  await t.test('a shard down for long is logged once, begin and end', staysDown)
})
