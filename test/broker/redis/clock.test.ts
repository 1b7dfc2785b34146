/**
 * Deadlines on Redis' clock: before any measurement there is none, after one a deadline is
 * `budget` ms from now on Redis' clock (never later). That Redis refuses what comes in after
 * it is tested with the scripts that check it (scripts.test.ts).
 */
import t from 'tap'
import { RedisClock, type RedisTime } from '../../../plugin/broker/redis/clock.js'

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

t.test('the microseconds of a TIME answer count, as whole milliseconds', async (t) => {
  const clock = new RedisClock()
  const redisNow = 1_700_000_000_000
  clock.observe([String(redisNow / 1000), '500999'])
  const deadline = clock.deadline(1000)
  t.ok(deadline <= redisNow + 500 + 1000 && deadline > redisNow + 500 + 900, `${deadline - redisNow} ms after the measured seconds`)
})
