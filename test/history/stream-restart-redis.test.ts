/**
 * stream-restart.test.ts on Redis, one and a Cluster: the keys of a history channel's stream
 * are deleted (what FLUSHALL, a restart without persistence or an expiry does) while sockets
 * hold it; each gets `subscribed` without an id before the first publication of the new
 * epoch, and the bundled client gets every publication of it.
 */
import t from 'tap'
import { redisBroker } from '../../plugin/index.js'
import { uniquePrefix } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'
import { afterLoss, holding } from './restart-helpers.js'

await forEachTarget(t, async (t, target) => {
  t.test('Redis: the keys of the stream are deleted while sockets hold it', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const state = await holding(t, redisBroker({ ...target.broker, prefix }))
    await target.deleteKeys(prefix) // what FLUSHALL, a restart without persistence or an expiry does to this prefix
    await afterLoss(t, state)
  })
})
