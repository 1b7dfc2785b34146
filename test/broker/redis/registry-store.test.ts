/**
 * The Redis session registry driven directly (no node, no socket), on one Redis and on a Redis
 * Cluster: what a registration writes (the alive key, the session set in chunks, the node set,
 * with their TTLs) and the clock it reads; a refresh extends only what still exists and tells
 * `onLost` when it fails; sessions added and removed; a route to the node holding a session
 * (sent, none, late, not listening, failed), counting each send dropped; which nodes are alive;
 * an unregistration.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisClock } from '../../../plugin/broker/redis/clock.js'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { Link } from '../../../plugin/broker/redis/link.js'
import { RedisRegistry, sessionsTtlFactor } from '../../../plugin/broker/redis/registry-store.js'
import { eventually, redisUrl, uniquePrefix } from '../../redis/helpers.js'
import { forEachTarget, type Target } from '../../redis/targets.js'
import { measuredClock, pubSubOf, scriptedConnection } from './scripted-connection.js'
import { shardOf } from '../../history/slots.js'

const ttl = 1000

interface Registry {
  registry: RedisRegistry
  clock: RedisClock
  lost: unknown[]
  dropped: () => number
}

/** A registry of `nodeId` on a connection of its own; its clock unmeasured unless `measured`. */
async function registryOf (t: Test, target: Target, prefix: string, nodeId: string, { budget = 2000, measured = false } = {}): Promise<Registry> {
  const redis = await scriptedConnection(t, target)
  const clock = measured ? await measuredClock(redis) : new RedisClock()
  const lost: unknown[] = []
  let dropped = 0
  const registry = new RedisRegistry(new Link(redis, 2000, () => {}), {
    keys: new RedisKeys(prefix),
    pubsub: pubSubOf(target),
    clock,
    nodeId,
    ttl,
    budget,
    onLost: (err) => { lost.push(err) },
    onDropped: () => { dropped++ }
  })
  return { registry, clock, lost, dropped: () => dropped }
}

/** Redis' time now, in ms. */
async function redisNow (target: Target): Promise<number> {
  const [seconds, micros] = await target.admin.time()
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
}

/** A connection that hears what is published on `name` (SSUBSCRIBE at the master of its slot on a cluster). */
async function listen (t: Test, target: Target, name: string): Promise<{ heard: string[], stop: () => Promise<void> }> {
  const heard: string[] = []
  if (target.name === 'cluster') {
    const listener = new Redis(await shardOf(target.admin, name), '127.0.0.1')
    t.teardown(() => { listener.disconnect() })
    listener.on('smessage', (_channel: string, text: string) => heard.push(text))
    await listener.ssubscribe(name)
    return { heard, stop: async () => { await listener.sunsubscribe(name) } }
  }
  const listener = new Redis(redisUrl)
  t.teardown(() => { listener.disconnect() })
  listener.on('message', (_channel: string, text: string) => heard.push(text))
  await listener.subscribe(name)
  return { heard, stop: async () => { await listener.unsubscribe(name) } }
}

/** What `promise` rejects with (undefined when it resolves). */
async function failure (promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (err: unknown) => err)
}

