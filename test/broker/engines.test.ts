/**
 * The shared engine contract (engine-contract.ts) on every engine here: the memory engine, the
 * Redis engine on one Redis and on a Redis Cluster, the NATS engine (skipped loudly without
 * NATS, a failure under CI=true). A new engine adds its own line.
 */
import t from 'tap'
import { memoryEngine } from '../../plugin/broker/memory/broker.js'
import { redisEngine } from '../../plugin/broker/redis/broker.js'
import { natsEngine } from '../../plugin/broker/nats/broker.js'
import { uniquePrefix } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'
import { engineContract } from './engine-contract.js'
import { deleteStreams, natsUrl, uniquePrefix as uniqueNatsPrefix, withNats } from './nats/helpers.js'

await t.test('the memory engine', async (t) => {
  const engine = memoryEngine()
  await engineContract(t, () => engine)
})

await t.test('the Redis engine', async (t) => {
  await forEachTarget(t, async (t, target) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    await engineContract(t, () => redisEngine({ ...target.broker, prefix }))
  })
})

await t.test('the NATS engine', async (t) => {
  await withNats(t, async () => {
    const prefix = uniqueNatsPrefix()
    t.teardown(() => deleteStreams(prefix))
    await engineContract(t, () => natsEngine({ servers: natsUrl, prefix }))
  })
})
