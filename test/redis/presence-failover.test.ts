/**
 * Presence through a shard failover of a Redis Cluster (its master killed, a replica promoted):
 * when the outage ends, every node writes its tracks again and reads its mirrors again, since
 * changes published on the shard meanwhile were missed. A track written into Redis without a
 * diff stands in for such a missed change: the watcher on the other node must get it after the
 * failover. A private cluster of three masters with a replica each.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { RedisKeys } from '../../plugin/broker/redis-keys.js'
import { keySlot } from '../../plugin/broker/redis-slot.js'
import { Observer, presenceHandlers } from '../presence/helpers.js'
import { PrivateCluster, clusterClient, redisServerInstalled, serves, shardsOf } from './cluster-server.js'
import { eventually, startNode, uniquePrefix } from './helpers.js'

async function run (t: Test): Promise<void> {
  const cluster = await PrivateCluster.start(t, 3, 1)
  const client = clusterClient(t, cluster.seeds)
  const prefix = uniquePrefix()
  const keys = new RedisKeys(prefix)

  // the shard to kill: one that serves the test's channel, not the node-wide slot
  const seed = new Redis(cluster.seeds[0].port, '127.0.0.1', { retryStrategy: () => null })
  seed.on('error', () => {})
  t.teardown(() => { seed.disconnect() })
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

if (await redisServerInstalled()) {
  await t.test('presence through a shard failover', run)
} else if (process.env.CI === 'true') {
  t.fail('no redis-server binary: the presence failover test did not run (CI=true makes this a failure)')
} else {
  process.stderr.write('\n*** SKIPPED: no redis-server binary: the presence failover test did not run ***\n\n')
}
