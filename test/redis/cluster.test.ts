/**
 * The Redis broker on a Redis Cluster, beyond what the suites run on both setups check: app
 * channels spread over the shards by their names (sharded pub/sub), every key of a node lies
 * in the node-wide slot, a publication to channels on three shards reaches a node holding all
 * of them once per publication however the copies interleave, and starting nodes logs no outage.
 */
import t, { type Test } from 'tap'
import { RedisKeys } from '../../plugin/broker/redis/keys.js'
import { keySlot } from '../../plugin/broker/redis/slot.js'
import type { Frame } from '../helpers/server.js'
import { capturedLogger, eventually, freePort, startNode, uniquePrefix, type LogLine } from './helpers.js'
import { collectAfterFence, connect, isGot, startNodes } from './nodes.js'
import { socketMethods } from './fixtures/methods.js'
import { clusterClient, shardsOf, type Shard } from './cluster-server.js'
import { withCluster, type Target } from './targets.js'

const data = (frames: Frame[]): unknown[] => frames.map((frame) => frame.data)

async function slotOwners (target: Target): Promise<Shard[]> {
  const [any] = await target.masters()
  return await shardsOf(any)
}

t.test('a cluster that cannot be reached fails the registration within commandTimeout', async (t) => {
  const unreachable = clusterClient(t, [{ host: '127.0.0.1', port: await freePort() }])
  const started = Date.now()
  await t.rejects(startNode(t, { redis: unreachable, prefix: uniquePrefix(), commandTimeout: 500 }), /cannot connect to redis: not ready within 500 ms/)
  t.ok(Date.now() - started < 10000, 'promptly (no hanging on a cluster that never answers)')
})

await withCluster(t, async (target) => {
  const keysOf = (prefix: string): RedisKeys => new RedisKeys(prefix)

  t.test('a node\'s channels spread over the shards: SSUBSCRIBE on the master owning each name, SUNSUBSCRIBE after', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [node] = await startNodes(t, 1, { ...target.broker, prefix })
    const names = Array.from({ length: 30 }, (_, i) => `room-${i}`)
    const client = await connect(t, node, names)
    const perMaster: Array<{ port: number, channels: string[] }> = []
    for (const master of await target.masters()) {
      perMaster.push({ port: master.options.port ?? 0, channels: await master.pubsub('SHARDCHANNELS', `${prefix}:ch:*`) as string[] })
    }
    const all = perMaster.flatMap(({ channels }) => channels).sort()
    t.same(all, names.map((name) => keysOf(prefix).channel(name)).sort(), 'each channel subscribed once, on one shard')
    t.ok(perMaster.filter(({ channels }) => channels.length > 0).length >= 2,
      `spread over at least two shards: ${perMaster.map(({ port, channels }) => `${port}:${channels.length}`).join(' ')}`)
    const owners = await slotOwners(target)
    for (const { port, channels } of perMaster) {
      const ranges = owners.find((owner) => owner.port === port)?.ranges ?? []
      t.ok(channels.every((channel) => ranges.some(([from, to]) => keySlot(channel) >= from && keySlot(channel) <= to)),
        `the shard on ${port} holds only channels of its slots`)
    }
    const classic = await Promise.all((await target.masters()).map(async (master) => await master.pubsub('CHANNELS', `*${prefix}*`) as string[]))
    t.same(classic.flat(), [], 'no classic pub/sub channel: it would cross the cluster bus to every node')

    client.close()
    await eventually(async () => {
      const left = await Promise.all((await target.masters()).map(async (master) => await master.pubsub('SHARDCHANNELS', `${prefix}:ch:*`) as string[]))
      return left.flat().length === 0
    }, 5000, 'SUNSUBSCRIBE on every shard once the last subscriber left')
  })

  t.test('every node-wide key lies in the {prefix} slot', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const [a, b] = await startNodes(t, 2, { ...target.broker, prefix })
    await connect(t, a)
    const onB = await connect(t, b)
    await a.app.send(onB.sessionId, 'registered', { event: 'got' }) // both registrations are in
    t.same(data([await onB.next(isGot, 5000)]), ['registered'])
    const keys = await target.keys(`{${prefix}}:*`)
    t.ok(keys.length >= 5, `nodes, alive and sessions keys: ${keys.join(' ')}`)
    const [any] = await target.masters()
    const slots = new Set(await Promise.all(keys.map(async (key) => await any.cluster('KEYSLOT', key))))
    t.same([...slots], [keySlot(`{${prefix}}`)], 'one slot')
  })

  /** One channel name per shard (three): the first of x0, x1, … whose slot that shard serves. */
  async function channelPerShard (t: Test, prefix: string): Promise<string[]> {
    const owners = await slotOwners(target)
    t.ok(owners.length >= 3, 'three shards')
    return owners.slice(0, 3).map(({ ranges }) => {
      for (let i = 0; ; i++) {
        const slot = keySlot(keysOf(prefix).channel(`x${i}`))
        if (ranges.some(([from, to]) => slot >= from && slot <= to)) return `x${i}`
      }
    })
  }

  t.test('the first publications of a node that just started reach every shard in order', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const channels = await channelPerShard(t, prefix)
    const [receiver] = await startNodes(t, 1, { ...target.broker, prefix })
    const sockets = await Promise.all(channels.map(async (channel) => await connect(t, receiver, [channel])))
    // a fresh node: its client has not sent a command to two of the three shards yet
    const [sender] = await startNodes(t, 1, { ...target.broker, prefix })
    const sent: Array<Promise<void>> = []
    for (let i = 0; i < 50; i++) {
      for (const channel of channels) sent.push(sender.app.broadcastChannel(channel, i, { event: 'got' }))
      await new Promise((resolve) => setImmediate(resolve)) // one turn each: one script call per shard each
    }
    await Promise.all(sent)
    const expected = Array.from({ length: 50 }, (_, i) => i)
    t.same((await collectAfterFence(sender, sockets)).map(data), channels.map(() => expected), 'each channel in order from its first publication')
  })

  t.test('a publication to channels on three shards reaches each socket once, 200 times over', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const channels = await channelPerShard(t, prefix)
    const [a, b] = await startNodes(t, 2, { ...target.broker, prefix })
    const sender = await connect(t, a, channels)
    const all = await connect(t, b, [...channels].reverse())
    const one = await connect(t, b, [channels[1]])
    for (let i = 0; i < 200; i++) sender.send({ type: 'message', event: 'broadcastChannel', data: i })
    const expected = Array.from({ length: 200 }, (_, i) => i)
    const got = await collectAfterFence(a, [all, one])
    t.same(got.map(data), [expected, expected], 'each publication once, in order')
    t.same(got[0].map((frame) => frame.channel), expected.map(() => channels[0]), 'named after the first channel the socket holds in the sender\'s order')
  })

  t.test('starting nodes on a cluster logs no outage', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const lines: LogLine[] = []
    const node = await startNode(t, { ...target.broker, prefix, nodeTtl: 1000 }, socketMethods, {}, capturedLogger(lines))
    await connect(t, node, ['a', 'b', 'c'])
    await new Promise((resolve) => setTimeout(resolve, 1500)) // a few ticks
    t.same(lines.filter((line) => line.level >= 40).map((line) => line.msg), [], 'no warning or error')
  })
})
