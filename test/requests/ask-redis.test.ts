/**
 * `fastify.channels.ask` across two nodes (test/requests/helpers.ts) on one Redis and on a
 * Redis Cluster.
 */
import t from 'tap'
import { redisBroker } from '../../plugin/index.js'
import { uniquePrefix } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'
import { crossNodeAskSuite } from './helpers.js'

await forEachTarget(t, async (t, target) => {
  const prefix = uniquePrefix()
  t.teardown(() => target.deleteKeys(prefix))
  await crossNodeAskSuite(t, () => redisBroker({ ...target.broker, prefix }))
})
