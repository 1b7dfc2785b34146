/**
 * The Redis history store driven directly (no node, no socket), on one Redis and on a Redis
 * Cluster: offsets and one epoch per stream; the epoch a never-published channel answers is the
 * one its first publication gets, and such a read stores nothing of the channel; `after` and
 * `last` reads; the size and ttl limits, and the 24 hours the epoch and top offset outlive the
 * entries; an append Redis gets after its deadline is refused with a LateError and stores
 * nothing; a channel's keys and its slot's base key lie in the channel's slot (a short decimal
 * hash tag), one base per slot. The fast companion of history-store.test.ts, which runs nodes.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { historyStateTtl, type HistoryLimits } from '../../../plugin/broker/types.js'
import { RedisClock } from '../../../plugin/broker/redis/clock.js'
import { RedisHistoryStore } from '../../../plugin/broker/redis/history-store.js'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { Link } from '../../../plugin/broker/redis/link.js'
import { keySlot } from '../../../plugin/broker/redis/slot.js'
import { LateError } from '../../../plugin/broker/redis/transport.js'
import { eventually, redisUrl, uniquePrefix } from '../../redis/helpers.js'
import { forEachTarget, type Target } from '../../redis/targets.js'
import { measuredClock, pubSubOf, scriptedConnection } from './scripted-connection.js'

/** A store on a connection of its own; its clock has read Redis' time unless `clock: false`. */
async function storeOf (t: Test, target: Target, prefix: string, budget = 2000, clock = true): Promise<RedisHistoryStore> {
  const redis = await scriptedConnection(t, target)
  const redisClock = clock ? await measuredClock(redis) : new RedisClock()
  return new RedisHistoryStore(new Link(redis, 2000, () => {}), new RedisKeys(prefix), pubSubOf(target), redisClock, budget)
}

/** What `promise` rejects with (undefined when it resolves). */
async function failure (promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (err: unknown) => err)
}

const limits: HistoryLimits = { size: 10, ttl: 60_000 }
const hour = 3600_000

/** Every key under `prefix`, sorted. */
async function keysOf (target: Target, prefix: string): Promise<string[]> {
  return (await target.keys(`${prefix}:*`)).sort()
}

/** The base key of the slot of `channel`'s names, by the rule history-store.ts states: the smallest decimal tag in that slot. */
function baseOf (names: RedisKeys, channel: string): string {
  const slot = keySlot(names.historyMeta(channel))
  let n = 0
  while (keySlot(String(n)) !== slot) n++
  return names.historyBase(String(n))
}

