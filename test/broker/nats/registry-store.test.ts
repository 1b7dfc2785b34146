/**
 * The NATS session registry driven directly (no node, no socket) on the machine's NATS: a
 * session is held by a subscription to its subject, and a route is a request on it. The adds
 * and removes of one event-loop turn share one flush (one PING/PONG) sent after all of their
 * SUB and UNSUB lines, and each still resolves only once the server has them: a route made
 * right after finds the session, or finds no responder.
 */
import t, { type Test } from 'tap'
import { connect, headers, type NatsConnection } from '@nats-io/transport-node'
import { jetstream } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { NatsRegistry } from '../../../plugin/broker/nats/registry-store.js'
import { NatsClock } from '../../../plugin/broker/nats/clock.js'
import { NatsNames } from '../../../plugin/broker/nats/names.js'
import { deleteStreams, natsUrl, uniquePrefix, withNats } from './helpers.js'

/** A registry of `nodeId` on a connection of its own, whose flushes are counted. */
async function registryOf (t: Test, prefix: string, nodeId: string): Promise<{ registry: NatsRegistry, received: string[], flushes: () => number }> {
  const nc: NatsConnection = await connect({ servers: natsUrl, timeout: 5000 })
  t.teardown(async () => await nc.close())
  const names = new NatsNames(prefix)
  const kv = await new Kvm(jetstream(nc, { timeout: 5000 })).create(names.nodesBucket, { ttl: 5000 })
  let flushes = 0
  const flush = nc.flush.bind(nc)
  nc.flush = async () => { flushes++; await flush() }
  const received: string[] = []
  const registry = new NatsRegistry(nc, kv, {
    names,
    clock: new NatsClock(),
    headers,
    nodeId,
    ttl: 5000,
    timeoutMs: 5000,
    budgetMs: 5000,
    receive: (envelope) => { received.push(envelope) },
    onLost: () => {},
    onDropped: () => {},
    onLate: () => {}
  })
  return { registry, received, flushes: () => flushes }
}

t.test('the NATS registry', async (t) => {
  await withNats(t, async () => {
    const prefix = uniquePrefix()
    t.teardown(async () => await deleteStreams(prefix))

    t.test('the adds and removes of one turn share one flush, and each is on the server when it resolves', async (t) => {
      const a = await registryOf(t, prefix, 'node-a')
      const b = await registryOf(t, prefix, 'node-b')
      const sessions = Array.from({ length: 200 }, (_, i) => `s${i}`)

      await Promise.all(sessions.map(async (id) => { await a.registry.add(id) }))
      t.equal(a.flushes(), 1, '200 adds in one turn: one flush')
      t.equal(await b.registry.route('s0', '{"n":0}'), true, 'the first session is routed to node a at once')
      t.equal(await b.registry.route('s199', '{"n":199}'), true, 'and the last')
      t.equal(a.received.length, 2)

      await a.registry.add('s200')
      await a.registry.add('s201')
      t.equal(a.flushes(), 3, 'an add in a later turn gets a flush of its own')

      const removed = sessions.slice(0, 100)
      await Promise.all([...removed.map(async (id) => { await a.registry.remove(id) }), a.registry.add('s202')])
      t.equal(a.flushes(), 4, '100 removes and an add in one turn: one flush')
      t.equal(await b.registry.route('s0', '{"n":0}'), false, 'a removed session finds no responder')
      t.equal(await b.registry.route('s99', '{"n":99}'), false)
      t.equal(await b.registry.route('s100', '{"n":100}'), true, 'one not removed is still held')
      t.equal(await b.registry.route('s202', '{"n":202}'), true, 'and the one added in that turn is held')
      t.equal(a.received.length, 4)

      await a.registry.remove('never-added')
      await a.registry.remove('s0')
      t.pass('removing a session the node does not hold (never added, or removed already) is harmless')
    })
  })
})
