/**
 * The memory engine's history store: dense offsets and one epoch per channel, a ring of the
 * last `size` entries each kept `ttl` ms, all-or-nothing `after` reads, and streams dropped
 * after 24 hours unused. Entries are opaque text, kept and handed back as they are.
 */
import { test } from 'tap'
import { MemoryHistory } from '../../../plugin/broker/memory/history-store.js'

const limits = { size: 3, ttl: 1000 }
const frame = (n: number): string => `\n{"type":"message","event":"e","channel":"c","data":${n}}`

test('offsets are dense from 1, in one epoch per channel; entries are kept as they are', async (t) => {
  const history = new MemoryHistory()
  const positions = [1, 2, 3].map((n) => history.append('c', frame(n), limits))
  t.same(positions.map((position) => position.offset), [1, 2, 3])
  t.equal(new Set(positions.map((position) => position.epoch)).size, 1, 'one epoch')
  t.same(history.read('c', { last: 1 }, limits).entries, [{ offset: 3, entry: frame(3) }], 'the entry as it was given')
  const other = history.append('other', frame(9), limits)
  t.equal(other.offset, 1, 'each channel has its own offsets')
  t.not(other.epoch, positions[0].epoch, 'and its own epoch')
})

test('the ring keeps the last `size` entries; after-queries are all or nothing', async (t) => {
  const history = new MemoryHistory()
  for (let n = 1; n <= 5; n++) history.append('c', frame(n), limits)
  const last = history.read('c', { last: 10 }, limits)
  t.equal(last.offset, 5)
  t.same(last.entries.map((entry) => entry.offset), [3, 4, 5])
  t.equal(last.complete, true, 'a last-query is complete')
  t.equal(last.entries[1].entry, frame(4))
  t.same(history.read('c', { after: 2 }, limits).entries.map((entry) => entry.offset), [3, 4, 5], 'a gap still kept')
  t.same(history.read('c', { after: 2 }, limits).complete, true)
  t.same(history.read('c', { after: 1 }, limits), { epoch: last.epoch, offset: 5, entries: [], complete: false }, 'beyond size')
  t.same(history.read('c', { after: 5 }, limits).complete, true, 'nothing missed')
  t.same(history.read('c', { after: 6 }, limits).complete, false, 'an offset from the future')
})

test('entries older than ttl are gone; the epoch and top offset stay', async (t) => {
  let now = 1_000_000
  const history = new MemoryHistory(() => now)
  history.append('c', frame(1), limits)
  now += 600
  history.append('c', frame(2), limits)
  now += 600
  const read = history.read('c', { after: 0 }, limits)
  t.equal(read.complete, false, 'offset 1 expired')
  t.same(history.read('c', { after: 1 }, limits).entries.map((entry) => entry.offset), [2])
  now += 2000
  history.sweep(limits.ttl)
  const empty = history.read('c', { last: 5 }, limits)
  t.same([empty.epoch, empty.offset, empty.entries], [read.epoch, 2, []])
})

test('a stream unused for 24 hours is dropped: a new epoch', async (t) => {
  let now = 0
  const history = new MemoryHistory(() => now)
  history.append('c', frame(1), limits)
  const { epoch } = history.read('c', { last: 0 }, limits)
  now += 24 * 60 * 60 * 1000 + 1
  history.sweep(limits.ttl)
  t.equal(history.size, 0)
  const fresh = history.read('c', { last: 0 }, limits)
  t.not(fresh.epoch, epoch)
  t.equal(fresh.offset, 0)
})

test('a larger size keeps what the ring holds', async (t) => {
  const history = new MemoryHistory()
  for (let n = 1; n <= 3; n++) history.append('c', frame(n), limits)
  history.append('c', frame(4), { size: 5, ttl: 1000 })
  t.same(history.read('c', { last: 5 }, { size: 5, ttl: 1000 }).entries.map((entry) => entry.offset), [1, 2, 3, 4])
  history.append('c', frame(5), { size: 2, ttl: 1000 })
  t.same(history.read('c', { last: 5 }, limits).entries.map((entry) => entry.offset), [4, 5])
})

test('an entry is kept for exactly ttl ms; a stream for exactly 24 hours after its last use', async (t) => {
  let now = 0
  const history = new MemoryHistory(() => now)
  history.append('c', frame(1), limits)
  now += limits.ttl
  t.same(history.read('c', { after: 0 }, limits).entries.map((entry) => entry.offset), [1], 'ttl ms old: still kept')
  now += 1
  t.same(history.read('c', { after: 0 }, limits), { epoch: history.read('c', { last: 0 }, limits).epoch, offset: 1, entries: [], complete: false }, 'older: gone')
  const { epoch } = history.read('c', { last: 0 }, limits)
  const day = 24 * 60 * 60 * 1000
  now += day - 1
  history.read('c', { last: 1 }, limits) // a use: the 24 hours start again
  now += day
  history.sweep(limits.ttl)
  t.equal(history.read('c', { last: 0 }, limits).epoch, epoch, 'unused for exactly 24 hours: kept')
  now += day + 1
  history.sweep(limits.ttl)
  t.not(history.read('c', { last: 0 }, limits).epoch, epoch, 'unused for longer: a new epoch')
})

test('once every entry expired, only a since at the top offset is complete', async (t) => {
  let now = 0
  const history = new MemoryHistory(() => now)
  for (let n = 1; n <= 3; n++) history.append('c', frame(n), limits)
  now += limits.ttl + 1
  t.same(history.read('c', { after: 2 }, limits).complete, false, 'offset 3 is gone')
  t.same(history.read('c', { after: 3 }, limits).complete, true)
})

test('a sweep keeps the entries younger than ttl', async (t) => {
  let now = 0
  const history = new MemoryHistory(() => now)
  history.append('c', frame(1), limits)
  now += 500
  history.append('c', frame(2), limits)
  now += 600
  history.sweep(limits.ttl)
  t.same(history.read('c', { last: 5 }, limits).entries.map((entry) => entry.offset), [2])
})