await forEachTarget(t, async (t, target) => {
  t.test('a channel never published: offset 0 and the epoch its first publication gets; the read stores only its slot\'s base', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix)
    const first = await store.read('room', { last: 10 }, limits)
    t.match(first, { epoch: /^[0-9a-f]{16}$/, offset: 0, complete: true, entries: [] })
    t.same(await store.read('room', { after: 0 }, limits), { ...first, complete: true }, 'after 0: nothing missed')
    t.same(await store.read('room', { after: 3 }, limits), { ...first, complete: false }, 'after an offset it never reached: not complete')
    t.same(await store.read('room', { last: 0 }, limits), first)
    const base = baseOf(names, 'room')
    t.same(await keysOf(target, prefix), [base], 'nothing of the channel, only the slot\'s base')
    t.match(await target.admin.get(base), /^[A-Za-z0-9_-]{12}$/, 'a random base of 9 bytes in base64url')
    const baseTtl = await target.admin.pttl(base)
    t.ok(baseTtl > 23 * hour && baseTtl <= 24 * hour, `the base outlives its last use by 24 h (${baseTtl})`)
    const other = await store.read('race', { last: 10 }, limits)
    t.not(other.epoch, first.epoch, 'another channel, another epoch')

    t.same(await store.append('room', { entry: 'e1', head: 'h|' }, limits), { offset: 1, epoch: first.epoch }, 'the first publication takes the epoch the reads answered')
    t.same(await store.read('room', { last: 10 }, limits), { epoch: first.epoch, offset: 1, complete: true, entries: [{ offset: 1, entry: 'e1' }] })
  })

  t.test('appends take dense offsets in one epoch; after and last read what was asked', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix)
    const heard: string[] = []
    if (target.name === 'redis') {
      const listener = new Redis(redisUrl)
      t.teardown(() => { listener.disconnect() })
      listener.on('message', (_channel: string, text: string) => heard.push(text))
      await listener.subscribe(names.channel('room'))
    }
    const { epoch } = await store.append('room', { entry: 'a', head: 'h|' }, limits)
    t.same(await store.append('room', { entry: 'b', head: 'h|' }, limits), { offset: 2, epoch })
    t.same(await store.append('room', { entry: 'c', head: 'h|' }, limits), { offset: 3, epoch })
    const all = [{ offset: 1, entry: 'a' }, { offset: 2, entry: 'b' }, { offset: 3, entry: 'c' }]
    t.same(await store.read('room', { after: 0 }, limits), { epoch, offset: 3, complete: true, entries: all })
    t.same(await store.read('room', { after: 1 }, limits), { epoch, offset: 3, complete: true, entries: all.slice(1) })
    t.same(await store.read('room', { after: 3 }, limits), { epoch, offset: 3, complete: true, entries: [] })
    t.same(await store.read('room', { after: 4 }, limits), { epoch, offset: 3, complete: false, entries: [] }, 'after an offset beyond the top')
    t.same(await store.read('room', { last: 1 }, limits), { epoch, offset: 3, complete: true, entries: all.slice(2) })
    t.same(await store.read('room', { last: 2 }, limits), { epoch, offset: 3, complete: true, entries: all.slice(1) })
    t.same(await store.read('room', { last: 9 }, limits), { epoch, offset: 3, complete: true, entries: all })
    if (target.name === 'redis') {
      await eventually(() => heard.length === 3, 2000, 'the three publications heard')
      t.same(heard, [`h|1\n${epoch}\na`, `h|2\n${epoch}\nb`, `h|3\n${epoch}\nc`], 'each published on the channel: head, offset, epoch, entry')
    }
    t.same(await keysOf(target, prefix), [baseOf(names, 'room'), names.historyLog('room'), names.historyMeta('room')].sort())
  })

  t.test('size and ttl: the log keeps the last size entries for ttl; the epoch and top offset outlive them by 24 h', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix)
    const small: HistoryLimits = { size: 2, ttl: 60_000 }
    for (const entry of ['a', 'b', 'c', 'd']) await store.append('room', { entry, head: 'h|' }, small)
    t.equal(await target.admin.xlen(names.historyLog('room')), 2)
    const { epoch } = await store.read('room', { last: 0 }, small)
    t.same(await store.read('room', { last: 5 }, small), { epoch, offset: 4, complete: true, entries: [{ offset: 3, entry: 'c' }, { offset: 4, entry: 'd' }] })
    t.same(await store.read('room', { after: 1 }, small), { epoch, offset: 4, complete: false, entries: [] }, 'entry 2 is gone: all or nothing')
    t.same(await store.read('room', { after: 2 }, small), { epoch, offset: 4, complete: true, entries: [{ offset: 3, entry: 'c' }, { offset: 4, entry: 'd' }] })
    const logTtl = await target.admin.pttl(names.historyLog('room'))
    t.ok(logTtl > 50_000 && logTtl <= 60_000, `the log expires ttl after the last entry (${logTtl})`)
    const metaTtl = await target.admin.pttl(names.historyMeta('room'))
    t.ok(metaTtl > 23 * hour && metaTtl <= historyStateTtl, `the meta hash outlives its last use by 24 h (${metaTtl})`)

    await target.admin.pexpire(names.historyMeta('room'), 60_000)
    await store.read('room', { last: 1 }, small)
    t.ok(await target.admin.pttl(names.historyMeta('room')) > 23 * hour, 'a read extends it again')

    const long: HistoryLimits = { size: 2, ttl: 48 * hour }
    await store.append('long', { entry: 'x', head: 'h|' }, long)
    t.ok(await target.admin.pttl(names.historyMeta('long')) > 47 * hour, 'with a ttl longer than 24 h, the meta hash lives as long as the entries')
    await target.admin.pexpire(names.historyMeta('long'), 60_000)
    await store.read('long', { last: 1 }, long)
    t.ok(await target.admin.pttl(names.historyMeta('long')) > 47 * hour, 'and a read extends it by that ttl')
    await store.read('fresh', { last: 1 }, long)
    t.ok(await target.admin.pttl(baseOf(names, 'fresh')) > 47 * hour, 'the base too')

    await new Promise((resolve) => setTimeout(resolve, 20))
    const expired: HistoryLimits = { size: 2, ttl: 5 }
    t.same(await store.read('room', { last: 5 }, expired), { epoch, offset: 4, complete: true, entries: [] }, 'entries older than the read\'s ttl are left out')
    t.same(await store.read('room', { after: 2 }, expired), { epoch, offset: 4, complete: false, entries: [] }, 'and cannot be recovered')
  })

  t.test('an append Redis gets after its deadline: a LateError, nothing stored', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const late = await storeOf(t, target, prefix, -1000)
    t.ok(await failure(late.append('room', { entry: 'late', head: 'h|' }, limits)) instanceof LateError)
    t.same(await keysOf(target, prefix), [], 'no stream, no base')
    const unmeasured = await storeOf(t, target, prefix, -1000, false)
    t.match(await unmeasured.append('room', { entry: 'x', head: 'h|' }, limits), { offset: 1 }, 'before the clock is measured there is no deadline')
    const inTime = await storeOf(t, target, prefix, 2000)
    t.match(await inTime.append('room', { entry: 'y', head: 'h|' }, limits), { offset: 2 })
    t.ok(await failure(late.append('room', { entry: 'late again', head: 'h|' }, limits)) instanceof LateError)
    t.equal(await target.admin.xlen(names.historyLog('room')), 2)
    t.match(await inTime.read('room', { after: 0 }, limits), { offset: 2, entries: [{ entry: 'x' }, { entry: 'y' }] })
  })

  t.test('a channel\'s keys and its slot\'s base lie in the channel\'s slot; one base per slot', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const names = new RedisKeys(prefix)
    const store = await storeOf(t, target, prefix)
    // x}1 and x}2 share the tag x, so one slot; the others spread over the shards of a cluster
    const channels = ['room', 'race', 'h-room', '}h', '{h}', 'x}1', 'x}2']
    const epochs = new Set<string>()
    for (const channel of channels) {
      const { epoch } = await store.append(channel, { entry: channel, head: 'h|' }, limits)
      epochs.add(epoch)
      const slot = keySlot(names.channel(channel))
      for (const key of [names.historyMeta(channel), names.historyLog(channel), baseOf(names, channel)]) t.equal(keySlot(key), slot, `${key} in the slot of ${channel}`)
      t.same(await store.read(channel, { after: 0 }, limits), { epoch, offset: 1, complete: true, entries: [{ offset: 1, entry: channel }] })
    }
    t.equal(epochs.size, channels.length, 'an epoch per channel, also two in one slot')
    const bases = (await keysOf(target, prefix)).filter((key) => key.includes(':hist-base:'))
    t.same(bases, [...new Set(channels.map((channel) => baseOf(names, channel)))].sort(), 'one base per slot used, under its smallest decimal tag')
    t.equal(bases.length, channels.length - 1)
  })
})
