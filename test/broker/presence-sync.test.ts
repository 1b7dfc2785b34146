/**
 * Presence upkeep, the core's side (plugin/broker/presence-sync.ts), on the memory engine's
 * stores: one write per turn with one envelope per channel (none for a track that came and
 * went), writes one after another, a node reaped while it stalled writes its tracks again, a
 * restore has the node re-assert once and reload, a dead node's tracks are reaped by the others
 * (never a live node's, never its own), a failed write or re-assertion is repaired on a later
 * tick, ticks never overlap, the timer holds no process open and runs only where it is needed,
 * and a stop ends it and sends every leave, also of tracks that left in the same turn.
 */
import t, { type Test } from 'tap'
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

/** What a test can do to one node's store: count its calls, hold its answers, refuse its writes. */
interface Faults {
  /** store.nodes() calls: one per tick that ran */
  ticks: number
  /** while set, store.nodes() waits for it (a slow store) */
  holdNodes?: Promise<void>
  /** store.write() calls, the refused and held ones too */
  writesStarted: number
  /** while set, store.write() waits for it */
  holdWrites?: Promise<void>
  /** while true, store.write() throws */
  refuse: boolean
}

interface Node {
  sync: PresenceSync
  store: PresenceStore
  /** every write that reached the memory store */
  writes: PresenceWrite[]
  told: Array<[string, PresenceChanges]>
  reloads: number[]
  lines: Line[]
  registryStore: RegistryStore
  faults: Faults
}

/**
 * One memory engine's bus and stores, and nodes on it whose presence upkeep ticks every 200 ms
 * (a TTL of 1 s), or, with `ttl: undefined`, an engine whose nodes never expire (2 s ticks).
 * Every node stops when the test ends.
 */
