/**
 * The Redis engine on a Redis Cluster (engine.ts), with a stand-in node: how it finds which
 * shards are down when connections of its own to masters are cut (CLIENT KILL, nothing stopped:
 * the cluster is shared), the second search that confirms a silent master, and the recovery
 * that ends only the outages of shards that answer again. Complements engine.test.ts.
 */
import t, { type Test } from 'tap'
import { Cluster, type Redis } from 'ioredis'
import { redisEngine } from '../../../plugin/broker/redis/broker.js'
import { addressOf, clientOptions, ready } from '../../../plugin/broker/redis/client.js'
import { RedisEngine } from '../../../plugin/broker/redis/engine.js'
import { shardedPubSub } from '../../../plugin/broker/redis/pubsub.js'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { keySlot } from '../../../plugin/broker/redis/slot.js'
import { clusterClient, keyServedBy, seedsOf, shardsOf } from '../../redis/cluster-server.js'
import { eventually, uniquePrefix } from '../../redis/helpers.js'
import { withCluster } from '../../redis/targets.js'

import { StandInEngineNode, back, cut, sleep, stillUnreachable, unreachable } from './stand-in-node.js'

/** Each restore of these tests reports 1 channel and 4 sessions. */
const restored = { channels: 1, sessions: 4 }

