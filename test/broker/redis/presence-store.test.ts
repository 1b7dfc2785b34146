/**
 * The presence store's write steps (register, hashes, forget), on one Redis and on a Redis
 * Cluster. A write that fails halfway (one channel's hash cannot be written: a key of the wrong
 * type stands in for a crash between the steps) leaves every track it wrote registered, so the
 * reaper removes them all once the node is dead. On a cluster, where the steps are separate
 * MULTIs, a registration that fails stops the write before any hash, and a removal that fails
 * keeps the channel registered. (On one Redis the steps are one MULTI: a crash applies all or none.)
 */
import Fastify from 'fastify'
import type { Cluster } from 'ioredis'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { Link } from '../../../plugin/broker/redis/link.js'
import { PresenceStore, type PresenceWrite } from '../../../plugin/broker/redis/presence-store.js'
import { classicPubSub, shardedPubSub } from '../../../plugin/broker/redis/pubsub.js'
import { redisUrl, uniquePrefix } from '../../redis/helpers.js'
import { forEachTarget, type Target } from '../../redis/targets.js'

/** A store on a connection of its own, for a node `nodeId` that never wrote an alive key: dead to every reaper. */
async function storeOf (t: Test, target: Target, prefix: string, nodeId: string): Promise<PresenceStore> {
  const client = target.name === 'cluster' ? (target.admin as Cluster).duplicate() : new Redis(redisUrl, { lazyConnect: true })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  await client.connect()
  const node = { nodeId, log: Fastify().log, deliver () {}, hasSession: () => false }
  const pubsub = target.name === 'cluster' ? shardedPubSub : classicPubSub
  return new PresenceStore(new Link(client as Redis, 2000, () => {}), node, { keys: new RedisKeys(prefix), pubsub })
}

/** ann joins each channel, with ref r<i> */
function joins (channels: string[]): PresenceWrite {
  return { channels: new Map(channels.map((channel, i) => [channel, { joins: [{ ref: `r${i}`, key: 'ann', meta: '{}' }], leaves: [] }])), forget: [] }
}

// on a 3-master cluster these lie on three shards
const channels = ['room', 'race', 'h-room']

await forEachTarget(t, async (t, target) => {
  t.test('a write that fails at one channel: what it wrote is registered, and the reaper removes it all', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const dead = await storeOf(t, target, prefix, 'node-x')
    const reaper = await storeOf(t, target, prefix, 'node-y')
    await target.admin.set(names.presence('race'), 'not a hash')
    await t.rejects(dead.write(joins(channels)), /WRONGTYPE/)
    t.same((await target.admin.smembers(names.presenceNode('node-x'))).sort(), [...channels].sort(), 'every channel registered')
    t.same(await target.admin.smembers(names.presenceNodes), ['node-x'])
    t.same(await reaper.state('room'), [{ ref: 'r0', key: 'ann', meta: '{}' }], 'the channels that could be written were')
    t.same(await reaper.state('h-room'), [{ ref: 'r2', key: 'ann', meta: '{}' }])

    await target.admin.del(names.presence('race'))
    await reaper.reapDead()
    for (const channel of channels) t.same(await reaper.state(channel), [], `${channel}: reaped`)
    t.equal(await target.admin.exists(names.presenceNode('node-x')), 0, 'the dead node\'s registry is gone')
    t.same(await target.admin.smembers(names.presenceNodes), [])
  })

  t.test('leaves that empty a channel forget it; a clean stop unregisters the node', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix, 'node-x')
    await store.write(joins(channels))
    await store.write({ channels: new Map([['race', { joins: [], leaves: ['r1'] }]]), forget: ['race'] })
    t.same((await target.admin.smembers(names.presenceNode('node-x'))).sort(), ['h-room', 'room'])
    t.same(await store.state('race'), [])
    await store.write({ channels: new Map([['room', { joins: [], leaves: ['r0'] }], ['h-room', { joins: [], leaves: ['r2'] }]]), forget: [], unregister: true })
    t.equal(await target.admin.exists(names.presenceNode('node-x')), 0)
    t.same(await target.admin.smembers(names.presenceNodes), [])
    for (const channel of channels) t.same(await store.state(channel), [])
  })

  if (target.name !== 'cluster') return

  t.test('cluster: a registration that fails stops the write before any hash', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix, 'node-x')
    await target.admin.set(names.presenceNode('node-x'), 'not a set')
    await t.rejects(store.write(joins(channels)), /WRONGTYPE/)
    for (const channel of channels) t.same(await store.state(channel), [], `${channel}: nothing written`)
  })

  t.test('cluster: a removal that fails keeps its channel registered', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix, 'node-x')
    await store.write(joins(['room']))
    await target.admin.set(names.presence('race'), 'not a hash')
    const leaves: PresenceWrite = { channels: new Map([['room', { joins: [], leaves: ['r0'] }], ['race', { joins: [], leaves: ['r9'] }]]), forget: ['room', 'race'] }
    await t.rejects(store.write(leaves), /WRONGTYPE/)
    t.same(await store.state('room'), [], 'the hash that could be written was')
    t.same(await target.admin.smembers(names.presenceNode('node-x')), ['room'], 'but nothing was forgotten')
  })
})
