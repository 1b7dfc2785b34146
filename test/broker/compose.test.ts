/**
 * `composeBroker`, the core between the plugin's node and an engine's parts, driven through
 * the BrokerConnection seam with stand-in nodes on the memory engine's parts. One variant of
 * its transport delivers like Redis does (one copy per topic, the publisher's own included),
 * so the core's own work shows: echoes dropped, one delivery per multi-channel publication,
 * history publications back to every node in offset order, sends after what was published
 * before, unreadable envelopes logged, everything subscribed and registered again on restore,
 * and a node whose setup fails closing what the engine opened. And the edges: a restore asked
 * for before the node is set up, a channel publication's reach, volatile sends, an engine
 * without history or presence at run time, a node without deliverHistory, one-channel copies,
 * an unreadable history entry.
 */
import t from 'tap'
import Fastify from 'fastify'
import { composeBroker } from '../../plugin/broker/compose.js'
import { encodePresence, encodePublication, positionedEnvelope } from '../../plugin/broker/envelope.js'
import { MemoryHistory } from '../../plugin/broker/memory/history-store.js'
import { MemoryPresence } from '../../plugin/broker/memory/presence-store.js'
import { MemoryRegistry } from '../../plugin/broker/memory/registry-store.js'
import { MemoryBus } from '../../plugin/broker/memory/transport.js'
import type { BrokerEngine, EngineNode, EngineParts, Transport } from '../../plugin/broker/parts.js'
import { sharesPresence, type BrokerConnection, type BrokerNode } from '../../plugin/broker/types.js'
import { eventually } from '../helpers/eventually.js'
import { StandInNode } from './stand-in-node.js'

interface Options {
  /** deliver like Redis: one copy per topic, to the publisher too */
  perTopic?: boolean
  /** leave out the history and presence stores */
  bare?: boolean
  /** what the transport and registry are asked, in order */
  calls?: string[]
  failSubscribe?: boolean
  /** a transport whose publish throws at once instead of rejecting */
  throwOnPublish?: boolean
  /** each subscribe and each start, in order */
  lifecycle?: string[]
  /** the engine asks for a restore before connect resolves, and is told this */
  restoreEarly?: (outcome: string) => void
  /** what a history read answers, instead of the store's */
  read?: NonNullable<EngineParts['history']>['read']
}

/** An engine made of the memory parts, with the variations above; `nodes` are the EngineNodes the core handed it. */
function testEngine (options: Options = {}): { engine: BrokerEngine, nodes: EngineNode[], closed: string[], bus: MemoryBus, registry: MemoryRegistry } {
  const bus = new MemoryBus()
  const registry = new MemoryRegistry(bus)
  const presence = new MemoryPresence(bus)
  const streams = new MemoryHistory()
  const nodes: EngineNode[] = []
  const closed: string[] = []
  const engine: BrokerEngine = {
    name: 'test',
    async connect (node): Promise<EngineParts> {
      nodes.push(node)
      if (options.restoreEarly !== undefined) {
        node.receive(encodePublication('other', { kind: 'all', frame: 'too early' }, 1)) // nothing to deliver to yet: no throw
        options.restoreEarly(await node.restore().then(() => 'resolved', (err: Error) => err.message))
      }
      const memory = bus.transport(node)
      const transport: Transport = {
        publish: (topics, envelope) => {
          options.calls?.push('publish')
          if (options.throwOnPublish === true) throw new Error('cannot publish') // at once, not as a rejection
          if (options.perTopic !== true) return memory.publish(topics, envelope)
          for (const topic of topics) bus.publish([topic], envelope)
          return Promise.resolve()
        },
        subscribe: async (topics) => {
          options.lifecycle?.push('subscribe')
          if (options.failSubscribe === true) throw new Error('cannot subscribe')
          await memory.subscribe(topics)
        },
        unsubscribe: async (topics) => await memory.unsubscribe(topics),
        flush: () => options.calls?.push('flush')
      }
      const store = registry.forNode(node.nodeId)
      const parts: EngineParts = {
        transport,
        registry: { ...store, route: async (id, envelope) => { options.calls?.push('route'); return await store.route(id, envelope) } },
        start: () => { options.lifecycle?.push('start') },
        async close () { closed.push(node.nodeId); bus.remove(node) }
      }
      if (options.bare === true) return parts
      return {
        ...parts,
        presence: presence.forNode(node),
        history: {
          async append (channel, append, limits) {
            const position = streams.append(channel, append.entry, limits)
            bus.publish([{ kind: 'channel', channel }], positionedEnvelope(append, position))
            return position
          },
          read: options.read ?? (async (channel, query, limits) => streams.read(channel, query, limits))
        }
      }
    }
  }
  return { engine, nodes, closed, bus, registry }
}

