/**
 * One broker connection to a private redis-server that the tests freeze: calls give up after
 * the timeout and reset the connection (nothing stays queued), the backlog is refused past its
 * cap, nothing is sent while not ready, and a reply that came in while this process itself was
 * frozen wins over the timer.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { clientOptions, ready } from '../../plugin/broker/redis-client.js'
import { BacklogFullError, Link, maxPendingBytes } from '../../plugin/broker/redis-link.js'
import { PrivateRedis, eventually, withRedis } from '../redis/helpers.js'

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
