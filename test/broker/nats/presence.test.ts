/**
 * Presence over NATS with three node processes: one state on all; a node killed with SIGKILL
 * has its members removed on the others (leaves sent) within 15 s with the default node TTL;
 * a node frozen with SIGSTOP past its TTL loses its members, then, resumed, re-asserts them.
 */
import t from 'tap'
import { canonical, Observer } from '../../presence/helpers.js'
import { ChildNatsNode, deleteStreams, uniquePrefix, withNats } from './helpers.js'

await withNats(t, async () => {
  const prefix = uniquePrefix()
  t.teardown(() => deleteStreams(prefix))
  // the default node TTL (10 s): the 15 s promise is about the defaults
  const nodes = await Promise.all([0, 1, 2].map(async () => await ChildNatsNode.start(t, { PREFIX: prefix })))
  const [killed, frozen, survivor] = nodes
  const watchers = await Promise.all(nodes.map(async (node) => await Observer.join(node.url, 'room')))
  const members = await Promise.all(nodes.map(async (node) => await Observer.join(node.url, 'room')))
  t.teardown(() => { for (const observer of [...watchers, ...members]) observer.client.close() })
  await members[0].track('killed-user', { node: 0 })
  await members[1].track('frozen-user', { node: 1 })
  await members[2].track('survivor-user', { node: 2 })
  const everyone = ['frozen-user', 'killed-user', 'survivor-user']

  t.test('one state on every node', async (t) => {
    for (const watcher of watchers) await watcher.until((s) => Object.keys(s).sort().join() === everyone.join(), 'all three members')
    const states = await Promise.all(nodes.map(async (node) => canonical(await node.presence('room'))))
    t.same(states[1], states[0])
    t.same(states[2], states[0])
    t.same(canonical(watchers[2].state), states[0], 'the diffs folded give fastify.channels.presence()')
    const late = await Observer.join(survivor.url, 'room')
    t.same(canonical(late.state), states[0], 'a late joiner gets it whole')
    late.client.close()
  })

  t.test('SIGKILL: members gone elsewhere within 15 s; SIGSTOP past the TTL: gone, then back', async (t) => {
    const frozenRef = watchers[2].state['frozen-user'][0].ref
    await killed.kill('SIGKILL')
    frozen.pause()
    const stoppedAt = Date.now()
    await watchers[2].until((s) => s['killed-user'] === undefined && s['frozen-user'] === undefined,
      'the killed and the frozen node\'s members leave', 15000)
    const gone = Date.now() - stoppedAt
    t.ok(gone <= 15000, `their leaves came ${gone} ms after the kill (<= 15000)`)
    t.same(Object.keys(await survivor.presence('room')), ['survivor-user'], 'fastify.channels.presence() agrees')

    frozen.resume()
    await watchers[2].until((s) => s['frozen-user'] !== undefined, 'the resumed node re-asserts its member', 10000)
    t.equal(watchers[2].state['frozen-user'][0].ref, frozenRef, 'under the same ref')
    await watchers[1].equals(watchers[2].state, 10000)
    t.same(Object.keys(await frozen.presence('room')).sort(), ['frozen-user', 'survivor-user'])
  })
})