async function connect (t: { teardown (fn: () => unknown): void }, engine: BrokerEngine, id: string): Promise<{ node: StandInNode, link: BrokerConnection }> {
  const node = new StandInNode(id)
  const link = await composeBroker(engine).connect(node)
  t.teardown(() => link.close())
  return { node, link }
}

const settled = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))
const limits = { size: 10, ttl: 60_000 }

t.test('one delivery per publication per node, never back to its publisher, whatever copies the transport makes', async (t) => {
  const { engine } = testEngine({ perTopic: true })
  const a = await connect(t, engine, 'a')
  const b = await connect(t, engine, 'b')
  const c = await connect(t, engine, 'c')
  for (const channel of ['x', 'y', 'z']) await b.link.subscribe(channel)
  await c.link.subscribe('z')
  await a.link.subscribe('x') // the publisher holds one too: its echo is dropped
  const frames = ['fx', 'fy', 'fz']
  await a.link.publish({ kind: 'channels', channels: ['x', 'y', 'z'], frames, except: 'sender' })
  await a.link.publish({ kind: 'all', frame: 'fence' })
  await settled()
  const multi = { kind: 'channels', channels: ['x', 'y', 'z'], frames, except: 'sender' }
  t.same(b.node.deliveries, [multi, { kind: 'all', frame: 'fence', except: undefined }], 'b holds all three channels: one delivery')
  t.same(c.node.deliveries, [multi, { kind: 'all', frame: 'fence', except: undefined }], 'c holds one of them: the whole publication')
  t.same(a.node.deliveries, [], 'the publisher never hears its own messages')
  await b.link.unsubscribe('y')
  await b.link.unsubscribe('z')
  await b.link.unsubscribe('x')
  await a.link.publish({ kind: 'channels', channels: ['x'], frames: ['again'] })
  await settled()
  t.equal(b.node.deliveries.length, 2, 'nothing after the last unsubscribe')
})

t.test('a send reaches the node that holds the session, after what was published before it', async (t) => {
  const calls: string[] = []
  const { engine } = testEngine({ calls })
  const a = await connect(t, engine, 'a')
  const b = await connect(t, engine, 'b')
  await b.link.addSession('s1')
  await b.link.subscribe('room')
  const published = a.link.publish({ kind: 'channels', channels: ['room'], frames: ['before'] })
  t.equal(await a.link.sendToSession('s1', 'hello'), true)
  await published
  t.same(calls, ['publish', 'flush', 'route'], 'the transport flushed before the route')
  await settled()
  t.same(b.node.deliveries, [
    { kind: 'channels', channels: ['room'], frames: ['before'], except: undefined },
    { kind: 'session', sessionId: 's1', frame: 'hello' }
  ])
  t.equal(await b.link.sendToSession('s1', 'self'), false, 'a node does not look itself up: the plugin checks locally first')
  await b.link.removeSession('s1')
  t.equal(await a.link.sendToSession('s1', 'again'), false)
})

t.test('history publications come back to every node, the publisher too, in offset order; reads decode the entries', async (t) => {
  const { engine } = testEngine({ perTopic: true })
  const a = await connect(t, engine, 'a')
  const b = await connect(t, engine, 'b')
  await a.link.subscribe('h')
  await b.link.subscribe('h')
  const frame = (n: number): string => `{"type":"message","event":"e","channel":"h","data":${n}}`
  t.equal(await a.link.publishHistory?.('h', frame(1), 'sender', limits), 1)
  t.equal(await b.link.publishHistory?.('h', frame(2), undefined, limits), 2)
  await settled()
  for (const node of [a.node, b.node]) {
    t.same(node.history.map(({ offset, frame, except }) => ({ offset, frame, except })), [
      { offset: 1, frame: '{"type":"message","event":"e","channel":"h","data":1,"offset":1}', except: 'sender' },
      { offset: 2, frame: '{"type":"message","event":"e","channel":"h","data":2,"offset":2}', except: undefined }
    ], `node ${node.nodeId}`)
    t.equal(new Set(node.history.map((publication) => publication.epoch)).size, 1, 'one epoch, told with each')
  }
  const read = await b.link.readHistory?.('h', { after: 0 }, limits)
  t.same(read, { epoch: a.node.history[0].epoch, offset: 2, complete: true, entries: a.node.history.map(({ offset, frame, except }) => except === undefined ? { offset, frame } : { offset, frame, except }) })
})

