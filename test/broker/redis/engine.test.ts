/**
 * The Redis engine on its own (engine.ts, and broker.ts that makes it), driven with a stand-in
 * node (EngineNode: a log, received envelopes, restores) against the real Redis and the
 * cluster: the parts it hands out, what fails the start, the outage it begins when a
 * connection of its own is cut (CLIENT KILL) and the recovery that ends it, the tick, and
 * close(). Fast: no Fastify app, no child process.
 */
import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import { BrokerUnreachableError } from '../../../plugin/errors.js'
import type { EngineParts } from '../../../plugin/broker/parts.js'
import { defaultCommandTimeout, defaultNodeTtl, defaultRedisPrefix, redisEngine, type RedisBrokerOptions } from '../../../plugin/broker/redis/broker.js'
import { clientOptions } from '../../../plugin/broker/redis/client.js'
import { RedisEngine, type EngineSettings } from '../../../plugin/broker/redis/engine.js'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { classicPubSub } from '../../../plugin/broker/redis/pubsub.js'
import { deleteKeys, eventually, freePort, redisUrl, uniquePrefix, withRedis } from '../../redis/helpers.js'
import { withCluster } from '../../redis/targets.js'
import { shardsOf } from '../../redis/cluster-server.js'
import { keySlot } from '../../../plugin/broker/redis/slot.js'

import { StandInEngineNode, back, cut, clientIds, sleep, stillUnreachable, unreachable } from './stand-in-node.js'

const endedForGood = /ended for good/
const dropped = /publications to redis dropped/
const callFailed = /redis call failed/

/**
 * How many ms past the moment Redis ran it the deadline of a publication of `parts` lies (its
 * script call seen with MONITOR, on a socket of its own: ioredis' monitor() trips over the
 * replies of a busy server). The clock must have been measured (a registration).
 */
async function deadlineAhead (t: Test, parts: EngineParts, prefix: string): Promise<number> {
  const channel = new RedisKeys(prefix).channel('room')
  const seen: Array<{ at: number, deadline: number }> = []
  const url = new URL(redisUrl)
  const monitor = connect(url.port === '' ? 6379 : Number(url.port), url.hostname)
  t.teardown(() => monitor.destroy())
  let text = ''
  let on = false
  monitor.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
    const lines = text.split('\r\n')
    text = lines.pop() ?? ''
    for (const line of lines) {
      if (line === '+OK') on = true
      // "eval" "<script>" or "evalsha" "<sha>", then "1" "<channel>" "<deadline>"
      const call = `"1" "${channel}" "`
      const at = line.indexOf(call)
      if (at === -1 || !/^\+\d+\.\d+ \[\S+ \S+\] "eval/i.test(line)) continue
      seen.push({ at: Number(line.slice(1, line.indexOf(' '))) * 1000, deadline: Number.parseInt(line.slice(at + call.length), 10) })
    }
  })
  monitor.write('MONITOR\r\n')
  await eventually(() => on, 2000, 'MONITOR on')
  await parts.transport.publish([{ kind: 'channel', channel: 'room' }], 'x')
  await eventually(() => seen.length === 1, 2000, 'the publication seen by MONITOR')
  monitor.destroy()
  return seen[0].deadline - seen[0].at
}