function world (t: Test): { node: (nodeId: string, options?: { ttl?: number, hooks?: boolean }) => Promise<Node> } {
  const bus = new MemoryBus()
  const presence = new MemoryPresence(bus)
  const registry = new MemoryRegistry(bus)
  return {
    async node (nodeId, options = {}) {
      const { ttl, hooks = true } = 'ttl' in options ? options : { ...options, ttl: 1000 }
      const lines: Line[] = []
      const log = Fastify({ logger: { level: 'debug', stream: { write (line: string) { lines.push(JSON.parse(line) as Line) } } } }).log
      const told: Array<[string, PresenceChanges]> = []
      const reloads: number[] = []
      const node: BrokerNode = {
        nodeId,
        log,
        deliver () {},
        hasSession: () => false,
        ...hooks && {
          presenceChanged: (channel: string, changes: PresenceChanges) => told.push([channel, changes]),
          presenceReload: () => reloads.push(Date.now())
        }
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
      const registryStore: RegistryStore = { ...registry.forNode(nodeId), ttl }
      await registryStore.register([])
      const inner = presence.forNode(engineNode)
      const writes: PresenceWrite[] = []
      const faults: Faults = { ticks: 0, writesStarted: 0, refuse: false }
      const store: PresenceStore = {
        ...inner,
        write: async (change) => {
          faults.writesStarted++
          await faults.holdWrites
          if (faults.refuse) throw new Error('store down')
          writes.push(change)
          await inner.write(change)
        },
        nodes: async () => {
          faults.ticks++
          await faults.holdNodes
          return await inner.nodes()
        }
      }
      const sync = new PresenceSync(store, registryStore, node, 'memory')
      t.teardown(async () => {
        faults.refuse = false
        await sync.stop()
      })
      return { sync, store, writes, told, reloads, lines, registryStore, faults }
    }
  }
}

/** Resolves once `node` ticked `count` more times (every earlier-armed timer of the same period fired as often). */
async function ticks (node: Node, count: number, timeoutMs = 5000): Promise<void> {
  const target = node.faults.ticks + count
  await eventually(() => node.faults.ticks >= target, timeoutMs, `${count} ticks`)
}

/** A promise and the function that resolves it. */
function gate (): { promise: Promise<void>, open: () => void } {
  let open = (): void => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

/** Nodes a and b, where a tracks a1 and a2 in room and a3 in hall; b was told, and its record emptied. */
async function roomAndHall (t: Test): Promise<{ a: Node, b: Node }> {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1'), track('a2')], leaves: [] })
  await a.sync.update('hall', { joins: [track('a3')], leaves: [] })
  await settled()
  b.told.length = 0
  return { a, b }
}

t.test('the tick follows the TTL: leaves of a dead node go out within 12 s at the default 10 s', async (t) => {
  t.same([10_000, 5000, 1000, 500, undefined].map(presenceTickMs), [2000, 1000, 200, 200, 2000])
})

t.test('one turn\'s changes are one write with one envelope per channel; a track that came and went is never written', async (t) => {
  const { node } = world(t)
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
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1', 'ann')], leaves: [] })
  // b thinks a is dead (its registration expired while it stalled) and reaps it
  await a.registryStore.unregister()
  b.sync.start()
  await eventually(async () => (await b.sync.state('room')).length === 0, 3000, 'b reaps a\'s tracks')
  await eventually(() => b.lines.some((line) => line.msg === 'channels: removed the presence tracks of a node that stopped'), 1000, 'and logs it')
  t.match(b.lines.find((line) => line.tracks !== undefined), { node: 'a', tracks: 1 })

  await a.registryStore.register([]) // a thaws: alive again
  a.sync.start()
  await eventually(async () => (await b.sync.state('room')).length === 1, 3000, 'a writes its track again')
  t.ok(a.reloads.length > 0, 'and reads its channels again')
  t.ok(a.lines.some((line) => line.msg === 'channels: presence tracks of this node written to memory again'))
  await eventually(() => b.told.some(([, changes]) => changes.joins.some((joined) => joined.ref === 'a1')), 1000, 'b is told of the join again')
  t.same(await b.store.nodes(), ['a'], 'on the list again')
  const joinA1 = ['room', { joins: [track('a1', 'ann')], leaves: [] }]
  t.same(b.told, [joinA1, ['room', { joins: [], leaves: ['a1'] }], joinA1], 'b was told of the leave the reaping sent, then of the join')
  t.same(a.told, [], 'a ignored the leave of its own track, sent with its own id')
})

t.test('a restore, or a failed write, has the next tick re-assert every own track', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1', 'ann')], leaves: [] })
  a.sync.start()
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
  await eventually(async () => (await b.sync.state('room')).length === 2, 5000, 'the next tick wrote it')
})

t.test('stop() sends every leave, also of tracks that left in the same turn, and takes the node off the list', async (t) => {
  const { a, b } = await roomAndHall(t)
  const queued = a.sync.update('room', { joins: [], leaves: ['a2'] }) // not yet written
  await a.sync.stop()
  await queued // it finds nothing left to write
  await settled()
  t.same(b.told, [['room', { joins: [], leaves: ['a1', 'a2'] }], ['hall', { joins: [], leaves: ['a3'] }]])
  t.same(await b.store.nodes(), [], 'off the list')
  t.same(await b.sync.state('room'), [])
})

t.test('a leave whose write failed is written with the next re-assertion, also where the node has no track left in the channel, or none at all', async (t) => {
  const { a, b } = await roomAndHall(t)
  a.faults.refuse = true
  await t.rejects(a.sync.update('room', { joins: [], leaves: ['a2'] }), /store down/)
  await t.rejects(a.sync.update('hall', { joins: [], leaves: ['a3'] }), /store down/, 'hall is left without a track of a')
  t.same((await b.sync.state('hall')).map(({ ref }) => ref), ['a3'], 'the store still lists it meanwhile')
  a.faults.refuse = false
  a.writes.length = 0
  a.sync.start()
  await eventually(async () => (await b.sync.state('hall')).length === 0, 5000, 'the leave of hall written again')
  t.same((await b.sync.state('room')).map(({ ref }) => ref), ['a1'])
  t.same(a.writes.length, 1, 'in one write')
  t.same([...a.writes[0].channels].map(([channel, { joins, leaves }]) => [channel, joins.map(({ ref }) => ref), leaves]),
    [['room', ['a1'], ['a2']], ['hall', [], ['a3']]], 'the own tracks, and the leaves not written')
  t.same(a.writes[0].forget, ['hall'], 'the channel left without tracks is forgotten')
  await settled()
  t.same(b.told, [['room', { joins: [track('a1')], leaves: ['a2'] }], ['hall', { joins: [], leaves: ['a3'] }]], 'the other node is told of the leaves')
  await ticks(a, 2)
  t.same(a.writes.length, 1, 'and never again')

  // the node's last track anywhere leaves while the store is down: nothing of its own is left to write, yet the leave is
  a.faults.refuse = true
  await t.rejects(a.sync.update('room', { joins: [], leaves: ['a1'] }), /store down/)
  a.faults.refuse = false
  await eventually(async () => (await b.sync.state('room')).length === 0, 5000, 'the last leave written again')
  t.same([...a.writes[1].channels].map(([channel, { joins, leaves }]) => [channel, joins.length, leaves]), [['room', 0, ['a1']]])
})

t.test('the leaves of every failed write add up, and only leaves are kept: a failed join is written again as an own track, or not at all once it left', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1'), track('a2'), track('a3')], leaves: [] })
  await settled()
  b.told.length = 0
  a.faults.refuse = true
  await t.rejects(a.sync.update('room', { joins: [], leaves: ['a1'] }), /store down/)
  await t.rejects(a.sync.update('room', { joins: [], leaves: ['a2'] }), /store down/, 'a second failed leave in the same channel')
  await t.rejects(a.sync.update('hall', { joins: [track('h1')], leaves: [] }), /store down/, 'a failed join')
  a.faults.refuse = false
  await a.sync.update('hall', { joins: [], leaves: ['h1'] }) // it left again: hall has no own track, and nothing of it to write
  a.writes.length = 0
  a.sync.start()
  await eventually(() => a.writes.length > 0, 5000, 'written again')
  t.same([...a.writes[0].channels].map(([channel, { joins, leaves }]) => [channel, joins.map(({ ref }) => ref), leaves]),
    [['room', ['a3'], ['a1', 'a2']]], 'both leaves of room; nothing of hall')
  t.same((await b.sync.state('room')).map(({ ref }) => ref), ['a3'])
})

