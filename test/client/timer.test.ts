import t from 'tap'
import { exponentialBackoff, fullJitter, Timer } from '../../client/timer.js'
import { within } from '../helpers/deadline.js'

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
    await within(done, 3000, `scheduled try ${i} fires`)
  }
  t.same(asked, [1, 2, 3], 'the backoff is asked for try 1, 2, 3: the count is seen through it')
  t.equal(fired, 3)
  timer.reset()
  timer.schedule()
  timer.cancel()
  timer.schedule() // replaces, does not stack
  await within(new Promise<void>((resolve) => { wake = resolve }), 3000, 'the replacing schedule fires')
  t.equal(fired, 4, 'a cancelled or replaced schedule never fires')
  t.same(asked, [1, 2, 3, 1, 2], 'reset starts the count again at 1')
})

/** Resolves after `ms`: Node runs timers in expiry order, so any timer due earlier has run. */
const after = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a cancelled or reset schedule never fires, even later; a scheduled one waits its backoff', async (t) => {
  let fired = 0
  const timer = new Timer(() => { fired++ }, () => 5)
  timer.schedule()
  timer.cancel()
  timer.schedule()
  timer.reset()
  await after(30)
  t.equal(fired, 0, 'neither the cancelled nor the reset 5 ms schedule fired within 30 ms')
  const patient = new Timer(() => { fired++ }, () => 60_000)
  patient.schedule()
  await after(20)
  t.equal(fired, 0, 'a 60 s backoff has not fired after 20 ms')
  patient.cancel()
  const eager = new Timer(() => { fired++ }, () => -100)
  eager.schedule()
  await after(20)
  t.equal(fired, 1, 'a negative backoff fires at once')
})

t.test('fullJitter draws evenly from [0, window)', async (t) => {
  t.equal(fullJitter(1000, () => 0), 0)
  t.equal(fullJitter(1000, () => 0.5), 500)
  t.equal(fullJitter(1000, () => 0.999), 999)
  t.equal(fullJitter(-5, () => 0.5), 0, 'a negative window waits nothing')
  const waits = Array.from({ length: 1000 }, () => fullJitter(100))
  t.ok(waits.every((wait) => wait >= 0 && wait < 100))
  t.ok(waits.some((wait) => wait < 10) && waits.some((wait) => wait >= 90), 'the whole window is used, from 0 on')
})

t.test('Timer.scheduleIn fires after the given wait and does not count a try', async (t) => {
  const asked: number[] = []
  let fired = 0
  let wake = (): void => {}
  const timer = new Timer(() => { fired++; wake() }, (tries) => { asked.push(tries); return 1 })
  const start = performance.now()
  await within(new Promise<void>((resolve) => { wake = resolve; timer.scheduleIn(30) }), 3000, 'scheduleIn fires')
  t.ok(performance.now() - start >= 29, 'after its wait')
  t.same(asked, [], 'the backoff was not asked')
  await within(new Promise<void>((resolve) => { wake = resolve; timer.schedule() }), 3000, 'the next schedule fires')
  t.same(asked, [1], 'a failure after it is try 1')
  timer.scheduleIn(10)
  timer.cancel()
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.equal(fired, 2, 'a cancelled scheduleIn never fires')
})