await forEachTarget(t, async (t, target) => {
  t.test('a registration writes the alive key, the session set (in chunks) and the node set, and reads Redis\' clock', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const keys = new RedisKeys(prefix)
    const { registry, clock } = await registryOf(t, target, prefix, 'node-a')
    t.equal(registry.ttl, ttl)
    t.equal(clock.deadline(0), 0, 'the clock is not measured yet')
    const sessions = Array.from({ length: 2000 }, (_, i) => `s${i}`)
    await registry.register(sessions)
    const deadline = clock.deadline(0)
    t.ok(Math.abs(deadline - await redisNow(target)) < 1000, `the clock measured by the registration (${deadline})`)
    t.same((await target.admin.smembers(keys.sessions('node-a'))).sort(), [...sessions].sort(), 'every session, over two chunks')
    t.equal(await target.admin.get(keys.alive('node-a')), '1')
    const aliveTtl = await target.admin.pttl(keys.alive('node-a'))
    t.ok(aliveTtl > ttl - 300 && aliveTtl <= ttl, `the alive key expires after the TTL (${aliveTtl})`)
    const sessionsTtl = await target.admin.pttl(keys.sessions('node-a'))
    t.ok(sessionsTtl > (sessionsTtlFactor - 1) * ttl && sessionsTtl <= sessionsTtlFactor * ttl, `the session set ${sessionsTtlFactor} times later (${sessionsTtl})`)
    t.same(await target.admin.smembers(keys.nodes), ['node-a'])

    await registry.register(['t1', 't2', 't3'])
    t.same((await target.admin.smembers(keys.sessions('node-a'))).sort(), ['t1', 't2', 't3'], 'a registration replaces the session set')
    await registry.register([])
    t.equal(await target.admin.exists(keys.sessions('node-a')), 0, 'no sessions: no set')
    t.equal(await target.admin.exists(keys.alive('node-a')), 1)
    t.same(await target.admin.smembers(keys.nodes), ['node-a'])
  })

  t.test('a refresh extends only what still exists, reads the clock, and tells onLost when it fails', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const keys = new RedisKeys(prefix)
    const { registry, clock, lost } = await registryOf(t, target, prefix, 'node-a')
    t.equal(await registry.refresh(false), false, 'never registered')
    t.ok(clock.deadline(0) > 0, 'the clock measured by the refresh')
    t.equal(await target.admin.exists(keys.alive('node-a')), 0, 'and nothing revived')
    await registry.register(['s'])
    await target.admin.pexpire(keys.alive('node-a'), 50)
    await target.admin.pexpire(keys.sessions('node-a'), 50)
    await target.admin.srem(keys.nodes, 'node-a')
    t.equal(await registry.refresh(true), true)
    t.ok(await target.admin.pttl(keys.alive('node-a')) > ttl - 300, 'the alive key extended by the TTL')
    t.ok(await target.admin.pttl(keys.sessions('node-a')) > (sessionsTtlFactor - 1) * ttl, 'the session set by its own TTL')
    t.same(await target.admin.smembers(keys.nodes), ['node-a'], 'the node set again')
    await target.admin.del(keys.sessions('node-a'))
    t.equal(await registry.refresh(true), false, 'a node that holds sessions whose set is gone')
    t.equal(await registry.refresh(false), true, 'one that holds none needs no set')
    t.equal(await target.admin.exists(keys.sessions('node-a')), 0)
    t.same(lost, [], 'onLost told nothing so far')

    await target.admin.del(keys.nodes)
    await target.admin.set(keys.nodes, 'not a set')
    const err = await failure(registry.refresh(false))
    t.match(err, { message: /WRONGTYPE/ }, 'the failure rejects the refresh')
    t.same(lost, [err], 'and onLost is told it')
  })

  t.test('sessions added and removed', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const keys = new RedisKeys(prefix)
    const { registry } = await registryOf(t, target, prefix, 'node-a')
    await registry.add('s1')
    await registry.add('s2')
    t.same((await target.admin.smembers(keys.sessions('node-a'))).sort(), ['s1', 's2'])
    t.ok(await target.admin.pttl(keys.sessions('node-a')) > (sessionsTtlFactor - 1) * ttl, 'with the session set\'s TTL')
    await registry.remove('s1')
    t.same(await target.admin.smembers(keys.sessions('node-a')), ['s2'])
    await registry.remove('s2')
    t.equal(await target.admin.exists(keys.sessions('node-a')), 0)
  })

  t.test('adds and removes of one turn are one transaction; a session closed before its batch is never written', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const keys = new RedisKeys(prefix)
    const { registry } = await registryOf(t, target, prefix, 'node-a')
    await Promise.all([registry.add('s1'), registry.add('s2')])
    const link = (registry as unknown as { link: Link }).link
    const run = link.run.bind(link)
    let calls = 0
    link.run = async (...args) => { calls++; return await run(...args) }
    const many = Array.from({ length: 2500 }, (_, i) => `m${i}`)
    // one turn: the adds of 2,500 sessions (three chunks), a close of one of them and of s1, a connect and close of s3
    await Promise.all([
      ...many.map(async (id) => { await registry.add(id) }),
      registry.remove('m7'),
      registry.remove('s1'),
      registry.add('s3'),
      registry.remove('s3')
    ])
    t.equal(calls, 1, 'one round trip for the whole turn')
    const members = new Set(await target.admin.smembers(keys.sessions('node-a')))
    t.equal(members.size, 2500, 's2 and 2,499 of the new ones')
    t.ok(members.has('s2') && members.has('m0') && members.has('m2499'))
    t.notOk(members.has('m7') || members.has('s1') || members.has('s3'), 'the closed ones are gone, s3 never written')
    t.ok(await target.admin.pttl(keys.sessions('node-a')) > (sessionsTtlFactor - 1) * ttl, 'the set\'s TTL renewed by the adds')

    await target.admin.del(keys.sessions('node-a'))
    await target.admin.set(keys.sessions('node-a'), 'not a set')
    const outcomes = await Promise.allSettled([registry.add('x1'), registry.remove('x2')])
    t.match(outcomes, [{ status: 'rejected', reason: { message: /WRONGTYPE/ } }, { status: 'rejected', reason: { message: /WRONGTYPE/ } }],
      'a failed batch fails every call in it')
    t.equal(calls, 2)
  })

  t.test('a route finds the node holding a session and publishes on its channel; late, unheard and failed sends', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const keys = new RedisKeys(prefix)
    const a = await registryOf(t, target, prefix, 'node-a', { measured: true })
    const b = await registryOf(t, target, prefix, 'node-b')
    await a.registry.register(['sa'])
    await b.registry.register(['sb'])
    const onB = await listen(t, target, keys.direct('node-b'))
    t.equal(await a.registry.route('sb', 'to b'), true, 'sent')
    t.equal(await a.registry.route('nobody', 'x'), false, 'no node holds it')
    t.equal(await a.registry.route('sa', 'x'), false, 'the asking node is not asked (it checked its own sockets)')
    await eventually(() => onB.heard.length === 1, 2000, 'node b heard the send')
    t.same(onB.heard, ['to b'])
    t.equal(a.dropped(), 0)

    const late = await registryOf(t, target, prefix, 'node-l', { budget: -1000, measured: true })
    t.match(await failure(late.registry.route('sb', 'late')), { message: 'redis got the send after its deadline: not delivered' })
    t.equal(late.dropped(), 1, 'a late send is counted dropped')

    await onB.stop()
    t.match(await failure(a.registry.route('sb', 'unheard')), { message: 'the node holding the session is not connected to redis' })
    t.equal(a.dropped(), 0, 'not a drop: Redis had it in time')
    t.same(await a.registry.alive(['node-a', 'node-b', 'node-z']), [true, true, false])

    await target.admin.del(keys.nodes)
    await target.admin.set(keys.nodes, 'not a set')
    t.match(await failure(a.registry.route('sb', 'x')), { message: /WRONGTYPE/ })
    t.equal(a.dropped(), 1, 'a send that failed is counted dropped')
    t.same(onB.heard, ['to b'], 'nothing else was published')
  })

  t.test('an unregistration removes the node\'s keys and its id', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const keys = new RedisKeys(prefix)
    const a = await registryOf(t, target, prefix, 'node-a')
    const b = await registryOf(t, target, prefix, 'node-b')
    await a.registry.register(['sa'])
    await b.registry.register(['sb'])
    await a.registry.unregister()
    t.equal(await target.admin.exists(keys.alive('node-a')), 0)
    t.equal(await target.admin.exists(keys.sessions('node-a')), 0)
    t.same(await target.admin.smembers(keys.nodes), ['node-b'])
    t.same(await a.registry.alive(['node-a', 'node-b']), [false, true])
    t.equal(await b.registry.route('sa', 'x'), false)
  })
})
