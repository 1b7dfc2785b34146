/**
 * A shard of a Redis Cluster fails over (its master killed, a replica promoted): the nodes
 * live through it like through a Redis outage. Local delivery never stops, each node logs the
 * outage once when it begins and once when it ends, and cross-node delivery on a channel of
 * that shard resumes; when the shard holds the session registry, `send` across nodes resumes.
 * Private clusters of three masters with a replica each.
 */
import t, { type Test } from 'tap'
import { Cluster, type Redis } from 'ioredis'
import { clientOptions } from '../../plugin/broker/redis/client.js'
import { RedisEngine } from '../../plugin/broker/redis/engine.js'
import { shardedPubSub } from '../../plugin/broker/redis/pubsub.js'
import { RedisKeys } from '../../plugin/broker/redis/keys.js'
import { keySlot } from '../../plugin/broker/redis/slot.js'
import type { Frame } from '../helpers/server.js'
import { PrivateCluster, clusterClient, serves, shardsOf, type Shard, withRedisServer } from './cluster-server.js'
import { capturedLogger, eventually, startNode, uniquePrefix, type LogLine } from './helpers.js'
import { connect, isGot } from './nodes.js'
import { socketMethods } from './fixtures/methods.js'
import { StandInEngineNode, unreachable as engineUnreachable } from '../broker/redis/stand-in-node.js'

const unreachable = 'channels: redis unreachable; delivering to local sockets only until it is back'
const back = 'channels: redis is back; channels resubscribed and sessions registered again'

/** A private cluster of three masters with a replica each, and its shards. */
async function startCluster (t: Test): Promise<{ cluster: PrivateCluster, shards: Shard[] }> {
  const cluster = await PrivateCluster.start(t, 3, 1)
  const shards = await shardsOf(cluster.seed(t))
  return { cluster, shards }
}

/** Polls `attempt` (true once it went through) until the failover is over. */
async function resumes (attempt: () => Promise<boolean>, what: string, logs: LogLine[][], t: Test): Promise<void> {
  await eventually(attempt, 30000, what).catch((err: unknown) => {
    for (const line of logs.flat()) t.comment(`${line.level} ${line.msg} ${line.err?.message ?? ''}`)
    throw err
  })
}

async function loggedOnce (t: Test, logs: Array<[string, LogLine[]]>): Promise<void> {
  for (const [name, lines] of logs) {
    await eventually(() => lines.some((line) => line.msg === back), 15000, `node ${name} logs the end of the outage`)
    const outageLines = lines.filter((line) => line.msg === unreachable || line.msg === back)
    // on a count other than two, the lines that tell why: those at info and above (each outage's
    // beginning with its cause), not the debug lines of every failed call, which outnumber them
    if (outageLines.length !== 2) {
      for (const line of lines.filter((line) => line.level >= 30)) {
        t.comment(`node ${name}: ${line.time ?? ''} ${line.level} ${line.msg} ${(line as { shard?: string }).shard ?? ''} ${line.err?.message ?? ''}`)
      }
    }
    t.equal(lines.filter((line) => line.msg === unreachable).length, 1, `node ${name}: the outage begins once`)
    t.equal(lines.filter((line) => line.msg === back).length, 1, `node ${name}: and ends once`)
  }
}

async function channelShard (t: Test): Promise<void> {
  const { cluster, shards } = await startCluster(t)
  const client = clusterClient(t, cluster.seeds)
  const prefix = uniquePrefix()
  const keys = new RedisKeys(prefix)

  // the shard to kill: one that serves a channel of the test, not the node-wide slot (sessions)
  const victim = shards.find((shard) => !serves(shard, keySlot(keys.all)))!
  let room = ''
  for (let i = 0; room === ''; i++) if (serves(victim, keySlot(keys.channel(`room-${i}`)))) room = `room-${i}`

  const logsA: LogLine[] = []
  const logsB: LogLine[] = []
  const broker = { redis: client, prefix, nodeTtl: 1000, commandTimeout: 2000 }
  const a = await startNode(t, broker, socketMethods, {}, capturedLogger(logsA))
  const b = await startNode(t, broker, socketMethods, {}, capturedLogger(logsB))
  const onA = await connect(t, a, [room])
  const onB = await connect(t, b, [room])
  const onB2 = await connect(t, b, [room])

  const got = async (client: typeof onB, data: unknown, ms: number): Promise<void> => {
    await client.next((frame: Frame) => isGot(frame) && frame.data === data, ms)
  }
  await a.app.broadcastChannel(room, 'before', { event: 'got' })
  await got(onB, 'before', 5000)
  await got(onB2, 'before', 5000)

  await cluster.kill(victim.port)
  const killedAt = Date.now()

  // local delivery goes on while the shard is down
  await b.app.broadcastChannel(room, 'local', { event: 'got' })
  await got(onB2, 'local', 1000)
  await got(onB, 'local', 1000)

  // a replica takes over: cross-node delivery on the shard's channel resumes
  let n = 0
  await resumes(async () => {
    const data = `after-${++n}`
    await a.app.broadcastChannel(room, data, { event: 'got' })
    try {
      await got(onB, data, 500)
      return true
    } catch {
      return false
    }
  }, 'cross-node delivery after the failover', [logsA, logsB], t)
  t.pass(`cross-node delivery resumed ${Date.now() - killedAt} ms after the kill`)
  onA.frames.length = 0

  await loggedOnce(t, [['a', logsA], ['b', logsB]])

  // and after it, each publication once
  await a.app.broadcastChannel(room, 'once', { event: 'got' })
  await got(onB, 'once', 5000)
  await b.app.broadcast('fence', { event: 'got' })
  await got(onB, 'fence', 5000)
  t.same(onB.frames.filter((frame) => isGot(frame) && frame.data === 'once'), [], 'no second copy')
}