t.test('without history and presence stores, the connection has no such methods', async (t) => {
  const { engine } = testEngine({ bare: true })
  const { link } = await connect(t, engine, 'a')
  t.equal(link.publishHistory, undefined)
  t.equal(link.readHistory, undefined)
  t.notOk(sharesPresence(link))
  const full = await connect(t, testEngine().engine, 'b')
  t.ok(sharesPresence(full.link))
  t.type(full.link.publishHistory, 'function')
})

t.test('an envelope this version cannot read is logged and dropped; a delivery that throws is logged', async (t) => {
  const { engine, nodes } = testEngine()
  const { node } = await connect(t, engine, 'a')
  nodes[0].receive('a\nolder\n\n{"type":"message"}')
  t.match(node.lines, [{ level: 40, msg: 'channels: dropped a test message this version cannot read (another version on the same prefix?)' }])
  node.deliver = () => { throw new Error('boom') }
  nodes[0].receive('s1\ns\n{}')
  t.match(node.lines[1], { level: 50, msg: 'channels: delivering a message from test failed' })
})

t.test('restore() subscribes every channel and registers every session again', async (t) => {
  const { engine, nodes, bus, registry } = testEngine()
  const a = await connect(t, engine, 'a')
  const b = await connect(t, engine, 'b')
  await b.link.subscribe('room')
  await b.link.subscribe('hall')
  await b.link.addSession('s1')
  await b.link.unsubscribe('hall')
  // the engine lost b's subscriptions and registration (a Redis that restarted empty)
  bus.remove(nodes[1])
  await registry.forNode('b').unregister()
  t.equal(await a.link.sendToSession('s1', 'lost'), false, 'unfindable')
  t.same(await nodes[1].restore(), { channels: 1, sessions: 1 })
  t.equal(await a.link.sendToSession('s1', 'found'), true)
  await a.link.publish({ kind: 'channels', channels: ['room'], frames: ['room'] })
  await a.link.publish({ kind: 'all', frame: 'all' })
  await eventually(() => b.node.deliveries.length === 3)
  t.same(b.node.deliveries.map((delivery) => delivery.kind), ['session', 'channels', 'all'])

  await b.link.close()
  t.same(await nodes[1].restore(), { channels: 0, sessions: 0 }, 'a closed node restores nothing')
  t.equal(await a.link.sendToSession('s1', 'gone'), false, 'and stays unregistered')
})

t.test('a publish the transport cannot take rejects; it never throws at the caller', async (t) => {
  const { engine } = testEngine({ throwOnPublish: true })
  const { link } = await connect(t, engine, 'a')
  let published: Promise<void> | undefined
  t.doesNotThrow(() => { published = link.publish({ kind: 'all', frame: 'x' }) })
  await t.rejects(published as Promise<void>, /cannot publish/)
})

t.test('a node whose setup fails closes what the engine opened, and restores nothing after', async (t) => {
  const lifecycle: string[] = []
  const { engine, closed, nodes } = testEngine({ failSubscribe: true, lifecycle })
  await t.rejects(composeBroker(engine).connect(new StandInNode('a')), /cannot subscribe/)
  t.same(closed, ['a'])
  t.same(await nodes[0].restore(), { channels: 0, sessions: 0 }, 'a failed node registers nothing again')
  t.same(lifecycle, ['subscribe'], 'never started, and no subscribe after')
})

t.test('a restore the engine asks for before the node is set up is refused; a message then is dropped quietly', async (t) => {
  let early = ''
  const { engine } = testEngine({ restoreEarly: (outcome) => { early = outcome } })
  await connect(t, engine, 'a')
  t.equal(early, 'the node is not set up yet')
})

t.test('a channel publication goes to its channels only; an all publication to every node', async (t) => {
  const { engine } = testEngine()
  const a = await connect(t, engine, 'a')
  const onX = await connect(t, engine, 'x')
  const elsewhere = await connect(t, engine, 'elsewhere')
  await onX.link.subscribe('x')
  await a.link.publish({ kind: 'channels', channels: ['x'], frames: ['to x'] })
  await a.link.publish({ kind: 'all', frame: 'to all' })
  await settled()
  t.same(onX.node.deliveries.length, 2)
  t.match(elsewhere.node.deliveries, [{ kind: 'all', frame: 'to all' }], 'a node without x gets the all one only')
})

