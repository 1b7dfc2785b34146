/**
 * The users suite (test/users/helpers.ts) on one Redis and on a Redis Cluster: two nodes, a
 * user's sessions on both, send / disconnect / sessions from either; and on NATS.
 */
import t from 'tap'
import { natsBroker, redisBroker } from '../../plugin/index.js'
import { deleteStreams, natsUrl, uniquePrefix as uniqueNatsPrefix, withNats } from '../broker/nats/helpers.js'
import { uniquePrefix } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'
import { crossNodeSuite } from './helpers.js'

await forEachTarget(t, async (t, target) => {
  const prefix = uniquePrefix()
  t.teardown(() => target.deleteKeys(prefix))
  await crossNodeSuite(t, () => redisBroker({ ...target.broker, prefix }))
})

// the NATS engine: user and reply topics are channel names starting with a space, encoded as subjects
await t.test('NATS', async (t) => {
  await withNats(t, async () => {
    const prefix = uniqueNatsPrefix()
    t.teardown(() => deleteStreams(prefix))
    // the CI's test files share the machine's NATS: a KV read has taken more than the default
    // 2 s there under load; this suite is about users, not about timeouts
    await crossNodeSuite(t, () => natsBroker({ servers: natsUrl, prefix, commandTimeout: 10_000 }))
  })
})