// (the target's cluster, never `clusterUrls(t)` again: without REDIS_CLUSTER_URL that starts another one)
await withCluster(t, async (target) => {
  const commandTimeout = 1000

  async function start (t: Test): Promise<{ node: StandInEngineNode, parts: Awaited<ReturnType<ReturnType<typeof redisEngine>['connect']>>, keys: RedisKeys, prefix: string }> {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const node = new StandInEngineNode(restored)
    const parts = await redisEngine({ ...target.broker, prefix, nodeTtl: 1000, commandTimeout }).connect(node)
    t.teardown(() => parts.close())
    parts.start?.()
    return { node, parts, keys: new RedisKeys(prefix), prefix }
  }

  /** The address and first slot range of a master, as the engine names its shard. */
  async function shardOf (master: Redis): Promise<{ address: string, from: number, to: number }> {
    const shard = (await shardsOf(master)).find(({ port }) => port === master.options.port)
    const [from, to] = shard?.ranges[0] ?? [-1, -1]
    return { address: `${master.options.host ?? ''}:${master.options.port ?? ''}`, from, to }
  }

  t.test('redisEngine() duplicates the app\'s cluster client: our options (no key prefix, named connections to every master), a sharded subscriber per master', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const mine = clusterClient(t, seedsOf(target.env.REDIS_CLUSTER_URL), { keyPrefix: 'app:', redisOptions: { connectionName: 'app' } })
    const node = new StandInEngineNode(restored)
    const parts = await redisEngine({ redis: mine, prefix, commandTimeout }).connect(node)
    t.teardown(() => parts.close())
    parts.start?.()
    const keys = new RedisKeys(prefix)
    await parts.registry.register([])
    t.equal(await target.admin.exists(keys.alive(node.nodeId)), 1, 'the keys without the app\'s key prefix')
    const masters = await target.masters()
    const named = await Promise.all(masters.map(async (master) => (await master.client('LIST') as string).split('\n').filter((line) => line.includes(` name=${prefix}:${node.nodeId}:pub `)).length))
    t.same(named.map((count) => count >= 1), masters.map(() => true), `the publisher connected to every master at once: ${named.join(' ')}`)
    // one channel per shard, each subscribed on its master and heard from
    const channels: string[] = []
    for (const master of masters) {
      const { from, to } = await shardOf(master)
      let i = 0
      while (keySlot(keys.channel(`c${i}`)) < from || keySlot(keys.channel(`c${i}`)) > to) i++
      channels.push(`c${i}`)
    }
    await parts.transport.subscribe(channels.map((channel) => ({ kind: 'channel', channel })))
    for (const channel of channels) await (target.admin as Cluster).spublish(keys.channel(channel), channel)
    await eventually(() => node.received.length === channels.length, 3000, 'one message per shard')
    t.same(node.received.sort(), [...channels].sort())
    await parts.close()
    t.equal(await mine.set('still', 'mine', 'PX', 1000), 'OK', 'the app\'s client still works')
  })

  t.test('a master the client lost stays down while a second search finds it silent; the outage ends once it answers again', async (t) => {
    const { node, parts, keys, prefix } = await start(t)
    // not the master of slot 0: the outage must name the master whose connection was lost
    const masters = await target.masters()
    const served = await Promise.all(masters.map(async (master) => await shardOf(master)))
    const index = served.findIndex(({ from }) => from !== 0)
    const victim = masters[index]
    const { address, from, to } = served[index]
    t.equal(await cut(victim, `${prefix}:${node.nodeId}:pub`), 1)
    await eventually(() => node.named(unreachable).length === 1, 3000, 'the outage begins')
    const began = node.named(unreachable)[0]
    t.match(began, { shard: `${address} (slots ${from}-${to}` })
    t.ok(began.shard?.startsWith(`${address} (slots ${from}-${to}`), `named after that master: ${began.shard ?? ''}`)
    // the client forgot that master until it learns the slot map again: it does not answer
    await eventually(() => node.named(stillUnreachable).length >= 1, 4000, 'the second search')
    const second = node.named(stillUnreachable)[0]
    t.match(second, { shard: began.shard, err: { message: began.err?.message } }, 'the same outage, the same cause')
    const gap = second.time - began.time
    t.ok(gap >= commandTimeout * 0.9 && gap < commandTimeout * 3, `commandTimeout after the first search: ${gap}`)
    t.ok(node.restores > 0, 'the tick recovers meanwhile')
    t.same(node.named(back), [], 'but the silent shard stays down')
    let i = 0
    while (keySlot(keys.channel(`c${i}`)) < from || keySlot(keys.channel(`c${i}`)) > to) i++
    await eventually(async () => {
      await parts.transport.publish([{ kind: 'channel', channel: `c${i}` }], 'x').catch(() => {})
      return node.named(back).length === 1
    }, 5000, 'the outage ends')
    t.match(node.named(back)[0], { level: 30, shard: began.shard, channels: 1, sessions: 4 })
  })

  t.test('connections to two masters cut at once: both outages begin at once', async (t) => {
    const { node, prefix } = await start(t)
    const [a, b] = await target.masters()
    const shards = [await shardOf(a), await shardOf(b)]
    const cuts = await Promise.all([a, b].map(async (master) => await cut(master, `${prefix}:${node.nodeId}:pub`)))
    t.same(cuts, [1, 1])
    await eventually(() => node.named(unreachable).length === 2, 3000, 'two outages')
    const began = node.named(unreachable)
    t.same(began.map((line) => line.shard?.split(' ')[0]).sort(), shards.map(({ address }) => address).sort(), 'one per master cut')
    t.ok(Math.abs(began[1].time - began[0].time) < commandTimeout * 0.8, `together, not a second search apart: ${began[1].time - began[0].time}`)
    await sleep(10)
  })

  /** The engine on cluster clients of the test's own (named `<prefix>:pub` and `<prefix>:sub`), started. */
  async function open (t: Test): Promise<{ node: StandInEngineNode, parts: Awaited<ReturnType<typeof RedisEngine.open>>, pub: Cluster, prefix: string }> {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const seeds = seedsOf(target.env.REDIS_CLUSTER_URL)
    const client = (name: string, subscriber: boolean): Cluster => new Cluster(seeds, {
      redisOptions: { ...clientOptions(), connectionName: `${prefix}:${name}`, lazyConnect: true },
      enableOfflineQueue: false,
      lazyConnect: false,
      shardedSubscribers: subscriber
    })
    const pub = client('pub', false)
    const sub = client('sub', true)
    const node = new StandInEngineNode(restored)
    const parts = await RedisEngine.open(node, pub as unknown as Redis, sub as unknown as Redis, { prefix, nodeTtl: 1000, commandTimeout, pubsub: shardedPubSub })
    t.teardown(() => parts.close())
    parts.start?.()
    return { node, parts, pub, prefix }
  }

  /**
   * Holds the engine's own connection to one master busy for `seconds` (a BLPOP on it: the
   * probe's PINGs wait behind it, nothing else of the cluster is touched) while a call fails
   * every 50 ms, as in an outage, each failure starting a search. Resolves when it answers again.
   */
  async function busyMaster (t: Test, pub: Cluster, prefix: string, seconds: number): Promise<{ address: string, since: number }> {
    const [busy] = pub.nodes('master')
    await ready(busy)
    const queue = await keyServedBy(busy, `${prefix}:q`)
    const failures = setInterval(() => pub.emit('error', new Error('a call failed')), 50)
    t.teardown(() => clearInterval(failures))
    const since = Date.now()
    await busy.blpop(queue, seconds)
    clearInterval(failures)
    return { address: addressOf(busy), since }
  }

  t.test('a master silent for one PING begins no outage, however many searches other failures start meanwhile', async (t) => {
    const { node, pub, prefix } = await open(t)
    // twice: silent past one PING's timeout, answering before a second search commandTimeout
    // later; the second time shows the first suspicion was cleared, not kept to count later
    for (const round of [1, 2]) {
      await busyMaster(t, pub, prefix, (commandTimeout * 1.6) / 1000)
      await sleep(commandTimeout * 1.5)
      t.same(node.named(unreachable), [], `round ${round}: no outage`)
    }
    t.ok(node.lines.some((line) => /redis call failed/.test(line.msg)), 'failures were seen')
  })

  t.test('a master silent at two searches commandTimeout apart begins its outage', async (t) => {
    const { node, pub, prefix } = await open(t)
    const { address, since } = await busyMaster(t, pub, prefix, (commandTimeout * 3.5) / 1000)
    const began = node.named(unreachable)
    t.equal(began.length, 1, 'one outage')
    t.ok(began[0]?.shard?.startsWith(`${address} (slots `), `of that master: ${began[0]?.shard ?? ''}`)
    const after = (began[0]?.time ?? 0) - since
    t.ok(after >= commandTimeout * 1.9, `after two searches commandTimeout apart: ${after} ms`)
    await eventually(() => node.named(back).length === 1, 5000, 'the outage ends once it answers')
  })

  t.test('a search for the shards down that ends after close() began changes nothing', async (t) => {
    const { node, parts, pub, prefix } = await open(t)
    // after the engine's own listener: the search has begun when the node closes
    let closing: Promise<void> | undefined
    pub.once('-node', () => { closing = parts.close() })
    const [victim] = await target.masters()
    t.equal(await cut(victim, `${prefix}:pub`), 1)
    await eventually(() => closing !== undefined, 3000, 'the connection lost')
    await closing
    await sleep(commandTimeout + 300)
    t.same(node.lines.filter((line) => line.level >= 30), [], 'no outage logged after close()')
  })
})
