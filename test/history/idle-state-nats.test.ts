/**
 * idle-state.test.ts on NATS: reads of never-published channels store nothing per channel (the
 * history stream's messages and bytes do not change; one base message per prefix), a client that
 * joined before the first publication keeps its position, and 20,000 such channels read leave
 * the stream as it was (the bound: nothing per channel, far below 16 MB for 100,000).
 */
import t from 'tap'
import { connect as natsConnect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { natsBroker } from '../../plugin/index.js'
import { NatsNames } from '../../plugin/broker/nats/names.js'
import { startApp } from '../helpers/server.js'
import { deleteStreams, natsUrl, uniquePrefix, withNats } from '../broker/nats/helpers.js'
import { joinedBeforeFirstPublication } from './restart-helpers.js'

const channels = 20_000

await withNats(t, async () => {
  t.test('NATS: joined before the first publication, a client keeps its position', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    await joinedBeforeFirstPublication(t, () => natsBroker({ servers: natsUrl, prefix }))
  })

  t.test(`NATS: ${channels} never-published channels read store nothing in JetStream`, async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const nc = await natsConnect({ servers: natsUrl })
    t.teardown(() => nc.close())
    const jsm = await jetstreamManager(nc)
    const names = new NatsNames(prefix)
    const node = await startApp({ broker: natsBroker({ servers: natsUrl, prefix }), heartbeat: false, history: true })
    t.teardown(() => node.app.close())
    await node.app.channels.history('warm-up')
    const before = (await jsm.streams.info(names.historyStream)).state
    t.equal(before.messages, 1, 'the stream holds the base only')
    const epochs = new Set<string>()
    for (let start = 0; start < channels; start += 1000) {
      const views = await Promise.all(Array.from({ length: 1000 }, async (_, i) => await node.app.channels.history(`never-${start + i}`, { last: 0 })))
      for (const view of views) epochs.add(view.epoch)
    }
    t.equal(epochs.size, channels, 'each channel its own epoch')
    const after = (await jsm.streams.info(names.historyStream)).state
    t.equal(after.messages, before.messages, `messages unchanged (${after.messages})`)
    t.equal(after.bytes, before.bytes, `bytes unchanged (${after.bytes})`)
    t.equal(after.num_subjects, 1, 'one subject: the base')
    const kv = await jsm.streams.list().next()
    t.ok(kv.filter((stream) => stream.config.name.includes(names.historyStream.replace(/-history$/, ''))).every((stream) => stream.state.messages < 10),
      'the buckets of the prefix hold nothing per channel either')
  })
})
