/**
 * Deadlines on Redis' clock: before any measurement there is none, after one a deadline is
 * `budget` ms from now on Redis' clock (never later), and the Lua check refuses what comes
 * in after it.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { lateCheck, RedisClock, type RedisTime } from '../../../plugin/broker/redis/clock.js'
import { redisUrl, withRedis } from '../../redis/helpers.js'

t.test('a deadline is budget ms from now on the measured clock', async (t) => {
  const clock = new RedisClock()
  t.equal(clock.deadline(1000), 0, 'no measurement: no deadline')
  const redisNow = 1_700_000_000_000
  clock.observe([String(redisNow / 1000), '0'])
  const deadline = clock.deadline(1000)
  t.ok(deadline <= redisNow + 1000 && deadline > redisNow + 900, `${deadline - redisNow} ms after the measured time`)
  clock.observe(['not a number', '0'] as unknown as RedisTime)
  t.ok(clock.deadline(1000) >= deadline, 'a bad answer keeps the last good measurement')
})

await withRedis(t, async () => {
  t.test('Redis refuses what reaches it after the deadline', async (t) => {
    const redis = new Redis(redisUrl)
    t.teardown(() => redis.disconnect())
    const script = `${lateCheck('ARGV[1]')}\nreturn 1`
    const clock = new RedisClock()
    clock.observe(await redis.time() as unknown as RedisTime)
    t.equal(await redis.eval(script, 0, clock.deadline(1000)), 1, 'in time')
    t.equal(await redis.eval(script, 0, 0), 1, 'no deadline')
    t.equal(await redis.eval(script, 0, clock.deadline(-1000)), -2, 'too late')
  })
})
