/**
 * Presence upkeep, the core's side (plugin/broker/presence-sync.ts), on the memory engine's
 * stores: one write per turn with one envelope per channel, a node reaped while it stalled
 * writes its tracks again, a restore has the node re-assert and reload, a dead node's tracks
 * are reaped by the others, a failed write is repaired on the next tick, and a stop sends
 * every leave, also of tracks that left in the same turn.
 */
import t from 'tap'
import Fastify from 'fastify'
import { PresenceSync, presenceTickMs } from '../../plugin/broker/presence-sync.js'
import { decodeEnvelope } from '../../plugin/broker/envelope.js'
import { MemoryPresence } from '../../plugin/broker/memory/presence-store.js'
import { MemoryRegistry } from '../../plugin/broker/memory/registry-store.js'
import { MemoryBus } from '../../plugin/broker/memory/transport.js'
import type { EngineNode, PresenceStore, PresenceWrite, RegistryStore } from '../../plugin/broker/parts.js'
import type { BrokerNode, PresenceChanges } from '../../plugin/broker/types.js'
import { eventually } from '../helpers/eventually.js'

interface Line { level: number, msg: string, node?: string, tracks?: number, channels?: number }

const track = (ref: string, key = ref): { ref: string, key: string, meta: string } => ({ ref, key, meta: '{}' })
const settled = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

/** One memory engine's bus and stores, and nodes on it whose presence upkeep ticks every 200 ms. */
function world (): {
  node: (nodeId: string) => Promise<{ sync: PresenceSync, store: PresenceStore, writes: PresenceWrite[], told: Array<[string, PresenceChanges]>, reloads: number[], lines: Line[], registryStore: RegistryStore }>
} {
  const bus = new MemoryBus()
  const presence = new MemoryPresence(bus)
  const registry = new MemoryRegistry(bus)
  return {
    async node (nodeId) {
      const lines: Line[] = []
      const log = Fastify({ logger: { level: 'debug', stream: { write (line: string) { lines.push(JSON.parse(line) as Line) } } } }).log
      const told: Array<[string, PresenceChanges]> = []
      const reloads: number[] = []
      const node: BrokerNode = {
        nodeId,
        log,
        deliver () {},
        hasSession: () => false,
        presenceChanged: (channel, changes) => told.push([channel, changes]),
        presenceReload: () => reloads.push(Date.now())
      }
      const engineNode: EngineNode = {
        nodeId,
        log,
        receive: (text) => {
          const envelope = decodeEnvelope(text)
          if (envelope?.kind === 'presence') sync.receive(envelope.nodeId, envelope.channel, envelope.changes)
        },
        restore: async () => ({ channels: 0, sessions: 0 })
      }
      await bus.transport(engineNode).subscribe([{ kind: 'channel', channel: 'room' }, { kind: 'channel', channel: 'hall' }])
      const registryStore: RegistryStore = { ...registry.forNode(nodeId), ttl: 1000 }
      await registryStore.register([])
      const inner = presence.forNode(engineNode)
      const writes: PresenceWrite[] = []
      const store: PresenceStore = { ...inner, write: async (change) => { writes.push(change); await inner.write(change) } }
      const sync = new PresenceSync(store, registryStore, node, 'memory')
      return { sync, store, writes, told, reloads, lines, registryStore }
    }
  }
}

t.test('the tick follows the TTL: leaves of a dead node go out within 12 s at the default 10 s', async (t) => {
  t.same([10_000, 5000, 1000, 500, undefined].map(presenceTickMs), [2000, 1000, 200, 200, 2000])
})

