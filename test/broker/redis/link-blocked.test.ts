/**
 * `Link` on the shared Redis and the shared cluster, fast: a connection that stops answering is
 * made with a BLPOP that nothing feeds (Redis answers a connection in order, so every call
 * behind it waits too), which stalls this one connection and no other client. Checked: the
 * errors and their messages, when the watchdog gives up (measured from each call's own send),
 * that a reset cuts the connection and refuses calls until it is back, the backlog of payload
 * bytes (released when a call settles, however it settles), the handshake check (against a
 * TCP listener that never answers: what a hung Redis looks like to a new connection), and on
 * a cluster that only the calls overdue on the blocked shard give up, one by one.
 * test/broker/redis/link.test.ts does the same against servers it freezes (slower).
 */
import { createServer, type Socket } from 'node:net'
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import { clientOptions, connectMasters, ready } from '../../../plugin/broker/redis/client.js'
import { BacklogFullError, Link, NoAnswerError, maxPendingBytes } from '../../../plugin/broker/redis/link.js'
import { keySlot } from '../../../plugin/broker/redis/slot.js'
import { seedsOf, serves, shardsOf } from '../../redis/cluster-server.js'
import { clusterUrls } from '../../redis/targets.js'
import { eventually, redisUrl, uniquePrefix, withRedis } from '../../redis/helpers.js'

const timeout = 300
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const errorOf = async (promise: Promise<unknown>): Promise<unknown> => await promise.then(() => undefined, (err: unknown) => err)

