/**
 * `fastify.channels.ask` across two nodes (test/requests/helpers.ts) on one Redis and on a
 * Redis Cluster, and on NATS.
 */
import t from 'tap'
import { natsBroker, redisBroker } from '../../plugin/index.js'
import { deleteStreams, natsUrl, uniquePrefix as uniqueNatsPrefix, withNats } from '../broker/nats/helpers.js'
import { uniquePrefix } from '../redis/helpers.js'
import { forEachTarget } from '../redis/targets.js'
import { crossNodeAskSuite } from './helpers.js'

await forEachTarget(t, async (t, target) => {
  const prefix = uniquePrefix()
  t.teardown(() => target.deleteKeys(prefix))
  await crossNodeAskSuite(t, () => redisBroker({ ...target.broker, prefix }))
})

// the NATS engine: user and reply topics are channel names starting with a space, encoded as subjects
await t.test('NATS', async (t) => {
  await withNats(t, async () => {
    const prefix = uniqueNatsPrefix()
    t.teardown(() => deleteStreams(prefix))
    await crossNodeAskSuite(t, () => natsBroker({ servers: natsUrl, prefix }))
  })
})