t.test('one turn\'s changes are one write with one envelope per channel; a track that came and went is never written', async (t) => {
  const { node } = world()
  const a = await node('a')
  const b = await node('b')
  await Promise.all([
    a.sync.update('room', { joins: [track('a1', 'ann')], leaves: [] }),
    a.sync.update('hall', { joins: [track('a2', 'ann')], leaves: [] }),
    a.sync.update('room', { joins: [track('a3', 'flash')], leaves: [] }),
    a.sync.update('room', { joins: [], leaves: ['a3'] })
  ])
  t.equal(a.writes.length, 1, 'one write')
  t.same([...a.writes[0].channels.keys()], ['room', 'hall'])
  t.same(a.writes[0].channels.get('room')?.joins, [track('a1', 'ann')], 'flash never written')
  await settled()
  t.same(b.told, [['room', { joins: [track('a1', 'ann')], leaves: [] }], ['hall', { joins: [track('a2', 'ann')], leaves: [] }]])
  t.same(a.told, [], 'never its own changes')
  t.same(await b.sync.state('room'), [track('a1', 'ann')])

  await a.sync.update('hall', { joins: [], leaves: ['a2'] })
  t.same(a.writes[1].forget, ['hall'], 'a channel without tracks any more is forgotten')
})

t.test('a node reaped while it stalled writes its tracks again and reloads; a dead node is reaped by the others', async (t) => {
  const { node } = world()
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1', 'ann')], leaves: [] })
  // b thinks a is dead (its registration expired while it stalled) and reaps it
  await a.registryStore.unregister()
  b.sync.start()
  t.teardown(() => b.sync.stop())
  await eventually(async () => (await b.sync.state('room')).length === 0, 3000, 'b reaps a\'s tracks')
  await eventually(() => b.lines.some((line) => line.msg === 'channels: removed the presence tracks of a node that stopped'), 1000, 'and logs it')
  t.match(b.lines.find((line) => line.tracks !== undefined), { node: 'a', tracks: 1 })

  await a.registryStore.register([]) // a thaws: alive again
  a.sync.start()
  t.teardown(() => a.sync.stop())
  await eventually(async () => (await b.sync.state('room')).length === 1, 3000, 'a writes its track again')
  t.ok(a.reloads.length > 0, 'and reads its channels again')
  t.ok(a.lines.some((line) => line.msg === 'channels: presence tracks of this node written to memory again'))
  await eventually(() => b.told.some(([, changes]) => changes.joins.some((joined) => joined.ref === 'a1')), 1000, 'b is told of the join again')
  t.same(await b.store.nodes(), ['a'], 'on the list again')
})

t.test('a restore, or a failed write, has the next tick re-assert every own track', async (t) => {
  const { node } = world()
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1', 'ann')], leaves: [] })
  a.sync.start()
  t.teardown(() => a.sync.stop())
  a.writes.length = 0
  a.sync.resync()
  await eventually(() => a.writes.length > 0 && a.reloads.length > 0, 2000, 'written again, and reloaded')
  t.same(a.writes[0].channels.get('room')?.joins, [track('a1', 'ann')])

  // a write that fails: the store refuses it, and the next tick writes everything again
  const other = await node('c')
  const down = { on: true }
  const refusing: PresenceStore = { ...other.store, write: async (change) => { if (down.on) throw new Error('store down'); await other.store.write(change) } }
  const c = new PresenceSync(refusing, other.registryStore, { nodeId: 'c', log: Fastify().log, deliver () {}, hasSession: () => false }, 'memory')
  await t.rejects(c.update('room', { joins: [track('c1')], leaves: [] }), /store down/)
  t.same((await b.sync.state('room')).map((each) => each.ref), ['a1'], 'not written')
  down.on = false
  c.start()
  t.teardown(() => c.stop())
  await eventually(async () => (await b.sync.state('room')).length === 2, 2000, 'the next tick wrote it')
})

t.test('stop() sends every leave, also of tracks that left in the same turn, and takes the node off the list', async (t) => {
  const { node } = world()
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1'), track('a2')], leaves: [] })
  await a.sync.update('hall', { joins: [track('a3')], leaves: [] })
  await settled()
  b.told.length = 0
  const queued = a.sync.update('room', { joins: [], leaves: ['a2'] }) // not yet written
  await a.sync.stop()
  await queued // it finds nothing left to write
  await settled()
  t.same(b.told, [['room', { joins: [], leaves: ['a1', 'a2'] }], ['hall', { joins: [], leaves: ['a3'] }]])
  t.same(await b.store.nodes(), [], 'off the list')
  t.same(await b.sync.state('room'), [])
})
