/**
 * The contract every broker engine keeps, as one suite any engine runs (engines.test.ts runs
 * it on the memory engine, one Redis and a Redis Cluster; a new engine adds itself there).
 * Nodes are stand-ins driven through the composed BrokerConnection, as the plugin drives them,
 * so what is checked is what the plugin relies on: one delivery per publication per node and
 * never back to its publisher, order, sessions found where they are, history publications in
 * one dense order on every node (their publisher included), presence shared and a dead node's
 * tracks reaped. `engine()` must return engines whose nodes form one server (one prefix).
 */
import Fastify from 'fastify'
import type { Test } from 'tap'
import { composeBroker } from '../../plugin/broker/compose.js'
import { encodePresence } from '../../plugin/broker/envelope.js'
import type { BrokerEngine, EngineNode } from '../../plugin/broker/parts.js'
import { sharesPresence, type BrokerConnection, type Delivery, type PresenceBroker } from '../../plugin/broker/types.js'
import { eventually } from '../redis/helpers.js'
import { StandInNode } from './stand-in-node.js'

let counter = 0

const frameOf = (channel: string, data: unknown): string => JSON.stringify({ type: 'message', event: 'e', channel, data })
const limits = { size: 50, ttl: 60_000 }

export async function engineContract (t: Test, engine: () => BrokerEngine): Promise<void> {
  async function node (t: Test, of = engine()): Promise<{ node: StandInNode, link: BrokerConnection }> {
    const stand = new StandInNode()
    const link = await composeBroker(of).connect(stand)
    t.teardown(() => link.close())
    return { node: stand, link }
  }

  /** What `node` got, the fences of `fenced` left out. */
  const got = (node: StandInNode): Delivery[] => node.deliveries.filter((delivery) => !(delivery.kind === 'all' && delivery.frame.startsWith('fence-')))

  /** A fence on the node-wide topic: once `to` has it, what `from` published before on that topic reached `to`. */
  async function fenced (from: BrokerConnection, to: StandInNode): Promise<void> {
    const fence = `fence-${++counter}`
    await from.publish({ kind: 'all', frame: fence })
    await eventually(() => to.deliveries.some((delivery) => delivery.kind === 'all' && delivery.frame === fence), 5000, 'the fence arrives')
  }

  t.test('transport: one delivery per publication per node, never back to its publisher, in order', async (t) => {
    const a = await node(t)
    const b = await node(t)
    const c = await node(t)
    for (const channel of ['x', 'y', 'z']) await b.link.subscribe(channel)
    await c.link.subscribe('z')
    await a.link.subscribe('x')
    const frames = ['fx', 'fy', 'fz']
    await a.link.publish({ kind: 'channels', channels: ['x', 'y', 'z'], frames, except: 'sender' })
    for (let i = 0; i < 100; i++) await a.link.publish({ kind: 'channels', channels: ['y'], frames: [String(i)] })
    // on a cluster, order holds per channel only: wait for the count, then look at the order
    await eventually(() => got(b.node).length >= 101 && got(c.node).length >= 1, 5000, 'every publication arrives')
    const multi = { kind: 'channels', channels: ['x', 'y', 'z'], frames, except: 'sender' }
    t.same(got(b.node).filter((delivery) => delivery.kind === 'channels' && delivery.channels.length === 3), [multi], 'b holds all three: once')
    t.same(got(b.node).flatMap((delivery) => delivery.kind === 'channels' && delivery.channels.length === 1 ? delivery.frames : []),
      Array.from({ length: 100 }, (_, i) => String(i)), 'in the order published')
    await fenced(a.link, b.node) // and the copies of the multi-channel publication had time to arrive
    t.equal(got(b.node).length, 101, 'nothing twice')
    t.same(got(c.node), [multi], 'c holds one of them: the whole publication')
    t.same(got(a.node), [], 'the publisher hears nothing of its own')

    await b.link.unsubscribe('y')
    await c.link.subscribe('y')
    await a.link.publish({ kind: 'channels', channels: ['y'], frames: ['gone'] })
    await eventually(() => got(c.node).length === 2, 5000, 'a node still subscribed gets it')
    await fenced(a.link, b.node)
    t.equal(got(b.node).length, 101, 'nothing after unsubscribing')
  })

  t.test('registry: a send reaches the node holding the session, after what was published before it', async (t) => {
    const a = await node(t)
    const b = await node(t)
    await b.link.subscribe('room')
    await b.link.addSession('s1')
    const published = a.link.publish({ kind: 'channels', channels: ['room'], frames: ['before'] })
    t.equal(await a.link.sendToSession('s1', 'hello'), true)
    await published
    await eventually(() => b.node.deliveries.length === 2, 5000, 'both arrive')
    t.same(b.node.deliveries, [{ kind: 'channels', channels: ['room'], frames: ['before'], except: undefined }, { kind: 'session', sessionId: 's1', frame: 'hello' }])
    t.equal(await a.link.sendToSession('nobody', 'x'), false)
    t.equal(await b.link.sendToSession('s1', 'x'), false, 'a node does not route to itself')
    await b.link.removeSession('s1')
    t.equal(await a.link.sendToSession('s1', 'x'), false, 'removed')
    await b.link.addSession('s2')
    await b.link.close()
    t.equal(await a.link.sendToSession('s2', 'x'), false, 'a closed node holds nothing')
  })

  t.test('history: one dense order on every node, the publishers\' too; reads all or nothing', async (t) => {
    const a = await node(t)
    const b = await node(t)
    if (a.link.publishHistory === undefined || a.link.readHistory === undefined || b.link.publishHistory === undefined) {
      t.pass('this engine keeps no history')
      return
    }
    const channel = `h-${++counter}`
    await a.link.subscribe(channel)
    await b.link.subscribe(channel)
    const appends: Array<Promise<number>> = []
    for (let i = 0; i < 30; i++) {
      appends.push(a.link.publishHistory(channel, frameOf(channel, `a${i}`), i === 0 ? 'sender' : undefined, limits))
      appends.push(b.link.publishHistory(channel, frameOf(channel, `b${i}`), undefined, limits))
    }
    const offsets = await Promise.all(appends)
    t.same([...offsets].sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i + 1), 'dense offsets from 1')
    await eventually(() => a.node.history.length === 60 && b.node.history.length === 60, 5000, 'every publication on both nodes')
    t.same(a.node.history.map((publication) => publication.offset), Array.from({ length: 60 }, (_, i) => i + 1), 'in offset order')
    t.same(b.node.history, a.node.history, 'the same on both')
    t.equal(new Set(a.node.history.map((publication) => publication.epoch)).size, 1, 'one epoch')
    const first = a.node.history.find((publication) => publication.frame.includes('"a0"'))
    t.match(first, { except: 'sender', frame: /"offset":\d+}$/ })

    const read = await b.link.readHistory?.(channel, { after: 55 }, limits)
    t.same(read, { epoch: a.node.history[0].epoch, offset: 60, complete: true, entries: a.node.history.slice(55).map(({ offset, frame, except }) => except === undefined ? { offset, frame } : { offset, frame, except }) })
    t.same((await a.link.readHistory(channel, { last: 3 }, limits)).entries.map((entry) => entry.offset), [58, 59, 60])
    t.same(await a.link.readHistory(channel, { after: 5 }, limits), { epoch: a.node.history[0].epoch, offset: 60, complete: false, entries: [] }, 'beyond size: nothing')
    t.match(await a.link.readHistory(`h-${++counter}`, { last: 0 }, limits), { offset: 0, entries: [], complete: true }, 'a new stream')
  })

  t.test('presence: shared by every node, told to the subscribed ones; a dead node\'s tracks reaped', async (t) => {
    const of = engine()
    const a = await node(t, of)
    const b = await node(t, of)
    const c = await node(t, of)
    if (!sharesPresence(a.link) || !sharesPresence(b.link)) {
      t.pass('this engine shares no presence')
      return
    }
    const channel = `p-${++counter}`
    await b.link.subscribe(channel)
    await a.link.presenceUpdate(channel, { joins: [{ ref: 'a1', key: 'ann', meta: '{"on":"a"}' }], leaves: [] })
    await eventually(() => b.node.told.length === 1, 5000, 'b is told')
    t.same(b.node.told, [[channel, { joins: [{ ref: 'a1', key: 'ann', meta: '{"on":"a"}' }], leaves: [] }]])
    t.same(await (c.link as BrokerConnection & PresenceBroker).presenceState(channel), [{ ref: 'a1', key: 'ann', meta: '{"on":"a"}' }], 'any node reads it')
    t.same(a.node.told, [], 'never its own change')
    t.same(c.node.told, [], 'a node without a subscriber of the channel is not told')

    // a node that dies without closing: it registers and tracks, then its registration is gone
    const dead: EngineNode = { nodeId: `dead-${++counter}`, log: Fastify({ logger: false }).log, receive () {}, restore: async () => ({ channels: 0, sessions: 0 }) }
    const parts = await of.connect(dead)
    t.teardown(() => parts.close())
    if (parts.presence === undefined) return
    await parts.registry.register([])
    const joins = { joins: [{ ref: 'd1', key: 'dan', meta: '{}' }, { ref: 'd2', key: 'dan', meta: '{}' }], leaves: [] }
    await parts.presence.write({ channels: new Map([[channel, { ...joins, envelope: encodePresence(dead.nodeId, channel, joins) }]]), forget: [] })
    await eventually(() => b.node.told.length === 2, 5000, 'b is told of the dead node\'s tracks')
    await parts.registry.unregister() // as if its registration expired
    await eventually(() => b.node.told.length === 3, 8000, 'its tracks are reaped by a live node')
    t.same(b.node.told[2], [channel, { joins: [], leaves: ['d1', 'd2'] }], 'one leave each, once')
    t.same(await (b.link as BrokerConnection & PresenceBroker).presenceState(channel), [{ ref: 'a1', key: 'ann', meta: '{"on":"a"}' }])

    await a.link.close()
    await eventually(() => b.node.told.length === 4, 5000, 'a node that closes sends its leaves')
    t.same(b.node.told[3], [channel, { joins: [], leaves: ['a1'] }])
  })
}
