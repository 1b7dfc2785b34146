/**
 * The memory engine's transport: an envelope reaches each subscribed node once (however many
 * of the topics it holds), never its publisher, on a later microtask in the order published;
 * a node that unsubscribes or closes hears nothing more.
 */
import t from 'tap'
import Fastify from 'fastify'
import { MemoryBus } from '../../../plugin/broker/memory/transport.js'
import type { EngineNode } from '../../../plugin/broker/parts.js'

const log = Fastify({ logger: false }).log

function node (nodeId: string, heard: string[]): EngineNode {
  return { nodeId, log, receive: (envelope) => heard.push(`${nodeId} ${envelope}`), restore: async () => ({ channels: 0, sessions: 0 }) }
}

t.test('once per subscribed node, never back to the publisher, after the publisher\'s turn, in order', async (t) => {
  const bus = new MemoryBus()
  const heard: string[] = []
  const a = node('a', heard)
  const b = node('b', heard)
  const c = node('c', heard)
  await bus.transport(a).subscribe([{ kind: 'channel', channel: 'x' }])
  await bus.transport(b).subscribe([{ kind: 'channel', channel: 'x' }, { kind: 'channel', channel: 'y' }])
  await bus.transport(c).subscribe([{ kind: 'all' }, { kind: 'node', nodeId: 'c' }])
  const fromA = bus.transport(a)
  const published = [
    fromA.publish([{ kind: 'channel', channel: 'x' }, { kind: 'channel', channel: 'y' }], 'one'),
    fromA.publish([{ kind: 'all' }], 'two'),
    fromA.publish([{ kind: 'node', nodeId: 'c' }], 'three')
  ]
  bus.publish([{ kind: 'channel', channel: 'x' }], 'four') // no publisher to leave out: a's too
  t.same(heard, [], 'nothing in the publisher\'s own turn')
  await Promise.all(published)
  t.same(heard, ['b one', 'c two', 'c three', 'a four', 'b four'])
})

t.test('a node that unsubscribes or closes hears nothing more', async (t) => {
  const bus = new MemoryBus()
  const heard: string[] = []
  const a = node('a', heard)
  const b = node('b', heard)
  const onB = bus.transport(b)
  await onB.subscribe([{ kind: 'channel', channel: 'x' }, { kind: 'channel', channel: 'y' }, { kind: 'all' }])
  await onB.unsubscribe([{ kind: 'channel', channel: 'x' }])
  await bus.transport(a).publish([{ kind: 'channel', channel: 'x' }], 'x')
  await bus.transport(a).publish([{ kind: 'channel', channel: 'y' }], 'y')
  bus.remove(b)
  await bus.transport(a).publish([{ kind: 'all' }], 'all')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(heard, ['b y'])
})

t.test('topics are apart: node topics by node, a publication on many topics reaches each one\'s subscribers', async (t) => {
  const bus = new MemoryBus()
  const heard: string[] = []
  const a = node('a', heard)
  const b = node('b', heard)
  const c = node('c', heard)
  await bus.transport(a).subscribe([{ kind: 'node', nodeId: 'a' }])
  await bus.transport(b).subscribe([{ kind: 'node', nodeId: 'b' }, { kind: 'channel', channel: 'y' }])
  const fromC = bus.transport(c)
  await fromC.publish([{ kind: 'node', nodeId: 'a' }], 'to a')
  await fromC.publish([{ kind: 'all' }], 'to all')
  // the first topic has no subscriber, the second has one
  await fromC.publish([{ kind: 'channel', channel: 'x' }, { kind: 'channel', channel: 'y' }], 'x and y')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(heard, ['a to a', 'b x and y'])
})

t.test('a node leaving a topic leaves it to the others; an empty topic is dropped; leaving a topic never joined is nothing', async (t) => {
  const bus = new MemoryBus()
  const heard: string[] = []
  const a = node('a', heard)
  const b = node('b', heard)
  const room = { kind: 'channel', channel: 'room' } as const
  await bus.transport(a).subscribe([room])
  await bus.transport(b).subscribe([room])
  await bus.transport(a).unsubscribe([room, { kind: 'channel', channel: 'never' }])
  await bus.transport(node('c', heard)).publish([room], 'still b')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(heard, ['b still b'])
  await bus.transport(b).unsubscribe([room])
  // what the bus holds: no topic is kept without a subscriber (state bounded by what is subscribed)
  t.equal((bus as unknown as { topics: Map<string, unknown> }).topics.size, 0)
})
