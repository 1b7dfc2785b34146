/**
 * The NATS engine's estimate of the server's clock (no server needed): the sample with the
 * shortest round trip wins, and deadlines are on that clock.
 */
import t from 'tap'
import { NatsClock } from '../../../plugin/broker/nats/clock.js'

t.test('the shortest round trip wins', async (t) => {
  const clock = new NatsClock()
  const now = Date.now()
  t.ok(Math.abs(clock.now() - now) < 50, 'without a sample: this node\'s clock')
  clock.observe(now + 10_000, now - 100, now + 100) // server 10 s ahead, ±100 ms
  t.ok(Math.abs(clock.now() - (Date.now() + 10_000)) < 50)
  clock.observe(now + 5_000, now - 1, now + 1) // a better sample
  t.ok(Math.abs(clock.now() - (Date.now() + 5_000)) < 50)
  clock.observe(now - 5_000, now - 500, now + 500) // a worse one does not win
  t.ok(Math.abs(clock.now() - (Date.now() + 5_000)) < 50)
  t.ok(Math.abs(clock.deadline(1000) - (Date.now() + 6_000)) < 50, 'a deadline on the server\'s clock')
})

t.test('samples that cannot be right are ignored', async (t) => {
  const clock = new NatsClock()
  const now = Date.now()
  clock.observe(Number.NaN, now, now)
  clock.observe(now + 10_000, now, now - 5)
  t.ok(Math.abs(clock.now() - Date.now()) < 50)
})
