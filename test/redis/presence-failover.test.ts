/**
 * Presence through a shard failover of a Redis Cluster (its master killed, a replica promoted):
 * when the outage ends, every node writes its tracks again and reads its mirrors again, since
 * changes published on the shard meanwhile were missed. A track written into Redis without a
 * diff stands in for such a missed change: the watcher on the other node must get it after the
 * failover. And a failover elsewhere that outlasts `nodeTtl` takes nobody away: the nodes keep
 * their registrations alive on the shards that are up. A private cluster of three masters with
 * a replica each.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { RedisKeys } from '../../plugin/broker/redis/keys.js'
import { keySlot } from '../../plugin/broker/redis/slot.js'
import { Observer, presenceHandlers } from '../presence/helpers.js'
import { PrivateCluster, clusterClient, serves, shardsOf, withRedisServer } from './cluster-server.js'
import { capturedLogger, eventually, startNode, uniquePrefix, type LogLine } from './helpers.js'

async function run (t: Test): Promise<void> {
  const cluster = await PrivateCluster.start(t, 3, 1)
  const client = clusterClient(t, cluster.seeds)
  const prefix = uniquePrefix()
  const keys = new RedisKeys(prefix)

  // the shard to kill: one that serves the test's channel, not the node-wide slot
  const seed = cluster.seed(t)
  const victim = (await shardsOf(seed)).find((shard) => !serves(shard, keySlot(keys.nodes)))!
  let room = ''
  for (let i = 0; room === ''; i++) if (serves(victim, keySlot(keys.channel(`room-${i}`)))) room = `room-${i}`

  const broker = { redis: client, prefix, nodeTtl: 1000, commandTimeout: 1000 }
  const a = await startNode(t, broker, presenceHandlers, { presence: true })
  const b = await startNode(t, broker, presenceHandlers, { presence: true })
  const member = await Observer.join(a.url, room)
  const watcher = await Observer.join(b.url, room)
  t.teardown(() => { member.client.close(); watcher.client.close() })
  await member.track('ann')
  await watcher.until((s) => s.ann !== undefined, 'ann before the failover')

  // a change whose diff nobody got: a track in the hash, replicated, never published
  const master = new Redis(victim.port, '127.0.0.1', { retryStrategy: () => null })
  master.on('error', () => {})
  t.teardown(() => { master.disconnect() })
  await master.hset(keys.presence(room), 'ghost-ref', 'ghost-node\n"ghost"\n{}')
  t.equal(await master.call('WAIT', '1', '5000'), 1, 'the replica has it')
  await cluster.kill(victim.port)

  await watcher.until((s) => s.ghost !== undefined, 'the watcher reads the channel again after the failover', 30000)
  await watcher.until((s) => s.ann !== undefined, 'and keeps ann', 5000)
  t.same(Object.keys(watcher.state).sort(), ['ann', 'ghost'], `and keeps what it had: ${JSON.stringify(watcher.diffs)}`)
  await eventually(async () => Object.keys(await b.app.channels.presence(room).catch(() => ({}))).sort().join() === 'ann,ghost', 10000, 'Redis holds both')
  t.same(Object.keys(await b.app.channels.presence(room)).sort(), ['ann', 'ghost'])
}

/**
 * The shard killed serves neither the session registry nor the watched channel (only another
 * channel of both nodes), and the cluster serves the other shards all along
 * (cluster-require-full-coverage no): every node is in an
 * outage for the failover, longer than nodeTtl, yet its sessions stay findable and its members
 * stay present for the others.
 */
async function elsewhere (t: Test): Promise<void> {
  const cluster = await PrivateCluster.start(t, 3, 1)
  const seed = cluster.seed(t)
  const ports = String(await seed.cluster('NODES')).split('\n').filter((line) => line !== '').map((line) => Number(line.split(' ')[1].split(/[:@]/)[1]))
  for (const port of ports) {
    const node = new Redis(port, '127.0.0.1', { retryStrategy: () => null })
    await node.config('SET', 'cluster-require-full-coverage', 'no')
    node.disconnect()
  }
  const prefix = uniquePrefix()
  const keys = new RedisKeys(prefix)
  const shards = await shardsOf(seed)
  const victim = shards.find((shard) => !serves(shard, keySlot(keys.nodes)))!
  let room = ''
  let onVictim = ''
  for (let i = 0; room === '' || onVictim === ''; i++) {
    if (serves(victim, keySlot(keys.channel(`room-${i}`)))) onVictim ||= `room-${i}`
    else room ||= `room-${i}`
  }

  const nodeTtl = 1000
  const logsA: LogLine[] = []
  const logsB: LogLine[] = []
  const broker = { redis: clusterClient(t, cluster.seeds), prefix, nodeTtl, commandTimeout: 1000 }
  const a = await startNode(t, broker, presenceHandlers, { presence: true }, capturedLogger(logsA))
  const b = await startNode(t, broker, presenceHandlers, { presence: true }, capturedLogger(logsB))
  const member = await Observer.join(a.url, room)
  const watcher = await Observer.join(b.url, room)
  // a channel of the victim's on each node: the outage lasts until the failover is over
  const bystanders = [await Observer.join(a.url, onVictim), await Observer.join(b.url, onVictim)]
  t.teardown(() => { for (const observer of [member, watcher, ...bystanders]) observer.client.close() })
  await member.track('ann')
  await watcher.until((s) => s.ann !== undefined, 'ann before the failover')

  await cluster.kill(victim.port)
  const over = (logs: LogLine[]): boolean => logs.some((line) => line.msg.startsWith('channels: redis is back'))
  await eventually(() => logsA.some((line) => line.msg.startsWith('channels: redis unreachable')), 5000, 'node a sees the outage')
  // all through it, a finds the watcher's session on b, and b's presence keeps ann
  let sends = 0
  const deadline = Date.now() + 30000
  while (!(over(logsA) && over(logsB)) && Date.now() < deadline) {
    await a.app.send(watcher.client.sessionId, ++sends, { event: 'during' })
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const outageMs = (logsB.find((line) => line.msg.startsWith('channels: redis is back')) as { outageMs?: number } | undefined)?.outageMs ?? 0
  t.ok(outageMs > nodeTtl, `the outage (${outageMs} ms) outlasted nodeTtl (${nodeTtl} ms)`)
  t.pass(`${sends} sends from a reached b's session during it`)
  watcher.drain()
  t.same(watcher.diffs.filter((diff) => Object.keys(diff.leaves as object).length > 0), [], 'nobody left')
  t.same(Object.keys(watcher.state), ['ann'])
  t.same(Object.keys(await a.app.channels.presence(room)), ['ann'])
}

await withRedisServer(t, 'the presence failover test', async () => {
  await t.test('presence through a shard failover', run)
  await t.test('a failover elsewhere longer than nodeTtl takes nobody away', elsewhere)
})
