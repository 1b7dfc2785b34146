/**
 * The shared engine contract (engine-contract.ts) on every engine here: the memory engine, the
 * Redis engine on one Redis and on a Redis Cluster. A new engine adds its own line.
 */
import t from 'tap'
import { memoryEngine } from '../../plugin/broker/memory/broker.js'
import { redisEngine } from '../../plugin/broker/redis/broker.js'
import { uniquePrefix } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'
import { engineContract } from './engine-contract.js'

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
