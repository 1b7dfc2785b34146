/**
 * The users suite (test/users/helpers.ts) on one Redis and on a Redis Cluster: two nodes, a
 * user's sessions on both, send / disconnect / sessions from either.
 */
import t from 'tap'
import { redisBroker } from '../../plugin/index.js'
import { uniquePrefix } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'
import { crossNodeSuite } from './helpers.js'

await forEachTarget(t, async (t, target) => {
  const prefix = uniquePrefix()
  t.teardown(() => target.deleteKeys(prefix))
  await crossNodeSuite(t, () => redisBroker({ ...target.broker, prefix }))
})
