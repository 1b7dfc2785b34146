/**
 * Presence tracks that leave while the engine is down, on a Redis and a nats-server of the
 * test's own that keep their data across a kill (an append-only file; JetStream's store): the
 * store still holds those tracks when the engine is back, and the node has no track of its own
 * left to write in a channel it left. Its next re-assertion writes the leaves that failed, so
 * the stale tracks are gone from the store, the emptied channel too, and the tracks still
 * there are kept.
 */
import t, { type Test } from 'tap'
import { natsEngine } from '../../plugin/broker/nats/broker.js'
import { redisEngine } from '../../plugin/broker/redis/broker.js'
import type { BrokerEngine } from '../../plugin/broker/parts.js'
import type { PresenceTrack } from '../../plugin/broker/types.js'
import { eventually } from '../helpers/eventually.js'
import { withRedisServer } from '../redis/cluster-server.js'
import { PrivateRedis, uniquePrefix } from '../redis/helpers.js'
import { NatsServer, withNatsServer } from './nats/helpers.js'
import { standIn } from './stand-in-node.js'

const track = (ref: string): PresenceTrack => ({ ref, key: ref, meta: '{}' })
const refs = (tracks: PresenceTrack[]): string[] => tracks.map(({ ref }) => ref).sort()

interface Server {
  kill: () => Promise<void>
  restart: () => Promise<void>
}

async function leftWhileDown (t: Test, engine: () => BrokerEngine, server: Server): Promise<void> {
  const { link: a } = await standIn(t, engine())
  const { link: b } = await standIn(t, engine())
  await a.presenceUpdate('emptied', { joins: [track('gone')], leaves: [] })
  await a.presenceUpdate('kept', { joins: [track('stays'), track('leaving')], leaves: [] })
  t.same(refs(await b.presenceState('emptied')), ['gone'])
  t.same(refs(await b.presenceState('kept')), ['leaving', 'stays'])

  await server.kill()
  await t.rejects(a.presenceUpdate('emptied', { joins: [], leaves: ['gone'] }), 'the leave of the channel\'s last track fails while the engine is down')
  await t.rejects(a.presenceUpdate('kept', { joins: [], leaves: ['leaving'] }), 'and a leave in a channel that keeps a track')
  await server.restart()

  await eventually(async () => (await b.presenceState('emptied').catch(() => [track('?')])).length === 0, 20_000,
    'the emptied channel\'s stale track is removed once the engine is back')
  t.same(refs(await b.presenceState('kept')), ['stays'], 'the other channel keeps only the track still there')
}

await withRedisServer(t, 'the Redis presence outage test', async () => {
  t.test('redis: leaves that failed while Redis was down are written once it is back', async (t) => {
    const server = await PrivateRedis.start(t, { persistent: true })
    const prefix = uniquePrefix()
    await leftWhileDown(t, () => redisEngine({ url: server.url, prefix, commandTimeout: 1000 }), server)
  })
})

await withNatsServer(t, async () => {
  t.test('nats: leaves that failed while NATS was down are written once it is back', async (t) => {
    const server = await NatsServer.start(t)
    const prefix = uniquePrefix()
    await leftWhileDown(t, () => natsEngine({ servers: server.url, prefix, commandTimeout: 1000 }), { kill: async () => await server.kill(), restart: async () => await server.run() })
  })
})
