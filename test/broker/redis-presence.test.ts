/**
 * The Redis presence store: its envelope, two nodes in this process sharing one state, a
 * clean close that sends leaves at once, and a Redis that dies and comes back empty (every
 * node writes its tracks again and every mirror is read again).
 */
import t from 'tap'
import { decodePresenceEnvelope, encodePresenceEnvelope } from '../../plugin/broker/redis-presence-envelope.js'
import { canonical, Observer, presenceHandlers } from '../presence/helpers.js'
import { deleteKeys, PrivateRedis, startNode, uniquePrefix, withRedis } from '../redis/helpers.js'

t.test('the presence envelope round-trips, and bad text is refused', async (t) => {
  const changes = {
    joins: [{ ref: 'r1', key: 'ann\nsmith "x"', meta: '{"a":"line\\nbreak"}' }, { ref: 'r2', key: 'bob', meta: '{}' }],
    leaves: ['r0', 'r9']
  }
  const text = encodePresenceEnvelope('node-1', 'room', changes)
  t.same(decodePresenceEnvelope(text), { nodeId: 'node-1', channel: 'room', changes })
  t.same(decodePresenceEnvelope(encodePresenceEnvelope('n', 'c', { joins: [], leaves: ['x'] }))?.changes, { joins: [], leaves: ['x'] })
  for (const bad of ['p', 'p\nn\nc', 'p\nn\nc\nx', 'p\nn\nc\n5\nr', 'p\nn\nc\n0\nr\n"k"', 'p\nn\nc\n0\nr\n{bad\n{}', 'x\nn\nc\n0']) {
    t.equal(decodePresenceEnvelope(bad), undefined, JSON.stringify(bad))
  }
})

await withRedis(t, async () => {
  t.test('two nodes share one state; a node that closes sends its leaves at once', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const a = await startNode(t, { prefix }, presenceHandlers, { presence: true })
    const b = await startNode(t, { prefix }, presenceHandlers, { presence: true })
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
