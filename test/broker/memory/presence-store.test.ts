/**
 * The memory broker's presence store (plugin/broker/memory/presence-store.ts), through memoryBroker()
 * with plain nodes: what each node subscribed to a channel is told, the state, a node that
 * leaves with its tracks, and a dead node's tracks reaped.
 */
import t from 'tap'
import Fastify from 'fastify'
import { memoryBroker, type BrokerConnection, type BrokerNode, type PresenceBroker, type PresenceChanges } from '../../../plugin/index.js'
import { MemoryPresence } from '../../../plugin/broker/memory/presence-store.js'
import { MemoryBus } from '../../../plugin/broker/memory/transport.js'
import { encodePresence, presenceLeavesHead } from '../../../plugin/broker/envelope.js'
import type { EngineNode } from '../../../plugin/broker/parts.js'

type Told = Array<[string, PresenceChanges]>
const log = Fastify({ logger: false }).log

/** A node that records the presence changes it is told of (none when `deaf`: no presenceChanged). */
function node (id: string, deaf = false): { node: BrokerNode, told: Told } {
  const told: Told = []
  const base = { nodeId: id, deliver () {}, hasSession: () => false, log }
  return { told, node: deaf ? base : { ...base, presenceChanged: (channel, changes) => { told.push([channel, changes]) } } }
}

/** Connects `node` and subscribes it to `channels`, as the plugin does for its local subscribers. */
async function joined (broker: ReturnType<typeof memoryBroker>, node: BrokerNode, channels: string[]): Promise<BrokerConnection & PresenceBroker> {
  const connection = await broker.connect(node) as BrokerConnection & PresenceBroker
  for (const channel of channels) await connection.subscribe(channel)
  return connection
}

const track = (ref: string, key = ref): { ref: string, key: string, meta: string } => ({ ref, key, meta: '{}' })
const settled = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

t.test('changes reach every other node with a subscriber, never the sender; the state holds every node\'s tracks', async (t) => {
  const broker = memoryBroker()
  const a = node('a')
  const b = node('b')
  const deaf = node('deaf', true)
  const elsewhere = node('elsewhere')
  const onA = await joined(broker, a.node, ['room'])
  const onB = await joined(broker, b.node, ['room'])
  await joined(broker, deaf.node, ['room']) // a node without presenceChanged is skipped, not called
  await joined(broker, elsewhere.node, ['hall'])
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
  await settled()
  t.same(elsewhere.told, [], 'a node without a subscriber of the channel is not told')
})

t.test('a node that leaves the broker takes its tracks with it: the others are told, once per channel', async (t) => {
  const broker = memoryBroker()
  const a = node('a')
  const b = node('b')
  const onA = await joined(broker, a.node, [])
  const onB = await joined(broker, b.node, ['room', 'hall', 'yard'])
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

t.test('a dead node\'s tracks are reaped channel by channel, each leave published once', async (t) => {
  const bus = new MemoryBus()
  const presence = new MemoryPresence(bus)
  const heard: string[] = []
  const watcher: EngineNode = { nodeId: 'w', log, receive: (envelope) => heard.push(envelope), restore: async () => ({ channels: 0, sessions: 0 }) }
  const dead: EngineNode = { ...watcher, nodeId: 'dead', receive: () => {} }
  await bus.transport(watcher).subscribe([{ kind: 'channel', channel: 'room' }, { kind: 'channel', channel: 'hall' }])
  const store = presence.forNode(dead)
  const joins = (channel: string, refs: string[]): { joins: Array<ReturnType<typeof track>>, leaves: string[], envelope: string } => {
    const changes = { joins: refs.map((ref) => track(ref)), leaves: [] }
    return { ...changes, envelope: encodePresence('dead', channel, changes) }
  }
  await store.write({ channels: new Map([['room', joins('room', ['d1', 'd2'])], ['hall', joins('hall', ['d3'])]]), forget: [] })
  await presence.forNode(watcher).write({ channels: new Map([['room', { joins: [track('w1')], leaves: [], envelope: 'w' }]]), forget: [] })
  t.same((await store.nodes()).sort(), ['dead', 'w'])
  await settled()
  heard.length = 0

  const reaper = presence.forNode(watcher)
  t.equal(await reaper.reap('dead', (channel) => presenceLeavesHead('dead', channel)), 3, 'three tracks removed')
  t.equal(await reaper.reap('dead', (channel) => presenceLeavesHead('dead', channel)), 0, 'a second reaper finds nothing')
  await settled()
  t.same(heard, [`${presenceLeavesHead('dead', 'room')}d1\nd2`, `${presenceLeavesHead('dead', 'hall')}d3`], 'one leave envelope per channel')
  t.same(await reaper.list('room'), [track('w1')], 'the live node\'s track stays')
  t.same(await reaper.list('hall'), [])
  t.same(await reaper.nodes(), ['w'], 'the dead node is off the list')
})
