/**
 * idle-state.test.ts on Redis: reads of never-published channels store nothing per channel (one
 * small base key per hash slot at most), a flush changes their epoch, a client that joined
 * before the first publication keeps its position, and 100,000 such channels add less than
 * 16 MB to Redis' used_memory (on a private Redis, where nothing else writes).
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { redisBroker } from '../../plugin/index.js'
import { startApp } from '../helpers/server.js'
import { PrivateRedis, uniquePrefix, withRedis } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'
import { keysUnder } from './slots.js'
import { bound, channelCount, joinedBeforeFirstPublication, readMany } from './restart-helpers.js'

const day = 24 * 3600_000

await forEachTarget(t, async (t, target) => {
  t.test('Redis: joined before the first publication, a client keeps its position', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    await joinedBeforeFirstPublication(t, () => redisBroker({ ...target.broker, prefix }))
  })

  t.test('Redis: reads store nothing per channel; a flush changes the epoch of a never-published channel', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const node = await startApp({ broker: redisBroker({ ...target.broker, prefix }), heartbeat: false, history: true })
    t.teardown(() => node.app.close())
    const views = await Promise.all(Array.from({ length: 50 }, async (_, i) => await node.app.channels.history(`idle-${i}`)))
    t.equal(new Set(views.map((view) => view.epoch)).size, 50, 'each channel its own epoch')
    const keys = await keysUnder(target, prefix)
    t.same(keys.filter((key) => key.includes(':hist:')), [], 'no stream key')
    const bases = keys.filter((key) => key.includes(':hist-base:'))
    t.ok(bases.length > 0 && bases.length <= 50, `at most one base key per slot (${bases.length})`)
    const ttl = await target.admin.pttl(bases[0])
    t.ok(ttl > 23 * 3600_000 && ttl <= day, `a base expires a day after its last use (${ttl})`)
    t.equal((await node.app.channels.history('idle-0')).epoch, views[0].epoch, 'stable')
    await target.deleteKeys(prefix)
    t.not((await node.app.channels.history('idle-0')).epoch, views[0].epoch, 'a flush: another epoch')
  })
})

await withRedis(t, async () => {
  await t.test(`Redis: ${channelCount} never-published channels read add less than 16 MB to Redis`, async (t) => {
    const redis = await PrivateRedis.start(t)
    const admin = new Redis(redis.url)
    t.teardown(() => { admin.disconnect() })
    const node = await startApp({ broker: redisBroker({ url: redis.url, prefix: uniquePrefix() }), heartbeat: false, history: true })
    t.teardown(() => node.app.close())
    await node.app.channels.history('warm-up')
    const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])
    const before = await usedMemory()
    await readMany(node)
    const added = await usedMemory() - before
    t.ok(added < bound, `Redis used_memory grew by ${(added / 1024 / 1024).toFixed(2)} MB`)
    t.ok(await admin.dbsize() <= 16384 + 10, `keys: ${await admin.dbsize()} (one base per slot at most, and the node's own)`)
  })
})
