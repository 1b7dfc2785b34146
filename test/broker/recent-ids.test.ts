/**
 * The dedupe memory of multi-channel publications: a repeat within the window is refused, and
 * the memory is bounded both in keys and in time.
 */
import t from 'tap'
import { RecentIds } from '../../plugin/broker/recent-ids.js'

t.test('RecentIds remembers a bounded number of keys', async (t) => {
  const recent = new RecentIds(2)
  t.equal(recent.firstTime('a'), true)
  t.equal(recent.firstTime('a'), false)
  t.equal(recent.firstTime('b'), true)
  t.equal(recent.firstTime('c'), true, 'evicts the oldest')
  t.equal(recent.firstTime('a'), true, 'a was forgotten')
  t.equal(recent.firstTime('c'), false)
})

t.test('RecentIds forgets a key after its window, however few keys came since', async (t) => {
  let now = 1000
  const recent = new RecentIds(100, 500, () => now)
  t.equal(recent.firstTime('a'), true)
  now += 499
  t.equal(recent.firstTime('a'), false, 'a repeat within the window: a late copy from another shard')
  t.equal(recent.firstTime('b'), true)
  now += 1
  t.equal(recent.firstTime('a'), true, 'a was forgotten after 500 ms')
  t.equal(recent.firstTime('b'), false, 'b is younger')
})
