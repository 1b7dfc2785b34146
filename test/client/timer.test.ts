import t from 'tap'
import { exponentialBackoff, Timer } from '../../client/timer.js'

t.test('exponential backoff: the ceiling doubles up to max, the wait is drawn from its upper half', async (t) => {
  const low = exponentialBackoff({ random: () => 0 })
  const high = exponentialBackoff({ random: () => 0.999999 })
  t.same([1, 2, 3, 4, 5, 6, 7, 8].map(low), [125, 250, 500, 1000, 2000, 4000, 5000, 5000])
  t.same([1, 2, 3, 4, 5, 6, 7].map((n) => Math.round(high(n))), [250, 500, 1000, 2000, 4000, 8000, 10000])
  t.equal(Math.round(high(1000)), 10000, 'huge try counts stay at max')
  const custom = exponentialBackoff({ initial: 10, max: 40, random: () => 0.5 })
  t.same([1, 2, 3, 4].map(custom), [7.5, 15, 30, 30])
  const jittered = new Set(Array.from({ length: 20 }, () => exponentialBackoff()(3)))
  t.ok(jittered.size > 1, 'jitter: two waits rarely agree')
  for (const wait of jittered) t.ok(wait >= 500 && wait <= 1000)
})

t.test('Timer counts tries until reset, and schedules with the backoff of the try', async (t) => {
  const asked: number[] = []
  let fired = 0
  let wake = (): void => {}
  const timer = new Timer(() => { fired++; wake() }, (tries) => { asked.push(tries); return 1 })
  for (let i = 1; i <= 3; i++) {
    const done = new Promise<void>((resolve) => { wake = resolve })
    timer.schedule()
    await done
  }
  t.same(asked, [1, 2, 3], 'the backoff is asked for try 1, 2, 3: the count is seen through it')
  t.equal(fired, 3)
  timer.reset()
  timer.schedule()
  timer.cancel()
  timer.schedule() // replaces, does not stack
  await new Promise<void>((resolve) => { wake = resolve })
  t.equal(fired, 4, 'a cancelled or replaced schedule never fires')
  t.same(asked, [1, 2, 3, 1, 2], 'reset starts the count again at 1')
})
