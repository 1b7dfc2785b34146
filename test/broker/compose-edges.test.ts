/**
 * The composed broker's core (plugin/broker/compose.ts), its edges (compose.test.ts has the
 * main paths): the real memory engine, wrapped to record what the core asks of its parts and,
 * per test, to leave out a store or fail a step. A restore the engine asks for before the node
 * is set up, a node whose setup failed asked to restore, a channel publication's reach, a send
 * marked volatile, an engine without history or presence at run time, a node without
 * deliverHistory, a history entry this version did not write.
 */
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { composeBroker } from '../../plugin/broker/compose.js'
import { encodePresence, encodePublication } from '../../plugin/broker/envelope.js'
import { memoryEngine } from '../../plugin/broker/memory/broker.js'
import type { BrokerEngine, EngineNode, EngineParts, Topic } from '../../plugin/broker/parts.js'
import type { BrokerConnection, BrokerNode } from '../../plugin/broker/types.js'
import { StandInNode } from './stand-in-node.js'

const limits = { size: 10, ttl: 60_000 }
const tick = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

interface Recorded {
  /** the EngineNode the core handed the engine, per node id */
  nodes: Map<string, EngineNode>
  subscribed: Topic[][]
  unsubscribed: Topic[][]
  closes: number
  starts: number
  earlyRestore?: string
}

interface Wrapping {
  /** leave these stores out */
  without?: Array<'history' | 'presence'>
  /** the first subscribe of each node rejects */
  failOpen?: boolean
  /** the engine asks for a restore before connect resolves */
  restoreEarly?: boolean
  /** what a history read answers, instead of the store's */
  read?: EngineParts['history'] extends infer H ? H extends { read: infer R } ? R : never : never
}

/** The memory engine, wrapped (see the header). */
function recorded (wrapping: Wrapping = {}): { engine: BrokerEngine, record: Recorded } {
  const inner = memoryEngine()
  const record: Recorded = { nodes: new Map(), subscribed: [], unsubscribed: [], closes: 0, starts: 0 }
  const engine: BrokerEngine = {
    name: 'memory',
    async connect (node) {
      record.nodes.set(node.nodeId, node)
      if (wrapping.restoreEarly === true) {
        node.receive(encodePublication('other', { kind: 'all', frame: 'too early' }, 1)) // nothing to deliver to yet: no throw
        record.earlyRestore = await node.restore().then(() => 'resolved', (err: Error) => err.message)
      }
      const parts = await inner.connect(node)
      let opened = false
      const wrapped: EngineParts = {
        ...parts,
        transport: {
          ...parts.transport,
          publish: parts.transport.publish.bind(parts.transport),
          subscribe: async (topics) => {
            record.subscribed.push([...topics])
            if (wrapping.failOpen === true && !opened) {
              opened = true
              throw new Error('subscribe failed')
            }
            opened = true
            await parts.transport.subscribe(topics)
          },
          unsubscribe: async (topics) => {
            record.unsubscribed.push([...topics])
            await parts.transport.unsubscribe(topics)
          }
        },
        start: () => { record.starts++; parts.start?.() },
        close: async () => { record.closes++; await parts.close() }
      }
      if (wrapping.without?.includes('history') === true) delete wrapped.history
      if (wrapping.without?.includes('presence') === true) delete wrapped.presence
      if (wrapping.read !== undefined && wrapped.history !== undefined) wrapped.history = { ...wrapped.history, read: wrapping.read }
      return wrapped
    }
  }
  return { engine, record }
}

async function connected (t: Test, engine: BrokerEngine, node: BrokerNode = new StandInNode()): Promise<BrokerConnection> {
  const link = await composeBroker(engine).connect(node)
  t.teardown(() => link.close())
  return link
}

t.test('a restore the engine asks for before the node is set up is refused; a message then is dropped quietly', async (t) => {
  const { engine, record } = recorded({ restoreEarly: true })
  await connected(t, engine)
  t.equal(record.earlyRestore, 'the node is not set up yet')
})

t.test('a node that cannot subscribe its own topics fails to connect, closes what the engine opened, and restores nothing after', async (t) => {
  const { engine, record } = recorded({ failOpen: true })
  const node = new StandInNode()
  await t.rejects(composeBroker(engine).connect(node), /subscribe failed/)
  t.equal(record.closes, 1, 'the parts closed')
  t.equal(record.starts, 0, 'never started')
  t.same(await record.nodes.get(node.nodeId)!.restore(), { channels: 0, sessions: 0 }, 'a failed node registers nothing again')
  t.equal(record.subscribed.length, 1, 'nor subscribes')
})

