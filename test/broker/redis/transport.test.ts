/**
 * Publications in batches on a real Redis: a burst in one turn arrives complete and in order
 * across several batches, a send never overtakes what was published before it, and a batch
 * that reaches Redis after its deadline publishes nothing and fails each of its publications.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { clientOptions, ready } from '../../../plugin/broker/redis/client.js'
import { RedisClock, type RedisTime } from '../../../plugin/broker/redis/clock.js'
import { Link } from '../../../plugin/broker/redis/link.js'
import { LateError, Publisher } from '../../../plugin/broker/redis/transport.js'
import { classicPubSub } from '../../../plugin/broker/redis/pubsub.js'
import { defineScripts } from '../../../plugin/broker/redis/scripts.js'
import { eventually, redisUrl, uniquePrefix, withRedis } from '../../redis/helpers.js'
import { within } from '../../helpers/deadline.js'

await withRedis(t, async () => {
  const prefix = uniquePrefix()
  const pub = new Redis(redisUrl, clientOptions())
  const sub = new Redis(redisUrl, clientOptions())
  t.teardown(() => { pub.disconnect(); sub.disconnect() })
  await Promise.all([ready(pub), ready(sub)])
  defineScripts(pub)
  const received: Array<[string, string]> = []
  sub.on('message', (channel: string, text: string) => { received.push([channel.slice(prefix.length + 1), text]) })
  await sub.subscribe(`${prefix}:a`, `${prefix}:b`)
  const clock = new RedisClock()
  clock.observe(await pub.time() as unknown as RedisTime)
  let failed = 0
  const publisher = new Publisher(new Link(pub, 1000, () => {}), clock, 500, () => { failed++ }, classicPubSub)

  t.test('a burst in one turn: complete and in order, over several batches', async (t) => {
    received.length = 0
    const sent: Array<Promise<void>> = []
    for (let i = 0; i < 1200; i++) sent.push(publisher.publish(i % 3 === 0 ? [`${prefix}:a`, `${prefix}:b`] : [`${prefix}:a`], String(i)))
    await Promise.all(sent)
    await eventually(() => received.length === 1600, 5000, 'every copy arrived')
    t.same(received.filter(([channel]) => channel === 'a').map(([, text]) => Number(text)), [...Array(1200).keys()], 'in order on a')
    t.same(received.filter(([channel]) => channel === 'b').map(([, text]) => Number(text)),
      [...Array(1200).keys()].filter((i) => i % 3 === 0), 'in order on b')
    t.equal(failed, 0)
  })

  t.test('flush() sends what waits before a command issued after it', async (t) => {
    received.length = 0
    const published = publisher.publish([`${prefix}:a`], 'first')
    publisher.flush()
    await pub.publish(`${prefix}:a`, 'second')
    await within(published, 5000, 'the flushed publication is published')
    await eventually(() => received.length === 2, 5000, 'both arrived')
    t.same(received.map(([, text]) => text), ['first', 'second'])
  })

  t.test('a batch that reaches Redis after its deadline publishes nothing', async (t) => {
    received.length = 0
    const lateClock = new RedisClock()
    lateClock.observe(['1000000000', '0']) // Redis' clock as if it were 2001: every deadline is long past
    const late = new Publisher(new Link(pub, 1000, () => {}), lateClock, 500, () => { failed++ }, classicPubSub)
    const results = await Promise.allSettled([late.publish([`${prefix}:a`], 'x'), late.publish([`${prefix}:b`], 'y')])
    t.same(results.map((result) => result.status), ['rejected', 'rejected'])
    t.ok(results.every((result) => result.status === 'rejected' && result.reason instanceof LateError))
    t.equal(failed, 2, 'each failed publication counted')
    await publisher.publish([`${prefix}:a`], 'fence')
    await eventually(() => received.length > 0, 5000, 'the fence arrived')
    t.same(received.map(([, text]) => text), ['fence'], 'nothing of the late batch was published')
  })
})
