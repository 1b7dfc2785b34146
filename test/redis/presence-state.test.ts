/**
 * Presence over the Redis engine with nodes in this process, on one Redis and on a Redis
 * Cluster: two nodes sharing one state, a clean close that sends leaves at once, and one turn's tracks in channels
 * on three shards (written per slot), every key in its channel's slot or the node-wide one; on
 * one Redis, a Redis that dies and comes back empty (every node writes its tracks again and
 * every mirror is read again).
 */
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { RedisKeys } from '../../plugin/broker/redis/keys.js'
import { nextId } from '../helpers/server.js'
import { keysUnder, shardOf, slotOf } from '../history/slots.js'
import { canonical, Observer, presenceHandlers } from '../presence/helpers.js'
import { PrivateRedis, startNode, uniquePrefix, withRedis } from './helpers.js'
import { forEachTarget } from './targets.js'

/** `joinAll` tracks the sender in each of `data.channels` in one turn: one write with every channel. */
function joinAll (app: FastifyInstance): void {
  presenceHandlers(app)
  app.channels.on('message', { event: 'joinAll' }, async (socket, data) => {
    const { channels, key } = data as { channels: string[], key: string }
    await Promise.all(channels.map(async (channel) => await socket.track(channel, key)))
  })
}

await forEachTarget(t, async (t, target) => {
  t.test('two nodes share one state; a node that closes sends its leaves at once', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const a = await startNode(t, { ...target.broker, prefix }, presenceHandlers, { presence: true })
    const b = await startNode(t, { ...target.broker, prefix }, presenceHandlers, { presence: true })
    const onA = await Observer.join(a.url, 'room')
    const onB = await Observer.join(b.url, 'room')
    t.teardown(() => { onA.client.close(); onB.client.close() })
    await onA.track('ann', { on: 'a' })
    await onB.track('bob', { on: 'b' })
    await onA.track('ann', { on: 'a', away: true })
    await onB.until((s) => s.ann?.[0].meta !== undefined && (s.ann[0].meta as { away?: boolean }).away === true && s.bob !== undefined, 'both, ann re-tracked')
    await onA.equals(onB.state)
    t.same(canonical(await a.app.channels.presence('room')), canonical(onB.state))
    t.same(canonical(await b.app.channels.presence('room')), canonical(onB.state))
    t.same(await a.app.channels.presence('empty'), {}, 'a channel nobody tracks')
    await a.app.close()
    await onB.until((s) => s.ann === undefined && s.bob !== undefined, 'ann leaves with her node', 3000)
    t.same(Object.keys(await b.app.channels.presence('room')), ['bob'])
  })

  t.test('one turn\'s tracks in channels on three shards: seen everywhere; keys in their slots; none left after close', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => target.deleteKeys(prefix))
    const a = await startNode(t, { ...target.broker, prefix }, joinAll, { presence: true })
    const b = await startNode(t, { ...target.broker, prefix }, presenceHandlers, { presence: true })
    // on a 3-master cluster, room, race and h-room lie on three shards; the braces test the hash tags
    const channels = ['room', 'race', 'h-room', '}p', '{p}']
    const watchers = await Promise.all(channels.map(async (channel) => await Observer.join(b.url, channel)))
    const member = await Observer.join(a.url, channels[0])
    t.teardown(() => { for (const observer of [...watchers, member]) observer.client.close() })
    for (const channel of channels.slice(1)) await member.client.subscribe(channel)
    await member.client.request({ type: 'message', event: 'joinAll', data: { channels, key: 'ann' }, id: nextId() })
    for (const watcher of watchers) await watcher.until((s) => s.ann !== undefined, `ann in ${watcher.channel}`)
    for (const channel of channels) t.same(Object.keys(await b.app.channels.presence(channel)), ['ann'], `${channel}: in Redis`)

    const names = new RedisKeys(prefix)
    const written = await keysUnder(target, prefix)
    const nodeWide = [names.presenceNodes, ...written.filter((key) => key.startsWith(`{${prefix}}:presence-node:`))]
    t.same(written.filter((key) => key.includes('presence')), [...channels.map((channel) => names.presence(channel)), ...nodeWide].sort())
    if (target.name === 'cluster') {
      const { admin } = target
      t.equal(new Set(await Promise.all(channels.slice(0, 3).map(async (channel) => await shardOf(admin, names.channel(channel))))).size, 3, 'three shards')
      for (const channel of channels) t.equal(await slotOf(admin, names.presence(channel)), await slotOf(admin, names.channel(channel)), `${channel}: the hash in the channel's slot`)
      for (const key of nodeWide) t.equal(await slotOf(admin, key), await slotOf(admin, names.nodes), `${key} in the node-wide slot`)
    }

    await a.app.close()
    for (const watcher of watchers) await watcher.until((s) => s.ann === undefined, `ann leaves ${watcher.channel} with her node`, 3000)
    t.same((await keysUnder(target, prefix)).filter((key) => key.includes('presence')), [], 'a clean close leaves no presence key')
  })
})

await withRedis(t, async () => {
  t.test('Redis restarted empty: tracks are written again and every node converges', async (t) => {
    const redis = await PrivateRedis.start(t)
    const prefix = uniquePrefix()
    const a = await startNode(t, { url: redis.url, prefix, nodeTtl: 1000 }, presenceHandlers, { presence: true })
    const b = await startNode(t, { url: redis.url, prefix, nodeTtl: 1000 }, presenceHandlers, { presence: true })
    const onA = await Observer.join(a.url, 'room')
    const onB = await Observer.join(b.url, 'room')
    t.teardown(() => { onA.client.close(); onB.client.close() })
    await onA.track('ann')
    await onB.track('bob')
    await onA.until((s) => s.ann !== undefined && s.bob !== undefined, 'both before the outage')

    await redis.kill()
    await onA.track('ann', { during: true }) // local at once; shared when Redis is back
    await onA.until((s) => (s.ann?.[0].meta as { during?: boolean } | undefined)?.during === true, 'a local change while Redis is down')
    await redis.restart()

    await onB.until((s) => (s.ann?.[0].meta as { during?: boolean } | undefined)?.during === true && s.bob !== undefined,
      'B sees the change made during the outage', 15000)
    await onA.equals(onB.state, 15000)
    t.same(canonical(await a.app.channels.presence('room')), canonical(onB.state), 'Redis holds both tracks again')
    t.equal(Object.keys(onB.state).length, 2)
  })
})
