/**
 * The NATS engine's bounds on the server's clock (no server needed): samples bound the offset
 * from both sides and are intersected; a deadline is written from the lowest bound and checked
 * against the highest, so lateness is never missed whatever the round trips were.
 */
import t from 'tap'
import { NatsClock } from '../../../plugin/broker/nats/clock.js'

const near = (a: number, b: number): boolean => Math.abs(a - b) < 50

t.test('samples bound the offset; bounds are intersected', async (t) => {
  const clock = new NatsClock()
  const now = Date.now()
  t.ok(near(clock.now(), now) && near(clock.latest(), now) && near(clock.deadline(0), now), 'without a sample: this node\'s clock')
  clock.observe(now + 10_000, now - 1000, now + 1000) // server 10 s ahead, ±1 s
  t.ok(near(clock.now(), Date.now() + 10_000))
  t.ok(near(clock.latest(), Date.now() + 11_000), 'the latest it may be')
  t.ok(near(clock.deadline(0), Date.now() + 9_000), 'the earliest it may be')
  clock.observe(now + 10_000, now - 100, now + 100) // a tighter sample narrows both sides
  t.ok(near(clock.latest(), Date.now() + 10_100))
  t.ok(near(clock.deadline(500), Date.now() + 10_400), 'a deadline from the earliest')
  clock.observe(now + 10_500, now - 1000, now + 1000) // a loose one within does not widen them
  t.ok(near(clock.latest(), Date.now() + 10_100))
})

t.test('a deadline is never missed by a receiver, whatever the samples', async (t) => {
  const publisher = new NatsClock()
  const receiver = new NatsClock()
  const now = Date.now()
  publisher.observe(now + 5_000, now - 200, now + 200) // a slower round trip: wider bounds
  receiver.observe(now + 5_000, now - 300, now + 300)
  const deadline = publisher.deadline(1000)
  t.ok(receiver.latest() <= deadline, 'in time now (the bounds cost the budget their width)')
  t.ok(receiver.latest() + 1001 > deadline, 'late once more than the budget has passed')
  const loose = new NatsClock()
  loose.observe(now + 5_000, now - 2000, now + 2000)
  t.ok(receiver.latest() > loose.deadline(1000), 'bounds wider than the budget: dropped at once, never late')
})

t.test('samples that cannot be right are ignored, and disagreeing ones start over', async (t) => {
  const clock = new NatsClock()
  const now = Date.now()
  clock.observe(Number.NaN, now, now)
  clock.observe(now + 10_000, now, now - 5)
  t.ok(near(clock.now(), Date.now()))
  clock.observe(now + 10_000, now - 10, now + 10)
  clock.observe(now - 10_000, now - 10, now + 10) // the server's clock was set back
  t.ok(near(clock.now(), Date.now() - 10_000), 'the latest sample wins')
})

/** The bounds on the offset (server − this node) as the clock uses them, to the ms. */
function bounds (clock: NatsClock): { low: number, high: number } {
  for (;;) { // read within one ms of this node's clock
    const before = Date.now()
    const low = clock.deadline(0) - before
    const high = clock.latest() - before
    if (Date.now() === before) return { low, high }
  }
}

t.test('the bounds to the ms: an instant answer counts, the last 8 samples are kept, a disagreement keeps the latest', async (t) => {
  const clock = new NatsClock()
  const at = 1_000_000
  clock.observe(at + 500, at, at) // answered within the same ms: low = high = 500
  t.match(bounds(clock), { low: 500, high: 500 }, 'a sample answered at once is a good one')

  const kept = new NatsClock()
  kept.observe(at + 100, at, at) // tight: 100
  for (let i = 0; i < 7; i++) kept.observe(at + 100, at - 50, at + 50) // loose: 50..150
  t.match(bounds(kept), { low: 100, high: 100 }, 'with 7 more, the tight sample is still one of the 8 kept')
  kept.observe(at + 100, at - 50, at + 50)
  t.match(bounds(kept), { low: 50, high: 150 }, 'the 9th pushes it out')

  const touching = new NatsClock()
  touching.observe(at + 100, at, at) // 100..100
  touching.observe(at + 100, at - 50, at + 50) // 50..150: agrees, low and high meet
  t.match(bounds(touching), { low: 100, high: 100 }, 'bounds that meet are no disagreement')

  const reset = new NatsClock()
  reset.observe(at + 105, at - 5, at + 5) // 100..110
  reset.observe(at + 205, at - 5, at + 5) // 200..210: disagrees, the latest alone
  reset.observe(at + 197, at - 8, at + 7) // 190..205: intersected with the latest
  t.match(bounds(reset), { low: 200, high: 205 })
})
