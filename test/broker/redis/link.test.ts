/**
 * One broker connection to a private redis-server that the tests freeze: calls give up after
 * the timeout and reset the connection (nothing stays queued), the backlog is refused past its
 * cap, nothing is sent while not ready, and a reply that came in while this process itself was
 * frozen wins over the timer. On a private Redis Cluster with one shard frozen: only the calls
 * to that shard give up, one by one, and their bytes count until the shard wakes.
 */
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import { clientOptions, connectMasters, ready } from '../../../plugin/broker/redis/client.js'
import { BacklogFullError, Link, maxPendingBytes } from '../../../plugin/broker/redis/link.js'
import { keySlot } from '../../../plugin/broker/redis/slot.js'
import { within } from '../../helpers/deadline.js'
import { PrivateCluster, serves, shardsOf, withRedisServer } from '../../redis/cluster-server.js'
import { PrivateRedis, eventually, withRedis } from '../../redis/helpers.js'

const timeout = 300

await withRedis(t, async () => {
  const redis = await PrivateRedis.start(t)
  t.teardown(() => redis.resume())
  const client = new Redis(redis.url, clientOptions())
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await ready(client)
  const stalls: Error[] = []
  const link = new Link(client, timeout, (err) => stalls.push(err))

  t.test('an answered call resolves', async (t) => {
    t.equal(await link.run((redis) => redis.ping()), 'PONG')
    t.same(stalls, [])
  })

  t.test('a reply that arrived while this process was frozen wins over the timer', async (t) => {
    const answer = link.run((redis) => redis.ping())
    const frozenUntil = Date.now() + timeout * 2
    while (Date.now() < frozenUntil) { /* the event loop is blocked: the timer is overdue when it ends */ }
    t.equal(await answer, 'PONG')
    t.same(stalls, [], 'no reset')
    t.equal(client.status, 'ready')
  })

  t.test('while Redis hangs: calls time out, the backlog is capped, the connection is reset', async (t) => {
    redis.pause()
    const started = Date.now()
    const big = link.run((redis) => redis.publish('x', 'y'), maxPendingBytes)
    const refused = await link.run((redis) => redis.publish('x', 'z'), 1).catch((err: unknown) => err)
    t.ok(refused instanceof BacklogFullError, 'past the cap: refused at once')
    await t.rejects(big, /did not answer within 300 ms/)
    t.ok(Date.now() - started < timeout + 500, 'gave up after the timeout')
    t.equal(stalls.length, 1, 'the stall is reported once')
    await eventually(() => client.status !== 'ready', 1000, 'the connection was cut')
    await t.rejects(link.run((redis) => redis.ping()), /not ready/, 'nothing is queued while it reconnects')
    // a connection made to the hung Redis never gets its handshake answer: it is reset as well
    await eventually(() => client.status === 'connect', 5000, 'reconnected at TCP level')
    await new Promise((resolve) => setTimeout(resolve, timeout + 50))
    link.checkHandshake()
    t.equal(stalls.length, 2, 'the unanswered handshake is reported')
    redis.resume()
    await eventually(() => link.ready, 10000, 'ready again once Redis answers')
    t.equal(await link.run((redis) => redis.ping()), 'PONG')
    t.equal(await link.run((redis) => redis.publish('x', 'y'), maxPendingBytes), 0, 'the backlog was released')
  })
})

await withRedisServer(t, 'the cluster link test', () => {
  t.test('on a cluster, a hung shard: its calls give up one by one, the others answer, the bytes count until it wakes', async (t) => {
    const cluster = await PrivateCluster.start(t, 3, 0)
    const client = new Cluster(cluster.seeds, { enableOfflineQueue: false, redisOptions: clientOptions() }) as unknown as Redis
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    await ready(client)
    await connectMasters(client, 5000)
    const seed = cluster.seed(t)
    const [victim] = await shardsOf(seed)
    const keyOn = (hung: boolean): string => {
      for (let i = 0; ; i++) if (serves(victim, keySlot(`k${i}`)) === hung) return `k${i}`
    }
    const stalls: Error[] = []
    const link = new Link(client, timeout, (err) => stalls.push(err))

    await cluster.pause(victim.port)
    t.teardown(() => cluster.resume(victim.port))
    const started = Date.now()
    const hung = link.run((redis) => redis.set(keyOn(true), 'late'), maxPendingBytes - 10)
    t.equal(await link.run((redis) => redis.set(keyOn(false), 'now')), 'OK', 'a call to another shard answers meanwhile')
    t.ok(await link.run((redis) => redis.set(keyOn(false), 'x'), 20).catch((err: unknown) => err) instanceof BacklogFullError, 'past the cap: refused at once')
    await within(t.rejects(hung, /did not answer within 300 ms/), timeout + 2000, 'the hung call gives up')
    t.ok(Date.now() - started < timeout + 500, 'the hung call gave up after the timeout')
    t.equal(stalls.length, 1, 'the stall is reported once')
    t.equal(client.status, 'ready', 'the cluster client is not cut')
    t.ok(await link.run((redis) => redis.set(keyOn(false), 'x'), 20).catch((err: unknown) => err) instanceof BacklogFullError,
      'the given-up command still waits for the hung shard: its bytes still count')

    await cluster.resume(victim.port)
    await eventually(async () => await link.run((redis) => redis.set(keyOn(false), 'y'), 20).then(() => true, () => false), 10000,
      'the backlog is released once the shard answers')
    t.equal(await link.run((redis) => redis.get(keyOn(true))), 'late', 'the given-up command ran when the shard woke (a publication would be refused by its deadline)')
  })
})
