/**
 * stream-restart.test.ts on NATS: the history stream of the prefix is deleted (what losing the
 * server's store does) while sockets hold a history channel; each gets `subscribed` without an
 * id before the first publication of the new epoch, and the bundled client gets every
 * publication of it.
 */
import t from 'tap'
import { connect as natsConnect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { natsBroker } from '../../plugin/index.js'
import { NatsNames } from '../../plugin/broker/nats/names.js'
import { deleteStreams, natsUrl, uniquePrefix, withNats } from '../broker/nats/helpers.js'
import { afterLoss, holding } from './restart-helpers.js'

await withNats(t, async () => {
  t.test('NATS: the history stream is deleted while sockets hold a channel', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const state = await holding(t, natsBroker({ servers: natsUrl, prefix }))
    const nc = await natsConnect({ servers: natsUrl })
    t.teardown(() => nc.close())
    const jsm = await jetstreamManager(nc)
    await jsm.streams.delete(new NatsNames(prefix).historyStream)
    await afterLoss(t, state)
  })

  t.test('NATS: the history stream is purged while sockets hold a channel', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const state = await holding(t, natsBroker({ servers: natsUrl, prefix }))
    const nc = await natsConnect({ servers: natsUrl })
    t.teardown(() => nc.close())
    const jsm = await jetstreamManager(nc)
    await jsm.streams.purge(new NatsNames(prefix).historyStream)
    await afterLoss(t, state)
  })
})