t.test('a send keeps its volatile mark to the other node', async (t) => {
  const { engine } = testEngine()
  const a = await connect(t, engine, 'a')
  const b = await connect(t, engine, 'b')
  await b.link.addSession('s')
  t.equal(await a.link.sendToSession('s', 'volatile', true), true)
  t.equal(await a.link.sendToSession('s', 'plain'), true)
  t.equal(await a.link.sendToSession('s', 'plain too', false), true)
  await settled()
  t.same(b.node.deliveries.map((delivery) => [delivery.kind === 'session' ? delivery.frame : '', delivery.volatile === true]),
    [['volatile', true], ['plain', false], ['plain too', false]])
})

t.test('an engine without history or presence: nothing of them runs on receive, restore or close', async (t) => {
  const { engine, nodes } = testEngine({ bare: true })
  const { node, link } = await connect(t, engine, 'a')
  nodes[0].receive(encodePresence('other', 'room', { joins: [{ ref: 'r', key: 'k', meta: '{}' }], leaves: [] }))
  t.same(await nodes[0].restore(), { channels: 0, sessions: 0 })
  await link.close()
  t.same(node.lines.filter((line) => line.level >= 40), [], 'no warning, no error')
})

t.test('a node without deliverHistory ignores history publications; one with it gets them, its own included', async (t) => {
  const { engine } = testEngine()
  const lines: Array<{ level: number }> = []
  const log = Fastify({ logger: { stream: { write: (line: string) => { lines.push(JSON.parse(line) as { level: number }) } } } }).log
  const plain: BrokerNode = { nodeId: 'plain', log, deliver () {}, hasSession: () => false }
  const plainLink = await composeBroker(engine).connect(plain)
  t.teardown(() => plainLink.close())
  await plainLink.subscribe('h')
  const { node, link } = await connect(t, engine, 'a')
  await link.subscribe('h')
  t.equal(await link.publishHistory?.('h', '{"n":1}', undefined, limits), 1)
  await settled()
  t.match(node.history, [{ offset: 1 }])
  t.same(lines.filter((line) => line.level >= 40), [], 'the plain node logged nothing: no failed delivery')
})

t.test('a one-channel publication has no dedupe key: two copies are two deliveries; a failing delivery logs its error', async (t) => {
  const { engine, nodes } = testEngine()
  const { node } = await connect(t, engine, 'a')
  const single = encodePublication('other', { kind: 'channels', channels: ['x'], frames: ['one'] }, 1)
  nodes[0].receive(single)
  nodes[0].receive(single)
  t.equal(node.deliveries.length, 2)
  node.deliver = () => { throw new Error('socket gone') }
  nodes[0].receive(single)
  t.match(node.lines.at(-1), { level: 50, msg: 'channels: delivering a message from test failed', err: { message: 'socket gone' } })
})

t.test('a history entry this version did not write fails the read with its offset and channel', async (t) => {
  const { engine } = testEngine({
    read: async () => ({ epoch: 'e', offset: 3, complete: true, entries: [{ offset: 3, entry: 'no line feed here' }] })
  })
  const { link } = await connect(t, engine, 'a')
  await t.rejects(link.readHistory!('room', { after: 2 }, limits), { message: 'history entry 3 of room is not one this version wrote' })
})

t.test('close() sends the node\'s presence leaves and unregisters it before the engine closes', async (t) => {
  const { engine, closed } = testEngine()
  const a = await connect(t, engine, 'a')
  const b = await connect(t, engine, 'b')
  await b.link.subscribe('room')
  await a.link.addSession('sa')
  if (!sharesPresence(a.link)) throw new Error('the test engine shares presence')
  await a.link.presenceUpdate('room', { joins: [{ ref: 'r1', key: 'ann', meta: '{}' }], leaves: [] })
  await a.link.close()
  await a.link.close()
  await settled()
  t.same(closed, ['a'], 'the engine closed once')
  t.same(b.node.told.at(-1), ['room', { joins: [], leaves: ['r1'] }])
  t.equal(await b.link.sendToSession('sa', 'x'), false, 'unregistered')
})
