/**
 * State created by subscriptions and reads alone (no publication) is bounded: a read of a
 * channel never published stores nothing of the channel. It answers offset 0 and the epoch the
 * first publication will get (derived from the store's base and the current period), so a
 * client that joined before the first publication keeps its position: no restart frame when
 * the first publication comes, and a recovery `since` that epoch and offset 0 replays it.
 * 100,000 such channels add at most 16 MB of heap on the memory broker. On the memory broker;
 * idle-state-redis.test.ts runs the same on Redis.
 */
import t from 'tap'
import { MemoryHistory } from '../../plugin/broker/memory/history-store.js'
import { memoryBroker } from '../../plugin/index.js'
import { startApp } from '../helpers/server.js'
import { bound, channelCount, collector, joinedBeforeFirstPublication, readMany } from './restart-helpers.js'

const limits = { size: 100, ttl: 60_000 }
const day = 24 * 3600_000

t.test('memory store: a read of a channel never published stores nothing and answers the epoch its first publication gets', async (t) => {
  let now = 10 * day + 1000
  const history = new MemoryHistory(() => now)
  const read = history.read('c', { last: 10 }, limits)
  t.same(read, { epoch: read.epoch, offset: 0, entries: [], complete: true })
  t.same(history.read('c', { after: 0 }, limits), read, 'after 0: complete')
  t.same(history.read('c', { after: 3 }, limits), { ...read, complete: false }, 'after an offset it never had: not complete')
  t.equal(history.size, 0, 'nothing stored')
  t.not(history.read('d', { last: 0 }, limits).epoch, read.epoch, 'each channel its own epoch')
  now += 3600_000
  t.equal(history.read('c', { last: 0 }, limits).epoch, read.epoch, 'the same epoch later in the period')
  t.same(history.append('c', 'x', limits), { offset: 1, epoch: read.epoch }, 'the first publication starts the stream in it')
  t.not(new MemoryHistory(() => now).read('c', { last: 0 }, limits).epoch, read.epoch, 'another store (a restart): another epoch')
  now += day
  t.equal(history.read('c', { last: 0 }, limits).epoch, read.epoch, 'a stream keeps its epoch across periods')
  t.not(history.read('e', { last: 0 }, limits).epoch, new MemoryHistory(() => now - day).read('e', { last: 0 }, limits).epoch)
  now += day + 1
  history.sweep(limits.ttl)
  t.equal(history.size, 0, 'swept after a day unused')
  const again = history.read('c', { last: 0 }, limits)
  t.not(again.epoch, read.epoch, 'a stream lost starts in a later period: another epoch')
  t.equal(history.append('c', 'y', limits).epoch, again.epoch)
})

t.test('memory broker: joined before the first publication, a client keeps its position', async (t) => {
  const shared = memoryBroker()
  await joinedBeforeFirstPublication(t, () => shared)
})

await t.test(`memory broker: ${channelCount} never-published channels read add less than 16 MB of heap`, async (t) => {
  const gc = collector()
  const node = await startApp({ heartbeat: false, history: true })
  t.teardown(() => node.app.close())
  await node.app.channels.history('warm-up')
  gc()
  const before = process.memoryUsage().heapUsed
  await readMany(node)
  gc()
  const added = process.memoryUsage().heapUsed - before
  t.ok(added < bound, `heap grew by ${(added / 1024 / 1024).toFixed(2)} MB`)
})