await withRedis(t, async () => {
  const prefix = uniquePrefix()
  const admin = new Redis(redisUrl, { maxRetriesPerRequest: 0 })
  admin.on('error', () => {})
  t.teardown(async () => { await admin.del(`${prefix}:k`, `${prefix}:q`); admin.disconnect() })

  async function connection (name?: string): Promise<Redis> {
    const client = new Redis(redisUrl, { ...clientOptions(), connectionName: name })
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    await ready(client)
    return client
  }

  t.test('the errors say what happened', async (t) => {
    t.equal(new BacklogFullError().message, `more than ${maxPendingBytes} bytes already on the way to redis: not queued`)
    t.equal(maxPendingBytes, 8 * 1024 * 1024)
    const cause = new Error('x')
    const err = new NoAnswerError(250, 'pub', cause)
    t.equal(err.message, 'redis did not answer within 250 ms on pub')
    t.equal(err.cause, cause)
  })

  t.test('a connection is named after its connectionName, else "redis"', async (t) => {
    t.equal(new Link(await connection('node-pub'), timeout, () => {}).name, 'node-pub')
    t.equal(new Link(await connection(), timeout, () => {}).name, 'redis')
  })

  t.test('answered calls resolve with their reply; a failed command rejects with its own error', async (t) => {
    const stalls: Error[] = []
    const link = new Link(await connection('calls'), timeout, (err) => stalls.push(err))
    t.equal(link.ready, true)
    t.equal(await link.run(async (redis) => await redis.set(`${prefix}:k`, 'v')), 'OK')
    const failed = await errorOf(link.run(async (redis) => await redis.incr(`${prefix}:k`)))
    t.match(failed, { message: /not an integer/ })
    t.notOk(failed instanceof NoAnswerError, 'not taken for a stall')
    const thrown = new Error('thrown before sending')
    t.equal(await errorOf(link.run(() => { throw thrown }, maxPendingBytes)), thrown, 'a command that throws rejects with what it threw')
    t.equal(await link.run(async (redis) => await redis.publish(`${prefix}:c`, 'x'), maxPendingBytes), 0,
      'and its bytes were released: a full backlog goes through')
    await sleep(timeout + 100)
    t.same(stalls, [], 'nothing was left for the watchdog: no reset')
    t.equal(link.ready, true)
  })

  t.test('the backlog: up to maxPendingBytes on the way, refused past it, released as calls settle', async (t) => {
    const link = new Link(await connection('backlog'), 5000, () => {})
    const blocker = new Redis(redisUrl, { maxRetriesPerRequest: 0 })
    t.teardown(() => blocker.disconnect())
    // the first call waits on the BLPOP: its bytes count until it is fed
    const waiting = link.run(async (redis) => await redis.blpop(`${prefix}:q`, 0), maxPendingBytes - 10)
    const free = link.run(async (redis) => await redis.ping(), 0)
    const refused = await errorOf(link.run(async (redis) => await redis.ping(), 11))
    t.ok(refused instanceof BacklogFullError, 'past the cap: refused at once')
    const fits = link.run(async (redis) => await redis.ping(), 10)
    await admin.lpush(`${prefix}:q`, 'fed')
    t.same(await waiting, [`${prefix}:q`, 'fed'])
    t.equal(await free, 'PONG', 'a call without bytes is never refused')
    t.equal(await fits, 'PONG', 'exactly up to the cap was accepted')
    t.equal(await link.run(async (redis) => await redis.ping(), maxPendingBytes), 'PONG', 'released once answered')
  })

  t.test('a connection that stops answering: the call gives up after the timeout, the connection is cut and comes back', async (t) => {
    const stalls: Error[] = []
    const client = await connection('hung')
    const link = new Link(client, timeout, (err) => stalls.push(err))
    t.equal(await link.run(async (redis) => await redis.ping()), 'PONG', 'an early call arms the watchdog')
    await sleep(100)
    const sent = Date.now()
    const blocked = link.run(async (redis) => await redis.blpop(`${prefix}:never`, 0), maxPendingBytes)
    const behind = link.run(async (redis) => await redis.ping())
    const err = await errorOf(blocked)
    const waited = Date.now() - sent
    t.ok(err instanceof NoAnswerError, 'a NoAnswerError')
    t.equal((err as Error).message, `redis did not answer within ${timeout} ms on hung`)
    t.ok((err as Error).cause instanceof Error, 'with ioredis\' error as its cause')
    t.ok(waited >= timeout - 5, `not before the timeout, counted from its own send (${waited} ms)`)
    t.ok(waited < timeout + 400, `promptly after it (${waited} ms)`)
    const behindErr = await errorOf(behind)
    t.ok(behindErr instanceof NoAnswerError, 'the call behind it fails as unanswered too')
    t.equal(stalls.length, 1, 'reported once')
    t.ok(stalls[0] instanceof NoAnswerError)
    t.equal(stalls[0].message, `redis did not answer within ${timeout} ms on hung`)
    t.not(client.status, 'ready', 'the connection was cut')
    t.equal(link.ready, false)
    const refused = await errorOf(link.run(async (redis) => await redis.ping()))
    t.match(refused, { message: `redis connection hung is not ready (${client.status})` }, 'nothing is queued while it reconnects')
    await eventually(() => link.ready, 5000, 'ready again')
    t.equal(await link.run(async (redis) => await redis.ping(), maxPendingBytes), 'PONG', 'the backlog was released')
    const later = await errorOf(link.run(async (redis) => await redis.incr(`${prefix}:k`)))
    t.notOk(later instanceof NoAnswerError, 'a call made after the reset fails with its own error')
    await sleep(timeout + 100)
    t.equal(stalls.length, 1, 'no further reset')
    const again = Date.now()
    t.ok(await errorOf(link.run(async (redis) => await redis.blpop(`${prefix}:never`, 0))) instanceof NoAnswerError, 'the next stall is caught too')
    t.ok(Date.now() - again >= timeout - 5 && Date.now() - again < timeout + 400, 'after its timeout')
    t.equal(stalls.length, 2)
    await eventually(() => link.ready, 5000, 'ready again')
  })

  t.test('one watchdog timer per connection, sleeping until the oldest call is due', async (t) => {
    const stalls: Error[] = []
    const link = new Link(await connection('timers'), timeout, (err) => stalls.push(err))
    const original = globalThis.setTimeout
    let timers = 0
    globalThis.setTimeout = ((...args: Parameters<typeof original>) => { timers++; return original(...args) }) as typeof original
    let settled: Promise<Array<PromiseSettledResult<unknown>>>
    try {
      const calls = [link.run(async (redis) => await redis.blpop(`${prefix}:never`, 0)), ...Array.from({ length: 100 }, async () => await link.run(async (redis) => await redis.ping()))]
      // handled from the start: on a loaded machine even half the timeout can outlast it
      settled = Promise.allSettled(calls)
      await new Promise((resolve) => original(resolve, timeout / 2))
    } finally {
      globalThis.setTimeout = original
    }
    t.ok(timers <= 3, `not one per call, nor polling (${timers} timers)`)
    const results = await settled
    t.ok(results.every((result) => result.status === 'rejected' && result.reason instanceof NoAnswerError))
    t.equal(stalls.length, 1)
  })

  t.test('a call that got its answer is not given up, even when its timer is long overdue', async (t) => {
    const stalls: Error[] = []
    const link = new Link(await connection('frozen'), timeout, (err) => stalls.push(err))
    const answer = link.run(async (redis) => await redis.ping())
    const frozenUntil = Date.now() + timeout * 2
    while (Date.now() < frozenUntil) { /* the event loop is blocked: the timer is overdue when it ends */ }
    t.equal(await answer, 'PONG')
    t.same(stalls, [])
    t.equal(link.ready, true)
  })

  t.test('many calls: the settled ones are forgotten, and the oldest unanswered one is still watched', async (t) => {
    const stalls: Error[] = []
    const link = new Link(await connection('many'), timeout, (err) => stalls.push(err))
    const answered = Array.from({ length: 1500 }, async () => await link.run(async (redis) => await redis.ping()))
    t.equal((await Promise.all(answered)).length, 1500)
    // the list of calls that are not known to have settled (private): it stays as short as what is pending
    const pending = (): number => (Reflect.get(link, 'calls') as unknown[]).length - (Reflect.get(link, 'head') as number)
    const listed = (): number => (Reflect.get(link, 'calls') as unknown[]).length
    const counter = `${prefix}:counter`
    t.teardown(async () => await admin.del(counter))
    const done = Array.from({ length: 1100 }, async () => await link.run(async (redis) => await redis.incr(counter)))
    const waiting = link.run(async (redis) => await redis.blpop(`${prefix}:q2`, 0))
    await Promise.all(done)
    t.equal(pending(), 1100 + 1, 'not looked at yet')
    const more = link.run(async (redis) => await redis.ping())
    t.equal(pending(), 2, 'the settled ones are dropped at the next call')
    t.equal(listed(), 2, 'from the list itself once most of it had settled')
    await admin.lpush(`${prefix}:q2`, 'fed')
    t.same(await waiting, [`${prefix}:q2`, 'fed'])
    t.equal(await more, 'PONG')
    t.same(stalls, [])
    const sent = Date.now()
    const err = await errorOf(link.run(async (redis) => await redis.blpop(`${prefix}:never`, 0)))
    t.ok(err instanceof NoAnswerError)
    t.ok(Date.now() - sent >= timeout - 5, 'given up after its own timeout')
    t.equal(stalls.length, 1)
  })

  t.test('the handshake: reset when a new connection gets no answer within the timeout, never once ready', async (t) => {
    const silent: Socket[] = []
    const server = createServer((socket) => { silent.push(socket); socket.on('error', () => {}) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { for (const socket of silent) socket.destroy(); server.close() })
    const { port } = server.address() as { port: number }
    const client = new Redis(port, '127.0.0.1', { ...clientOptions(), connectionName: 'shake', retryStrategy: () => null })
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    const stalls: Error[] = []
    const link = new Link(client, timeout, (err) => stalls.push(err))
    await new Promise((resolve) => client.once('connect', resolve))
    t.equal(client.status, 'connect')
    link.checkHandshake()
    t.same(stalls, [], 'not before the timeout')
    await sleep(timeout - 100)
    link.checkHandshake()
    t.same(stalls, [], 'still not')
    await sleep(150)
    link.checkHandshake()
    link.checkHandshake()
    t.equal(stalls.length, 1, 'past the timeout: reset, once')
    t.equal(stalls[0]?.message, `redis did not answer the handshake on shake within ${timeout} ms`)
    await eventually(() => silent.length === 1 && silent[0].destroyed, 2000, 'the connection was cut')
    link.checkHandshake()
    t.equal(stalls.length, 1, 'a cut connection is not reset again')

    const shaken = new Redis(redisUrl, { ...clientOptions(), connectionName: 'shaken' })
    shaken.on('error', () => {})
    t.teardown(() => shaken.disconnect())
    const answering = new Link(shaken, timeout, (err) => stalls.push(err)) // sees the connection's 'connect' event
    await ready(shaken)
    await sleep(timeout + 50)
    answering.checkHandshake()
    t.equal(stalls.length, 1, 'a connection that got its handshake answer is never reset by the check')
  })
})

await withRedis(t, async () => {
  t.test('on a cluster, a blocked shard: its calls give up one by one, the others answer, the bytes count until it answers', async (t) => {
    const urls = await clusterUrls(t)
    if (urls === undefined) {
      if (process.env.CI === 'true') t.fail('no cluster (CI=true makes this a failure)')
      return
    }
    const prefix = uniquePrefix()
    const client = new Cluster(seedsOf(urls), { enableOfflineQueue: false, redisOptions: { ...clientOptions(), connectionName: 'shards' } }) as unknown as Redis
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    const admin = new Cluster(seedsOf(urls))
    admin.on('error', () => {})
    t.teardown(() => admin.disconnect())
    await ready(client)
    await connectMasters(client, 5000)
    const [victim] = await shardsOf((client as unknown as Cluster).nodes('master')[0])
    const keyOn = (hung: boolean, tag = ''): string => {
      for (let i = 0; ; i++) if (serves(victim, keySlot(`${prefix}:${tag}${i}`)) === hung) return `${prefix}:${tag}${i}`
    }
    const queue = keyOn(true, 'q')
    t.teardown(async () => { await admin.del(queue); await admin.del(keyOn(true)); await admin.del(keyOn(false)) })
    const stalls: Error[] = []
    const link = new Link(client, timeout, (err) => stalls.push(err))
    t.equal(link.name, 'shards', 'named after the cluster\'s connectionName')
    const unnamed = new Cluster(seedsOf(urls), { lazyConnect: true }) as unknown as Redis
    t.equal(new Link(unnamed, timeout, () => {}).name, 'redis', 'a cluster without redisOptions')

    const sent = Date.now()
    const hung = link.run(async (redis) => await redis.blpop(queue, 0), maxPendingBytes - 10)
    await sleep(150)
    const hungToo = link.run(async (redis) => await redis.set(keyOn(true), 'late'))
    t.equal(await link.run(async (redis) => await redis.set(keyOn(false), 'now')), 'OK', 'a call to another shard answers meanwhile')
    t.ok(await errorOf(link.run(async (redis) => await redis.set(keyOn(false), 'x'), 20)) instanceof BacklogFullError, 'past the cap: refused at once')
    const err = await errorOf(hung)
    t.ok(Date.now() - sent >= timeout - 5, 'the blocked call gave up after the timeout')
    t.ok(Date.now() - sent < timeout + 400, 'and promptly')
    t.ok(err instanceof NoAnswerError)
    t.equal((err as Error).message, `redis did not answer within ${timeout} ms on shards`)
    t.equal(stalls.length, 1, 'the stall is reported')
    t.equal(err, stalls[0], 'the call is given up with the stall\'s own error')
    const errToo = await errorOf(hungToo)
    t.ok(errToo instanceof NoAnswerError, 'the call behind it gives up too')
    t.equal(stalls.length, 2, 'reported again: on its own timeout, not with the first')
    t.equal(client.status, 'ready', 'the cluster client is not cut')
    t.equal(await link.run(async (redis) => await redis.get(keyOn(false))), 'now', 'the other shards still answer')
    t.ok(await errorOf(link.run(async (redis) => await redis.set(keyOn(false), 'x'), 20)) instanceof BacklogFullError,
      'the given-up command still waits on its shard: its bytes still count')

    await admin.lpush(queue, 'fed')
    await eventually(async () => await link.run(async (redis) => await redis.set(keyOn(false), 'y'), 20).then(() => true, () => false), 5000,
      'the backlog is released once the shard answers')
    t.equal(await link.run(async (redis) => await redis.get(keyOn(true))), 'late', 'the given-up command ran once the shard answered')
    const failed = await errorOf(link.run(async (redis) => await redis.incr(keyOn(true))))
    t.match(failed, { message: /not an integer/ })
    t.notOk(failed instanceof NoAnswerError, 'a call after the stall fails with its own error')
    t.equal(stalls.length, 2)

    // While the cluster client is mending itself (not ready), its outage has begun already: an
    // overdue call is given up all the same, and no stall is reported. (The status is set by
    // hand: a real reconnection would also fail the blocked call, before it is overdue.)
    const states = client as unknown as { status: string }
    for (const [status, reported] of [['reconnecting', false], ['connect', true]] as const) {
      const queue = keyOn(true, `mend-${status}-`)
      t.teardown(async () => await admin.del(queue))
      const blocked = link.run(async (redis) => await redis.blpop(queue, 0))
      states.status = status
      try {
        t.ok(await errorOf(blocked) instanceof NoAnswerError, `${status}: the overdue call is given up`)
      } finally {
        states.status = 'ready'
      }
      t.equal(stalls.length, reported ? 3 : 2, `${status}: the stall is ${reported ? '' : 'not '}reported`)
      await admin.lpush(queue, 'fed')
    }
  })
})