await withRedis(t, async () => {
  const admin = new Redis(redisUrl)
  t.teardown(() => admin.disconnect())
  const address = (() => { const { hostname, port } = new URL(redisUrl); return `${hostname}:${port === '' ? '6379' : port}` })()

  /** An engine on two connections of the test's own (named `<prefix>:pub` and `:sub`), opened directly. */
  async function openEngine (
    t: Test, settings: Partial<EngineSettings> = {}, options: RedisOptions = {}, own: { pub?: RedisOptions, sub?: RedisOptions } = {}
  ): Promise<{ node: StandInEngineNode, parts: EngineParts, prefix: string, pub: Redis, sub: Redis }> {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const node = new StandInEngineNode()
    const pub = new Redis(redisUrl, { ...clientOptions(), connectionName: `${prefix}:pub`, ...options, ...own.pub })
    const sub = new Redis(redisUrl, { ...clientOptions(), connectionName: `${prefix}:sub`, ...options, ...own.sub })
    const parts = await RedisEngine.open(node, pub, sub, { prefix, nodeTtl: 3000, commandTimeout: 2000, pubsub: classicPubSub, ...settings })
    t.teardown(() => parts.close())
    return { node, parts, prefix, pub, sub }
  }

  t.test('redisEngine(): options checked when it is made, each refusal naming the option', async (t) => {
    const refused: Array<[unknown, RegExp]> = [
      [null, /^fastify-channels: invalid option redisBroker: expected an options object$/],
      ['redis://x', /^fastify-channels: invalid option redisBroker: expected an options object$/],
      [{ color: 'red' }, /^fastify-channels: invalid option redisBroker color: unknown option$/],
      [{ url: '' }, /^fastify-channels: invalid option redisBroker url: expected a redis:\/\/ URL$/],
      [{ url: 6379 }, /^fastify-channels: invalid option redisBroker url: expected a redis:\/\/ URL$/],
      [{ redis: {} }, /^fastify-channels: invalid option redisBroker redis: expected an ioredis client \(with duplicate\(\)\)$/],
      [{ redis: { duplicate: 'no' } }, /^fastify-channels: invalid option redisBroker redis: expected an ioredis client/],
      [{ prefix: '' }, /^fastify-channels: invalid option redisBroker prefix: expected 1-100 characters without white space$/],
      [{ prefix: 'a b' }, /^fastify-channels: invalid option redisBroker prefix: /],
      [{ prefix: ' ab' }, /^fastify-channels: invalid option redisBroker prefix: /],
      [{ prefix: 'ab\t' }, /^fastify-channels: invalid option redisBroker prefix: /],
      [{ prefix: 'x'.repeat(101) }, /^fastify-channels: invalid option redisBroker prefix: /],
      [{ prefix: 7 }, /^fastify-channels: invalid option redisBroker prefix: /],
      [{ nodeTtl: 999 }, /^fastify-channels: invalid option redisBroker nodeTtl: at least 1000 ms, got 999$/],
      [{ nodeTtl: 0 }, /^fastify-channels: invalid option redisBroker nodeTtl: expected a positive integer/],
      [{ commandTimeout: 1.5 }, /^fastify-channels: invalid option redisBroker commandTimeout: expected a positive integer/]
    ]
    for (const [options, message] of refused) {
      t.throws(() => redisEngine(options as RedisBrokerOptions), { code: 'FST_CHANNELS_INVALID_OPTION', message }, JSON.stringify(options))
    }
    for (const options of [{}, { prefix: 'x'.repeat(100) }, { prefix: 'a' }, { nodeTtl: 1000 }, { redis: { duplicate: () => {} } }, { url: undefined }]) {
      t.doesNotThrow(() => redisEngine(options), JSON.stringify(options))
    }
    t.equal(redisEngine().name, 'redis')
    t.equal(defaultRedisPrefix, 'fastify-channels')
  })

  t.test('redisEngine(): the defaults, named connections (pub, and sub the subscriber), classic pub/sub on one Redis', async (t) => {
    const node = new StandInEngineNode()
    const parts = await redisEngine().connect(node)
    t.teardown(() => parts.close())
    t.equal(parts.registry.ttl, defaultNodeTtl, 'nodeTtl')
    await parts.registry.register([])
    t.teardown(async () => { await parts.registry.unregister() })
    t.equal(await admin.exists(new RedisKeys(defaultRedisPrefix).alive(node.nodeId)), 1, 'the default prefix, on the default url')
    await parts.transport.subscribe([{ kind: 'node', nodeId: node.nodeId }])
    const list = (await admin.client('LIST') as string).split('\n')
    const line = (name: string): string => list.find((line) => line.includes(` name=${defaultRedisPrefix}:${node.nodeId}:${name} `)) ?? ''
    t.match(line('pub'), / sub=0 /, 'the publisher')
    t.match(line('sub'), / sub=1 /, 'the subscriber')
    parts.start?.()
    await admin.publish(new RedisKeys(defaultRedisPrefix).direct(node.nodeId), 'hello')
    await eventually(() => node.received.length === 1, 2000, 'received')
    const ahead = await deadlineAhead(t, parts, defaultRedisPrefix)
    t.ok(ahead > defaultCommandTimeout / 4 && ahead <= defaultCommandTimeout / 2 + 2, `half the default command timeout: ${ahead}`)
  })

  t.test('redisEngine(): a client passed in is duplicated with our options (its key prefix dropped), and left open', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const mine = new Redis(redisUrl, { keyPrefix: 'mine:', connectionName: 'mine' })
    t.teardown(() => mine.disconnect())
    const node = new StandInEngineNode()
    const parts = await redisEngine({ redis: mine, prefix, url: 'redis://127.0.0.1:1' }).connect(node)
    await parts.registry.register([])
    t.equal(await admin.exists(new RedisKeys(prefix).alive(node.nodeId)), 1, 'no key prefix')
    t.equal((await clientIds(admin, `${prefix}:${node.nodeId}:pub`)).length, 1)
    t.equal((await clientIds(admin, `${prefix}:${node.nodeId}:sub`)).length, 1)
    await parts.close()
    t.equal(await mine.ping(), 'PONG', 'still open')
  })

  t.test('the parts: a registry with the node TTL, history, presence; envelopes reach the node once it started', async (t) => {
    const { node, parts, prefix } = await openEngine(t, { nodeTtl: 4321 })
    const keys = new RedisKeys(prefix)
    t.equal(parts.registry.ttl, 4321)
    t.ok(parts.history !== undefined && parts.presence !== undefined, 'history and presence stores')
    await parts.registry.register(['s1'])
    const ttl = await admin.pttl(keys.alive(node.nodeId))
    t.ok(ttl > 3000 && ttl <= 4321, `the alive key lives nodeTtl: ${ttl}`)
    await parts.transport.subscribe([{ kind: 'node', nodeId: node.nodeId }])
    await admin.publish(keys.direct(node.nodeId), 'before start')
    await sleep(50)
    t.same(node.received, [], 'nothing is handed over before start()')
    parts.start?.()
    await admin.publish(keys.direct(node.nodeId), 'hello')
    await eventually(() => node.received.length === 1, 2000, 'the envelope arrives')
    t.same(node.received, ['hello'], 'the envelope as it was published')
    t.same(node.lines.filter((line) => line.level >= 30), [], 'nothing logged')
  })

  t.test('a publication may reach Redis up to half the command timeout after it was made', async (t) => {
    const { node, parts, prefix } = await openEngine(t, { commandTimeout: 3000 })
    parts.start?.()
    await parts.registry.register([]) // the clock is measured here
    const ahead = await deadlineAhead(t, parts, prefix)
    t.ok(ahead > 1000 && ahead <= 1502, `the deadline is about 1500 ms past the moment Redis ran it: ${ahead}`)
    t.equal(node.received.length, 0)
  })

  t.test('open() fails when a connection cannot be made: a coded error, both connections ended', async (t) => {
    const port = await freePort()
    const pub = new Redis(`redis://127.0.0.1:${port}`, clientOptions())
    const sub = new Redis(redisUrl, clientOptions())
    pub.on('error', () => {})
    const node = new StandInEngineNode()
    const err = await RedisEngine.open(node, pub, sub, { prefix: uniquePrefix(), nodeTtl: 3000, commandTimeout: 500, pubsub: classicPubSub }).catch((err: unknown) => err)
    t.ok(err instanceof BrokerUnreachableError)
    t.match(err, { code: 'FST_CHANNELS_BROKER_UNREACHABLE', message: /^fastify-channels: cannot connect to redis: .*ECONNREFUSED/ })
    t.match((err as Error).cause, { code: 'ECONNREFUSED' }, 'the cause kept')
    await sleep(100)
    t.equal(pub.status, 'end', 'the failed connection does not retry')
    t.equal(sub.status, 'end', 'the other one is closed too')
  })

  t.test('a connection cut after start begins one outage of the Redis; the recovery restores and ends it', async (t) => {
    const { node, parts, prefix } = await openEngine(t)
    parts.start?.()
    for (const [round, which] of ['pub', 'sub'].entries()) {
      t.equal(await cut(admin, `${prefix}:${which}`), 1, `the ${which} connection cut`)
      await eventually(() => node.named(back).length === round + 1, 5000, `back after the ${which} connection was cut`)
      const warn = node.named(unreachable)
      t.equal(warn.length, round + 1, 'one outage line')
      t.match(warn[round], { level: 40, shard: address, err: { message: `redis connection ${prefix}:${which} closed` } })
      t.match(node.named(back)[round], { level: 30, shard: address, channels: 3, sessions: 2, dropped: 0 })
      t.equal(node.restores, round + 1, 'restored once')
    }
    t.same(node.named(endedForGood), [], 'reconnected: not ended')
  })

  t.test('nothing is an outage before start() or once close() began; close() ends both connections, once', async (t) => {
    const { node, parts, prefix, pub } = await openEngine(t)
    const closed = new Promise((resolve) => pub.once('close', resolve))
    t.equal(await cut(admin, `${prefix}:pub`), 1)
    await closed
    await eventually(() => pub.status === 'ready', 3000, 'reconnected')
    parts.start?.()
    await sleep(50)
    t.equal(node.restores, 0, 'a connection made again before start() restores nothing')
    t.same(node.lines.filter((line) => line.level >= 30), [], 'and is no outage')
    await parts.close()
    await parts.close()
    t.same(await clientIds(admin, `${prefix}:pub`), [], 'pub closed')
    t.same(await clientIds(admin, `${prefix}:sub`), [], 'sub closed')
    await sleep(50)
    t.same(node.lines.filter((line) => line.level >= 30), [], 'closing is no outage, nor an end for good')
    t.equal(node.restores, 0)
  })

  t.test('a connection that ends for good (no more retries) is logged as such', async (t) => {
    const { node, parts, prefix } = await openEngine(t, {}, { retryStrategy: () => null })
    parts.start?.()
    t.equal(await cut(admin, `${prefix}:sub`), 1)
    await eventually(() => node.named(endedForGood).length === 1, 3000, 'the end logged')
    t.match(node.named(endedForGood)[0], { level: 50 })
    t.equal(node.named(unreachable).length, 1, 'and the outage')
  })

  t.test('a recovery that fails is retried on the tick (a third of nodeTtl), and ends the outage then', async (t) => {
    const { node, parts, prefix } = await openEngine(t, { nodeTtl: 1500 })
    parts.start?.()
    node.failRestores = 1
    await cut(admin, `${prefix}:pub`)
    await eventually(() => node.named(stillUnreachable).length === 1, 3000, 'the failed recovery logged')
    const failed = node.named(stillUnreachable)[0]
    t.match(failed, { err: { message: 'restore failed' }, shard: address })
    await eventually(() => node.named(back).length === 1, 3000, 'back on a tick')
    const elapsed = node.named(back)[0].time - failed.time
    t.ok(elapsed >= 250 && elapsed < 2000, `on the next tick, 500 ms: ${elapsed}`)
    t.equal(node.restores, 2)
  })

  t.test('the tick never goes below 50 ms, and restores nothing while all is well', async (t) => {
    const { node, parts, prefix } = await openEngine(t, { nodeTtl: 60 })
    parts.start?.()
    await sleep(200)
    t.equal(node.restores, 0, 'no restore without an outage')
    node.failRestores = 4
    await cut(admin, `${prefix}:pub`)
    await eventually(() => node.named(back).length === 1, 5000, 'back after four failed recoveries')
    t.equal(node.restores, 5)
    const first = node.named(stillUnreachable)[0]
    const elapsed = node.named(back)[0].time - first.time
    t.ok(elapsed >= 140, `four ticks of at least 50 ms: ${elapsed}`)
  })

  t.test('a connection made again while a recovery runs starts it over', async (t) => {
    const { node, parts, prefix, sub } = await openEngine(t)
    parts.start?.()
    let open: () => void = () => {}
    node.gate = new Promise((resolve) => { open = resolve })
    await cut(admin, `${prefix}:pub`)
    await eventually(() => node.restores === 1, 3000, 'the recovery began')
    const closed = new Promise((resolve) => sub.once('close', resolve))
    await cut(admin, `${prefix}:sub`)
    await closed // else the status below may still be the old connection's
    await eventually(() => sub.status === 'ready', 3000, 'sub made again')
    await sleep(20)
    open()
    await eventually(() => node.named(back).length === 1, 3000, 'back')
    t.equal(node.named(back)[0].restores, 2, 'only after a second restore')
    t.equal(node.named(unreachable).length, 1, 'one outage')
  })

  for (const [first, second] of [['pub', 'sub'], ['sub', 'pub']] as const) {
    t.test(`a recovery does not end the outage while the ${second} connection is down`, async (t) => {
      const { node, parts, prefix, pub, sub } = await openEngine(t, {}, { retryStrategy: () => 300 })
      const links = { pub, sub }
      parts.start?.()
      let open: () => void = () => {}
      node.gate = new Promise((resolve) => { open = resolve })
      await cut(admin, `${prefix}:${first}`)
      await eventually(() => node.restores === 1, 3000, 'the recovery began')
      await cut(admin, `${prefix}:${second}`)
      await eventually(() => links[second].status !== 'ready', 1000, `${second} down`)
      open()
      await sleep(100)
      t.same(node.named(back), [], `not back while ${second} is down`)
      await eventually(() => node.named(back).length === 1, 3000, `back once ${second} is made again`)
    })

    t.test(`a recovery waits until the ${second} connection is made again too`, async (t) => {
      const { node, parts, prefix } = await openEngine(t, {}, {}, { [first]: { retryStrategy: () => 20 }, [second]: { retryStrategy: () => 500 } })
      parts.start?.()
      await cut(admin, `${prefix}:${second}`)
      await cut(admin, `${prefix}:${first}`)
      await sleep(250)
      t.equal(node.restores, 0, `no restore while ${second} is down`)
      await eventually(() => node.named(back).length === 1, 3000, 'back')
      t.equal(node.restores, 1, 'one restore, once both are made')
    })
  }

  t.test('publications dropped while Redis is up are reported on the tick', async (t) => {
    const { node, parts } = await openEngine(t, { nodeTtl: 300 })
    parts.start?.()
    await t.rejects(parts.transport.publish([{ kind: 'all' }], 'x'.repeat(9 * 1024 * 1024)), /not queued/)
    await eventually(() => node.named(dropped).length === 1, 2000, 'reported')
    t.match(node.named(dropped)[0], { level: 40, dropped: 1 })
    t.same(node.named(unreachable), [])
  })

  t.test('a subscription that fails before start fails the start only; after start it counts against the outage', async (t) => {
    const { node, parts, prefix, sub } = await openEngine(t, {}, { retryStrategy: () => 300 })
    const room = [{ kind: 'channel', channel: 'room' }] as const
    await cut(admin, `${prefix}:sub`)
    await eventually(() => sub.status !== 'ready', 1000, 'sub down')
    await t.rejects(parts.transport.subscribe(room), /not ready/)
    await sleep(20)
    t.same(node.lines, [], 'no outage before start()')
    await eventually(() => sub.status === 'ready', 2000, 'sub made again')
    parts.start?.()
    await cut(admin, `${prefix}:sub`)
    await eventually(() => node.named(unreachable).length === 1, 1000, 'the outage begins')
    await t.rejects(parts.transport.subscribe(room), /not ready/)
    t.match(node.named(stillUnreachable), [{ err: { message: /not ready/ } }], 'the failed subscription reported')
  })
})