t.test('a channel publication goes to its channels only; an all publication to every node', async (t) => {
  const { engine } = recorded()
  const a = await connected(t, engine)
  const onX = new StandInNode()
  const elsewhere = new StandInNode()
  await (await connected(t, engine, onX)).subscribe('x')
  await connected(t, engine, elsewhere)
  await a.publish({ kind: 'channels', channels: ['x'], frames: ['to x'] })
  await a.publish({ kind: 'all', frame: 'to all' })
  await tick()
  t.same(onX.deliveries.length, 2)
  t.match(elsewhere.deliveries, [{ kind: 'all', frame: 'to all' }], 'a node without x gets the all one only')
})

t.test('a send keeps its volatile mark to the other node', async (t) => {
  const { engine } = recorded()
  const a = await connected(t, engine)
  const holder = new StandInNode()
  const b = await connected(t, engine, holder)
  await b.addSession('s')
  t.equal(await a.sendToSession('s', 'volatile', true), true)
  t.equal(await a.sendToSession('s', 'plain'), true)
  t.equal(await a.sendToSession('s', 'plain too', false), true)
  await tick()
  t.same(holder.deliveries.map((delivery) => [delivery.kind === 'session' ? delivery.frame : '', delivery.volatile === true]),
    [['volatile', true], ['plain', false], ['plain too', false]])
})

t.test('an engine without history or presence: no such methods, and nothing of them runs', async (t) => {
  const { engine, record } = recorded({ without: ['history', 'presence'] })
  const node = new StandInNode()
  const link = await connected(t, engine, node)
  t.equal(link.publishHistory, undefined)
  t.equal(link.readHistory, undefined)
  t.notOk('presenceUpdate' in link, 'no presence methods')
  const engineNode = record.nodes.get(node.nodeId)!
  engineNode.receive(encodePresence('other', 'room', { joins: [{ ref: 'r', key: 'k', meta: '{}' }], leaves: [] }))
  t.same(await engineNode.restore(), { channels: 0, sessions: 0 })
  await link.close()
  t.same(node.lines.filter((line) => line.level >= 40), [], 'no warning, no error')
})

t.test('a node without deliverHistory ignores history publications; one with it gets them, its own included', async (t) => {
  const { engine } = recorded()
  const lines: Array<{ level: number }> = []
  const log = Fastify({ logger: { stream: { write: (line: string) => { lines.push(JSON.parse(line) as { level: number }) } } } }).log
  const plain: BrokerNode = { nodeId: 'plain', log, deliver () {}, hasSession: () => false }
  await (await connected(t, engine, plain)).subscribe('h')
  const withHistory = new StandInNode()
  const link = await connected(t, engine, withHistory)
  await link.subscribe('h')
  t.equal(await link.publishHistory?.('h', '{"n":1}', undefined, limits), 1)
  await tick()
  t.match(withHistory.history, [{ offset: 1 }])
  t.same(lines.filter((line) => line.level >= 40), [], 'the plain node logged nothing: no failed delivery')
})

t.test('a one-channel publication has no dedupe key: two copies are two deliveries; a failing delivery logs its error', async (t) => {
  const { engine, record } = recorded()
  const node = new StandInNode()
  await connected(t, engine, node)
  const engineNode = record.nodes.get(node.nodeId)!
  const single = encodePublication('other', { kind: 'channels', channels: ['x'], frames: ['one'] }, 1)
  engineNode.receive(single)
  engineNode.receive(single)
  t.equal(node.deliveries.length, 2)
  node.deliver = () => { throw new Error('socket gone') }
  engineNode.receive(single)
  t.match(node.lines.at(-1), { level: 50, msg: 'channels: delivering a message from memory failed', err: { message: 'socket gone' } })
})

t.test('a history entry this version did not write fails the read with its offset and channel', async (t) => {
  const { engine } = recorded({
    read: async () => ({ epoch: 'e', offset: 3, complete: true, entries: [{ offset: 3, entry: 'no line feed here' }] })
  })
  const link = await connected(t, engine)
  await t.rejects(link.readHistory!('room', { after: 2 }, limits), { message: 'history entry 3 of room is not one this version wrote' })
})
