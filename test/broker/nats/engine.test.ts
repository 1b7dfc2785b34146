/**
 * The shared engine contract (test/broker/engine-contract.ts) on the NATS engine, as it runs on
 * memory and Redis in test/broker/engines.test.ts: one delivery per node, order, sends, history
 * order on every node, presence shared and a dead node's tracks reaped.
 */
import t from 'tap'
import { natsEngine } from '../../../plugin/broker/nats/broker.js'
import { engineContract } from '../engine-contract.js'
import { deleteStreams, natsUrl, uniquePrefix, withNats } from './helpers.js'

await withNats(t, async () => {
  await t.test('the NATS engine', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    await engineContract(t, () => natsEngine({ servers: natsUrl, prefix }))
  })
})