t.test('a re-assertion that fails keeps the leaves it carried for the next one', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1')], leaves: [] })
  a.faults.refuse = true
  await t.rejects(a.sync.update('room', { joins: [], leaves: ['a1'] }), /store down/)
  a.sync.start()
  await eventually(() => a.lines.some((line) => line.msg === 'channels: presence upkeep failed; retried on the next tick'), 5000, 'a re-assertion failed')
  a.faults.refuse = false
  await eventually(async () => (await b.sync.state('room')).length === 0, 5000, 'a later one wrote the leave')
})

t.test('stop() also sends the leaves whose write failed', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1')], leaves: [] })
  await a.sync.update('hall', { joins: [track('a2')], leaves: [] })
  a.faults.refuse = true
  await t.rejects(a.sync.update('hall', { joins: [], leaves: ['a2'] }), /store down/)
  a.faults.refuse = false
  await settled()
  b.told.length = 0
  await a.sync.stop()
  await settled()
  t.same(b.told, [['room', { joins: [], leaves: ['a1'] }], ['hall', { joins: [], leaves: ['a2'] }]])
  t.same(await b.sync.state('hall'), [])
})

t.test('without a TTL (nodes leave only by closing) the upkeep waits until the node uses presence: an app without it runs no timer', async (t) => {
  const { node } = world(t)
  // armed first: were start() to arm it, its timer would fire before the others' (same period)
  const idle = await node('idle', { ttl: undefined })
  const restored = await node('restored', { ttl: undefined })
  const reader = await node('reader', { ttl: undefined })
  idle.sync.start()
  restored.sync.start()
  restored.sync.resync() // an outage ended: it has to read its channels again, even before it used presence
  await reader.sync.state('room') // reading a channel's presence is using it
  await eventually(() => restored.reloads.length > 0 && reader.faults.ticks > 0, 10000, 'the 2 s ticks of the nodes that use presence')
  t.equal(idle.faults.ticks, 0, 'no tick on a node that never used presence')
  t.same(restored.writes, [], 'a node without tracks has none to write again')
  t.same(restored.lines.filter((line) => line.msg.includes('written to memory again')), [])
})

t.test('the upkeep\'s timer keeps no process alive: a node that is never stopped lets the process exit', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length
  const before = timers()
  a.sync.start()
  t.equal(timers(), before)
  await a.sync.stop()
})