/** The shard of the node-wide slot: the session registry and the per-node channels. */
async function registryShard (t: Test): Promise<void> {
  const { cluster, shards } = await startCluster(t)
  const client = clusterClient(t, cluster.seeds)
  const prefix = uniquePrefix()
  const victim = shards.find((shard) => serves(shard, keySlot(new RedisKeys(prefix).all)))!
  const logsA: LogLine[] = []
  const logsB: LogLine[] = []
  const broker = { redis: client, prefix, nodeTtl: 1000, commandTimeout: 2000 }
  const a = await startNode(t, broker, socketMethods, {}, capturedLogger(logsA))
  const b = await startNode(t, broker, socketMethods, {}, capturedLogger(logsB))
  const onB = await connect(t, b)
  await a.app.send(onB.sessionId, 'before', { event: 'got' })
  await onB.next((frame: Frame) => isGot(frame) && frame.data === 'before', 5000)

  await cluster.kill(victim.port)
  await t.rejects(a.app.send(onB.sessionId, 'during'), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE' }, 'a send while the shard is down is refused')

  let n = 0
  await resumes(async () => {
    const data = `after-${++n}`
    try {
      await a.app.send(onB.sessionId, data, { event: 'got' })
      await onB.next((frame: Frame) => isGot(frame) && frame.data === data, 500)
      return true
    } catch {
      return false
    }
  }, 'send across nodes after the failover', [logsA, logsB], t)
  await t.rejects(a.app.send('no-such-session', 'x'), { code: 'FST_CHANNELS_NO_SOCKET' }, 'NoSocketError again')
  await loggedOnce(t, [['a', logsA], ['b', logsB]])
}

/**
 * A replica that dies is no outage: the nodes never used it, and the slot map drops it
 * without a trace in their logs (ioredis closes the connection it knew of but never opened).
 */
async function replicaDies (t: Test): Promise<void> {
  const { cluster } = await startCluster(t)
  // a short slot refresh, so the nodes' clients drop the dead replica within the test
  const client = clusterClient(t, cluster.seeds, { slotsRefreshInterval: 100 })
  const logs: LogLine[] = []
  const a = await startNode(t, { redis: client, prefix: uniquePrefix(), nodeTtl: 1000 }, socketMethods, {}, capturedLogger(logs))
  const seed = cluster.seed(t)
  const slots = async (): Promise<string> => JSON.stringify(await seed.cluster('SLOTS'))
  let replicaPort = 0
  await eventually(async () => {
    const [[, , , replica]] = await seed.cluster('SLOTS') as unknown as Array<[number, number, unknown, [string, number] | undefined]>
    replicaPort = replica?.[1] ?? 0
    return replicaPort > 0
  }, 15000, 'the cluster lists a replica')
  await cluster.kill(replicaPort)
  await eventually(async () => !(await slots()).includes(`,${replicaPort},`), 15000, 'the cluster drops the dead replica from its slot map')
  // a few slot refreshes later the node's clients have dropped it too
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const onA = await connect(t, a, ['room'])
  await a.app.broadcastChannel('room', 'after', { event: 'got' })
  await onA.next((frame: Frame) => isGot(frame) && frame.data === 'after', 5000)
  t.same(logs.filter((line) => line.msg === unreachable).map((line) => line.err?.message), [], 'no outage begins')
}

/**
 * Nor is a replica the node's own client had talked to (a client may, while the slot map
 * changes in a failover): dropping it from the slot map closes that connection, but it never
 * served a slot, so no shard is down. The engine on its own clients, with a stand-in node.
 */
async function talkedToReplicaDies (t: Test): Promise<void> {
  const { cluster } = await startCluster(t)
  const prefix = uniquePrefix()
  const client = (name: string, subscriber: boolean): Cluster => new Cluster(cluster.seeds, {
    redisOptions: { ...clientOptions(), connectionName: `${prefix}:${name}`, lazyConnect: true },
    enableOfflineQueue: false,
    lazyConnect: false,
    slotsRefreshInterval: 100,
    shardedSubscribers: subscriber
  })
  const pub = client('pub', false)
  const sub = client('sub', true)
  const node = new StandInEngineNode()
  const parts = await RedisEngine.open(node, pub as unknown as Redis, sub as unknown as Redis, { prefix, nodeTtl: 1000, commandTimeout: 1000, pubsub: shardedPubSub })
  t.teardown(() => parts.close())
  parts.start?.()
  await eventually(() => pub.nodes('slave').length > 0, 15000, 'the client\'s slot map lists a replica')
  const [replica] = pub.nodes('slave')
  t.equal(await replica.ping(), 'PONG', 'the engine\'s publisher talked to a replica')
  await cluster.kill(replica.options.port!)
  await eventually(() => !pub.nodes('all').includes(replica), 15000, 'the client drops the dead replica from its slot map')
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.same(node.named(engineUnreachable).map((line) => line.shard), [], 'no outage begins')
  // closed here, while the cluster still runs: clients (their sharded subscribers) left open
  // when the teardown stops the servers kept retrying, and the file never exited (seen once in CI)
  await parts.close()
  pub.disconnect()
  sub.disconnect()
}

await withRedisServer(t, 'the failover test', async () => {
  await t.test('the shard of a channel fails over', channelShard)
  await t.test('the shard of the session registry fails over', registryShard)
  await t.test('a replica that dies is no outage', replicaDies)
  await t.test('a replica the engine talked to dies: no outage either', talkedToReplicaDies)
})
