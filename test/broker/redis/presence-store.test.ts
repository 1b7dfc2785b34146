/**
 * The Redis presence store's write steps (register, hashes, forget), on one Redis and on a
 * Redis Cluster. A write that fails halfway (one channel's hash cannot be written: a key of the
 * wrong type stands in for a crash between the steps) leaves every track it wrote registered,
 * so a reap removes them all once the node is dead, each leave published once. On a cluster,
 * where the steps are separate MULTIs, a registration that fails stops the write before any
 * hash, and a removal that fails keeps the channel registered. (On one Redis the steps are one
 * MULTI: a crash applies all or none.)
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { encodePresence, presenceLeavesHead } from '../../../plugin/broker/envelope.js'
import type { PresenceChannelWrite, PresenceWrite } from '../../../plugin/broker/parts.js'
import type { PresenceChanges } from '../../../plugin/broker/types.js'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { Link } from '../../../plugin/broker/redis/link.js'
import { RedisPresenceStore } from '../../../plugin/broker/redis/presence-store.js'
import { eventually, redisUrl, uniquePrefix } from '../../redis/helpers.js'
import { forEachTarget, type Target } from '../../redis/targets.js'
import { pubSubOf, scriptedConnection } from './scripted-connection.js'

/** A store on a connection of its own, for a node `nodeId` that never wrote an alive key: dead to every reaper. */
async function storeOf (t: Test, target: Target, prefix: string, nodeId: string): Promise<RedisPresenceStore> {
  const redis = await scriptedConnection(t, target)
  return new RedisPresenceStore(new Link(redis, 2000, () => {}), nodeId, new RedisKeys(prefix), pubSubOf(target))
}

/** What the core hands the store for one channel's change of `nodeId`. */
function change (nodeId: string, channel: string, changes: PresenceChanges): PresenceChannelWrite {
  return { ...changes, envelope: encodePresence(nodeId, channel, changes) }
}

/** ann (on node-x) joins each channel, with ref r<i> */
function joins (channels: string[]): PresenceWrite {
  return { channels: new Map(channels.map((channel, i) => [channel, change('node-x', channel, { joins: [{ ref: `r${i}`, key: 'ann', meta: '{}' }], leaves: [] })])), forget: [] }
}

const leavesHead = (channel: string): string => presenceLeavesHead('node-x', channel)

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
    t.same(await reaper.list('room'), [{ ref: 'r0', key: 'ann', meta: '{}' }], 'the channels that could be written were')
    t.same(await reaper.list('h-room'), [{ ref: 'r2', key: 'ann', meta: '{}' }])

    await target.admin.del(names.presence('race'))
    const heard: string[] = []
    if (target.name === 'redis') {
      const listener = new Redis(redisUrl)
      t.teardown(() => { listener.disconnect() })
      listener.on('message', (_channel: string, text: string) => heard.push(text))
      await listener.subscribe(...channels.map((channel) => names.channel(channel)))
    }
    t.same(await reaper.nodes(), ['node-x'])
    t.equal(await reaper.reap('node-x', leavesHead), 2, 'the two tracks that were written')
    t.equal(await reaper.reap('node-x', leavesHead), 0, 'a second reaper finds nothing')
    if (target.name === 'redis') {
      await target.admin.publish(names.channel('room'), 'fence')
      await eventually(() => heard.includes('fence'), 2000, 'the fence arrived')
      // the channels in the order of the dead node's registry (a set): any
      t.same(heard.slice(0, -1).sort(), [`${leavesHead('room')}r0`, `${leavesHead('h-room')}r2`].sort(), 'each leave published once, with its channel\'s removal')
      t.equal(heard.at(-1), 'fence', 'nothing more')
    }
    for (const channel of channels) t.same(await reaper.list(channel), [], `${channel}: reaped`)
    t.equal(await target.admin.exists(names.presenceNode('node-x')), 0, 'the dead node\'s registry is gone')
    t.same(await target.admin.smembers(names.presenceNodes), [])
  })

  t.test('leaves that empty a channel forget it; a clean stop unregisters the node', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix, 'node-x')
    await store.write(joins(channels))
    await store.write({ channels: new Map([['race', change('node-x', 'race', { joins: [], leaves: ['r1'] })]]), forget: ['race'] })
    t.same((await target.admin.smembers(names.presenceNode('node-x'))).sort(), ['h-room', 'room'])
    t.same(await store.list('race'), [])
    await store.write({
      channels: new Map([['room', change('node-x', 'room', { joins: [], leaves: ['r0'] })], ['h-room', change('node-x', 'h-room', { joins: [], leaves: ['r2'] })]]),
      forget: [],
      unregister: true
    })
    t.equal(await target.admin.exists(names.presenceNode('node-x')), 0)
    t.same(await target.admin.smembers(names.presenceNodes), [])
    for (const channel of channels) t.same(await store.list(channel), [])
  })

  if (target.name !== 'cluster') return

  t.test('cluster: a registration that fails stops the write before any hash', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix, 'node-x')
    await target.admin.set(names.presenceNode('node-x'), 'not a set')
    await t.rejects(store.write(joins(channels)), /WRONGTYPE/)
    for (const channel of channels) t.same(await store.list(channel), [], `${channel}: nothing written`)
  })

  t.test('cluster: a removal that fails keeps its channel registered', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix, 'node-x')
    await store.write(joins(['room']))
    await target.admin.set(names.presence('race'), 'not a hash')
    const leaves: PresenceWrite = {
      channels: new Map([['room', change('node-x', 'room', { joins: [], leaves: ['r0'] })], ['race', change('node-x', 'race', { joins: [], leaves: ['r9'] })]]),
      forget: ['room', 'race']
    }
    await t.rejects(store.write(leaves), /WRONGTYPE/)
    t.same(await store.list('room'), [], 'the hash that could be written was')
    t.same(await target.admin.smembers(names.presenceNode('node-x')), ['room'], 'but nothing was forgotten')
  })
})

await forEachTarget(t, async (t, target) => {
  t.test('a hash field this version did not write is left out of the list, and the rest read', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix, 'node-y')
    await target.admin.hset(names.presence('room'),
      'good', 'node-x\n"ann"\n{"a":1}',
      'short-node', 'x\n"bob"\n{}',
      'no-newline', 'no newline',
      'one-newline', 'node-x\n123',
      'bad-key', 'node-x\n{bad\n{}')
    const list = (await store.list('room')).sort((a, b) => a.ref.localeCompare(b.ref))
    t.same(list, [{ ref: 'good', key: 'ann', meta: '{"a":1}' }, { ref: 'short-node', key: 'bob', meta: '{}' }])
  })
})