t.test('a steady node writes nothing on its ticks; a restore writes every own track once, logs it and reloads once', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1', 'ann')], leaves: [] })
  await a.sync.update('hall', { joins: [track('a2', 'ann')], leaves: [] })
  a.sync.start()
  await ticks(a, 3)
  t.equal(a.writes.length, 2, 'in the store and on its list: nothing to write again')
  t.same(a.reloads, [], 'nor to read again')

  a.sync.resync()
  await eventually(() => a.writes.length === 3 && a.reloads.length > 0, 5000, 'written again')
  t.same([...a.writes[2].channels].map(([channel, { joins, leaves }]) => [channel, joins, leaves]),
    [['room', [track('a1', 'ann')], []], ['hall', [track('a2', 'ann')], []]])
  t.same(a.writes[2].forget, [], 'and forgets no channel')
  t.match(a.lines.find((line) => line.msg === 'channels: presence tracks of this node written to memory again'), { level: 30, channels: 2 })
  const reloads = a.reloads.length
  await ticks(a, 3)
  t.equal(a.writes.length, 3, 'once: the ticks after it write nothing')
  t.equal(a.reloads.length, reloads, 'and read nothing again')
  t.same((await b.sync.state('hall')), [track('a2', 'ann')])
})

t.test('a re-assertion that fails is logged and tried again on the next tick, though the node is still on the store\'s list', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  await a.sync.update('room', { joins: [track('a1')], leaves: [] })
  a.sync.start()
  a.faults.refuse = true
  a.sync.resync()
  await eventually(() => a.lines.some((line) => line.msg === 'channels: presence upkeep failed; retried on the next tick'), 5000, 'the failure logged')
  t.match(a.lines.find((line) => line.msg.startsWith('channels: presence upkeep failed')), { level: 20, err: { message: 'store down' } })
  t.same(a.reloads, [], 'nothing read again before the tracks are back')
  a.faults.refuse = false
  await eventually(() => a.writes.length === 2 && a.reloads.length > 0, 5000, 'written on a later tick')
  t.same(a.writes[1].channels.get('room')?.joins, [track('a1')])

  // a change's own write that fails: the node is still on the list, yet the next tick writes every track again
  a.faults.refuse = true
  await t.rejects(a.sync.update('room', { joins: [track('a2')], leaves: [] }), /store down/)
  a.faults.refuse = false
  await eventually(() => a.writes.length === 3, 5000, 'written on the next tick')
  t.same(a.writes[2].channels.get('room')?.joins, [track('a1'), track('a2')])
})

t.test('a live node\'s tracks are never reaped, and a node never reaps its own while its registration is lost', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1')], leaves: [] })
  await b.sync.update('room', { joins: [track('b1')], leaves: [] }) // both upkeeps armed
  await ticks(a, 3)
  await ticks(b, 1)
  t.same((await a.sync.state('room')).map(({ ref }) => ref).sort(), ['a1', 'b1'], 'both still there')
  t.same(b.told, [['room', { joins: [track('a1')], leaves: [] }]], 'b was told of no leave')

  // a's registration expired during a stall, and only a's upkeep runs (no other node that
  // could reap it): the registry refresh registers it again, its presence upkeep must not take
  // itself for dead meanwhile
  const other = world(t)
  const c = await other.node('c')
  const observer = await other.node('observer')
  await c.sync.update('room', { joins: [track('c1')], leaves: [] })
  await c.registryStore.unregister()
  await ticks(c, 3)
  t.same(await c.sync.state('room'), [track('c1')], 'c\'s track still there')
  t.same(observer.told, [['room', { joins: [track('c1')], leaves: [] }]], 'no leave went out')
  t.same(c.lines.filter((line) => line.msg.includes('removed the presence tracks')), [])
  await c.sync.stop()
})

t.test('a dead node without tracks left is taken off the list without a log line', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1')], leaves: [] })
  await a.sync.update('room', { joins: [], leaves: ['a1'] })
  await a.registryStore.unregister() // a dies with no track left
  b.sync.start()
  await eventually(async () => !(await a.store.nodes()).includes('a'), 5000, 'a reaped')
  t.same(b.lines.filter((line) => line.msg.includes('removed the presence tracks')), [], 'nothing removed, nothing said')
})

t.test('ticks never overlap: while the store is slow to answer, the ticks due meanwhile are skipped', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const witness = await node('witness')
  const slow = gate()
  a.faults.holdNodes = slow.promise
  a.sync.start()
  witness.sync.start() // armed after a: when it has ticked, a's timer fired as often
  await ticks(witness, 4)
  t.equal(a.faults.ticks, 1, 'one tick, still waiting for the store')
  a.faults.holdNodes = undefined
  slow.open()
  await ticks(a, 2) // and ticks go on once it answered
})

