/**
 * The memory broker's presence store (plugin/broker/memory/presence-store.ts), through memoryBroker()
 * with plain nodes: what each node is told, the state, and a node that leaves with its tracks.
 */
import t from 'tap'
import { memoryBroker, type BrokerConnection, type BrokerNode, type PresenceBroker, type PresenceChanges } from '../../../plugin/index.js'

type Told = Array<[string, PresenceChanges]>

/** A node that records the presence changes it is told of (none when `deaf`: no presenceChanged). */
function node (id: string, deaf = false): { node: BrokerNode, told: Told } {
  const told: Told = []
  const base = { nodeId: id, deliver () {}, hasSession: () => false, log: { warn () {} } as unknown as BrokerNode['log'] }
  return { told, node: deaf ? base : { ...base, presenceChanged: (channel, changes) => { told.push([channel, changes]) } } }
}

const track = (ref: string, key = ref): { ref: string, key: string, meta: string } => ({ ref, key, meta: '{}' })
const settled = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

t.test('changes reach every other node, never the sender; the state holds every node\'s tracks', async (t) => {
  const broker = memoryBroker()
  const a = node('a')
  const b = node('b')
  const deaf = node('deaf', true)
  const onA = await broker.connect(a.node) as BrokerConnection & PresenceBroker
  const onB = await broker.connect(b.node) as BrokerConnection & PresenceBroker
  await broker.connect(deaf.node) // a node without presenceChanged is skipped, not called
  await onA.presenceUpdate('room', { joins: [track('a1', 'ann')], leaves: [] })
  await onB.presenceUpdate('room', { joins: [track('b1', 'bob')], leaves: [] })
  await settled()
  t.same(a.told, [['room', { joins: [track('b1', 'bob')], leaves: [] }]])
  t.same(b.told, [['room', { joins: [track('a1', 'ann')], leaves: [] }]])
  t.same(await onB.presenceState('room'), [track('a1', 'ann'), track('b1', 'bob')])
  await onA.presenceUpdate('room', { joins: [track('a2', 'ann')], leaves: ['a1'] })
  t.same(await onA.presenceState('room'), [track('b1', 'bob'), track('a2', 'ann')], 'leaves first, then joins')
  await onA.presenceUpdate('elsewhere', { joins: [], leaves: ['nobody'] })
  t.same(await onA.presenceState('elsewhere'), [], 'a leave in a channel without tracks changes nothing')
  t.same(await onA.presenceState('never'), [])
})

t.test('a node that leaves the broker takes its tracks with it: the others are told, once per channel', async (t) => {
  const broker = memoryBroker()
  const a = node('a')
  const b = node('b')
  const onA = await broker.connect(a.node) as BrokerConnection & PresenceBroker
  const onB = await broker.connect(b.node) as BrokerConnection & PresenceBroker
  await onA.presenceUpdate('room', { joins: [track('a1'), track('a2')], leaves: [] })
  await onA.presenceUpdate('hall', { joins: [track('a3')], leaves: [] })
  await onB.presenceUpdate('room', { joins: [track('b1')], leaves: [] })
  await onB.presenceUpdate('yard', { joins: [track('b2')], leaves: [] })
  await settled()
  b.told.length = 0
  await onA.close()
  await settled()
  t.same(b.told, [['room', { joins: [], leaves: ['a1', 'a2'] }], ['hall', { joins: [], leaves: ['a3'] }]], 'no change told for a channel without its tracks')
  t.same(await onB.presenceState('room'), [track('b1')])
  t.same(await onB.presenceState('hall'), [])
  t.same(await onB.presenceState('yard'), [track('b2')])
})