await withCluster(t, async (target) => {
  t.test('on a cluster: a cut connection to one master begins that shard\'s outage only, and the tick ends it', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const node = new StandInEngineNode()
    const parts = await redisEngine({ ...target.broker, prefix, nodeTtl: 1000, commandTimeout: 1000 }).connect(node)
    t.teardown(() => parts.close())
    parts.start?.()
    const keys = new RedisKeys(prefix)
    await parts.transport.subscribe([{ kind: 'node', nodeId: node.nodeId }])
    await (target.admin as Cluster).spublish(keys.direct(node.nodeId), 'hello')
    await eventually(() => node.received.length === 1, 2000, 'the envelope arrives')
    const masters = await target.masters()
    const holders = await Promise.all(masters.map(async (master) => (await clientIds(master, `${prefix}:${node.nodeId}:sub`)).length))
    // a master without the node's subscriber: only the publisher's connection to it is cut
    const victim = masters[holders.indexOf(0)]
    const victimAddress = `${victim.options.host ?? ''}:${victim.options.port ?? ''}`
    const shard = (await shardsOf(victim)).find(({ port }) => port === victim.options.port)
    t.ok(shard !== undefined)
    const [from, to] = shard?.ranges[0] ?? [0, 0]
    t.equal(await cut(victim, `${prefix}:${node.nodeId}:pub`), 1)
    await eventually(() => node.named(unreachable).length === 1, 3000, 'the outage begins')
    t.match(node.named(unreachable)[0], { level: 40, shard: `${victimAddress} (slots ${from}-${to}`, err: { message: new RegExp(`${prefix}:${node.nodeId}:pub lost cluster node ${victimAddress}$`) } })
    t.match(node.named(callFailed)[0], { level: 20, err: { message: /lost cluster node/ } }, 'first, the connection was shaken')
    // a publication on that shard has the client learn the slot map again
    let i = 0
    while (keySlot(keys.channel(`c${i}`)) < from || keySlot(keys.channel(`c${i}`)) > to) i++
    await eventually(async () => {
      await parts.transport.publish([{ kind: 'channel', channel: `c${i}` }], 'x').catch(() => {})
      return node.named(back).length === 1
    }, 5000, 'the outage ends')
    t.match(node.named(back)[0], { level: 30, shard: node.named(unreachable)[0].shard, channels: 3, sessions: 2 })
    t.equal(node.named(unreachable).length, 1, 'one shard down')
    await sleep(1200)
    t.equal(node.named(unreachable).length, 1, 'and no other later')
  })
})