t.test('stop() ends the upkeep, however often it was armed, and presence used after it arms nothing', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const witness = await node('witness')
  await a.sync.update('room', { joins: [track('a1')], leaves: [] })
  await a.sync.state('room')
  a.sync.start()
  a.sync.resync()
  await a.sync.stop()
  await a.sync.state('room')
  const after = a.faults.ticks
  witness.sync.start()
  await ticks(witness, 4)
  t.equal(a.faults.ticks, after, 'no tick after stop()')
  t.same(a.reloads, [], 'nothing re-asserted or read again')
})

t.test('writes run one after another: a later one waits for the one on its way, also when that one fails', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  const slow = gate()
  a.faults.holdWrites = slow.promise
  const first = a.sync.update('room', { joins: [track('a1')], leaves: [] })
  await settled() // the first write is on its way
  const second = a.sync.update('room', { joins: [], leaves: ['a1'] })
  await settled()
  await settled()
  t.equal(a.faults.writesStarted, 1, 'the second waits')
  a.faults.refuse = true
  a.faults.holdWrites = undefined
  slow.open()
  await t.rejects(first, /store down/)
  await t.rejects(second, /store down/, 'the second started after the first failed')
  a.faults.refuse = false
  await a.sync.update('room', { joins: [track('a2')], leaves: [] })
  t.same(await b.sync.state('room'), [track('a2')], 'a failed write holds up none after it')
})

t.test('a channel whose only change came and went in the turn is not written; a turn with nothing left writes nothing', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await Promise.all([
    a.sync.update('room', { joins: [track('x1')], leaves: [] }),
    a.sync.update('room', { joins: [], leaves: ['x1'] })
  ])
  t.same(a.writes, [], 'no write at all')
  await Promise.all([
    a.sync.update('room', { joins: [track('x2')], leaves: [] }),
    a.sync.update('hall', { joins: [track('a1')], leaves: [] }),
    a.sync.update('room', { joins: [], leaves: ['x2'] })
  ])
  t.same([...a.writes[0].channels.keys()], ['hall'])
  t.same(a.writes[0].forget, [], 'nothing to forget: room was never written')
  await settled()
  t.same(b.told, [['hall', { joins: [track('a1')], leaves: [] }]])
})

t.test('the tracks written again are those still here: joins of later turns add up, a leave removes its track', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  for (const ref of ['a1', 'a2', 'a3']) await a.sync.update('room', { joins: [track(ref)], leaves: [] })
  await a.sync.update('room', { joins: [], leaves: ['a2'] })
  await a.sync.update('hall', { joins: [], leaves: ['never'] }) // a leave of a track it never had
  a.writes.length = 0
  a.sync.start()
  a.sync.resync()
  await eventually(() => a.writes.length > 0, 5000, 'written again')
  t.same([...a.writes[0].channels].map(([channel, { joins }]) => [channel, joins.map(({ ref }) => ref)]), [['room', ['a1', 'a3']]])
})

t.test('stop() writes no empty change for a channel whose track came and went in its last turn', async (t) => {
  const { node } = world(t)
  const a = await node('a')
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1')], leaves: [] })
  await settled()
  b.told.length = 0
  const joined = a.sync.update('hall', { joins: [track('x1')], leaves: [] })
  const left = a.sync.update('hall', { joins: [], leaves: ['x1'] })
  await a.sync.stop()
  await Promise.all([joined, left])
  await settled()
  t.same(b.told, [['room', { joins: [], leaves: ['a1'] }]])
})

t.test('a node without presence hooks (no tracker) takes changes and reloads without failing', async (t) => {
  const { node } = world(t)
  const a = await node('a', { hooks: false })
  const b = await node('b')
  await a.sync.update('room', { joins: [track('a1')], leaves: [] })
  await b.sync.update('room', { joins: [track('b1')], leaves: [] }) // told to a
  a.sync.resync() // re-asserts, then reloads
  await eventually(() => a.writes.length === 2, 5000, 'written again')
  await ticks(a, 2)
  t.same(a.lines.filter((line) => line.level >= 20 && line.msg.includes('failed')), [], 'no upkeep failure')
  t.equal(a.writes.length, 2, 'once')
})
