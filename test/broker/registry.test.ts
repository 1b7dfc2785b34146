/**
 * The node registry's core side (plugin/broker/registry.ts) on the memory engine's store: the
 * node's own record is the source of every registration, a registration the store lost is
 * written again on the next refresh (and says so), a failed write is repaired by the next
 * refresh, routes reach the node holding a session, and the upkeep runs every third of the TTL.
 */
import t from 'tap'
import Fastify from 'fastify'
import { SessionRegistry } from '../../plugin/broker/registry.js'
import { MemoryRegistry } from '../../plugin/broker/memory/registry-store.js'
import { MemoryBus } from '../../plugin/broker/memory/transport.js'
import type { EngineNode, RegistryStore } from '../../plugin/broker/parts.js'

interface Line { level: number, msg: string, sessions?: number }

function logged (): { lines: Line[], log: ReturnType<typeof Fastify>['log'] } {
  const lines: Line[] = []
  const app = Fastify({ logger: { level: 'debug', stream: { write (line: string) { lines.push(JSON.parse(line) as Line) } } } })
  return { lines, log: app.log }
}

/** A store that rejects its writes while `down` is set, and counts them (and what each refresh was told). */
function flaky (store: RegistryStore, { ttl }: { ttl?: number } = { ttl: 300 }): { store: RegistryStore, state: { down: boolean, writes: string[], holds: boolean[] } } {
  const state = { down: false, writes: [] as string[], holds: [] as boolean[] }
  const gate = async <T>(name: string, call: () => Promise<T>): Promise<T> => {
    state.writes.push(name)
    if (state.down) throw new Error('store down')
    return await call()
  }
  return {
    state,
    store: {
      ttl,
      register: async (sessions) => await gate('register', async () => await store.register(sessions)),
      refresh: async (holds) => {
        state.holds.push(holds)
        return await gate('refresh', async () => await store.refresh(holds))
      },
      add: async (id) => await gate('add', async () => await store.add(id)),
      remove: async (id) => await gate('remove', async () => await store.remove(id)),
      route: async (id, envelope) => await store.route(id, envelope),
      alive: async (ids) => await store.alive(ids),
      unregister: async () => await gate('unregister', async () => await store.unregister())
    }
  }
}

t.test('a registration the store lost is written again on the next refresh, from the node\'s own record', async (t) => {
  const shared = new MemoryRegistry(new MemoryBus())
  const { log } = logged()
  const registry = new SessionRegistry(shared.forNode('a'), log, 'memory')
  const other = shared.forNode('b')
  await registry.sync()
  await registry.add('s1')
  await registry.add('s2')
  await registry.remove('s2')
  t.same(await other.alive(['a']), [true])
  t.equal(await registry.refresh(), false, 'still there: nothing rewritten')

  await shared.forNode('a').unregister() // expired, or pruned as dead, while the node stalled
  t.same(await other.alive(['a']), [false])
  t.equal(await other.route('s1', 'x'), false, 'unfindable meanwhile')
  t.equal(await registry.refresh(), true, 'lost: written again')
  t.same(await other.alive(['a']), [true])
  t.equal(await other.route('s1', 'x'), true, 'its session is findable again')
  t.equal(await other.route('s2', 'x'), false, 'and only the sessions it holds')
})

t.test('a failed write is repaired by the next refresh; the upkeep runs every third of the TTL and logs a rewrite', async (t) => {
  const shared = new MemoryRegistry(new MemoryBus())
  const { store, state } = flaky(shared.forNode('a'))
  const { lines, log } = logged()
  const registry = new SessionRegistry(store, log, 'memory')
  await registry.sync()
  state.down = true
  await t.rejects(registry.add('s1'), /store down/)
  t.ok(registry.local.has('s1'), 'the own record keeps it')
  state.down = false
  state.writes.length = 0
  t.equal(await registry.refresh(), false, 'a repair, not a loss')
  t.same(state.writes, ['register'], 'the whole registration, not a refresh')
  t.equal(await shared.forNode('b').route('s1', 'x'), true)

  registry.start()
  t.teardown(() => registry.stop())
  await shared.forNode('a').unregister()
  // 300 / 3 = 100 ms per refresh: the first finds the registration lost, the second finds it
  const refreshes = (): number => state.writes.filter((write) => write === 'refresh').length
  for (let waited = 0; refreshes() < 2 && waited < 3000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(refreshes() >= 2, 'refreshed on a timer')
  const warned = lines.filter((line) => line.level === 40)
  t.equal(warned.length, 1, 'the rewrite is logged once, the refreshes that found it are not')
  t.match(warned, [{ msg: 'channels: this node\'s registration had expired in memory (a stall longer than nodeTtl); sessions registered again', sessions: 1 }])

  // a refresh that fails in the upkeep: a debug line with the error, and the next tick tries again
  state.down = true
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.match(lines.filter((line) => line.level === 20), [{ msg: 'channels: registration refresh failed', err: { message: 'store down' } }])
  state.down = false // for stop() at teardown
})

t.test('the upkeep runs at most every 50 ms, whatever the TTL', async (t) => {
  const shared = new MemoryRegistry(new MemoryBus())
  const { store, state } = flaky(shared.forNode('a'), { ttl: 30 })
  const registry = new SessionRegistry(store, logged().log, 'memory')
  await registry.sync()
  const started = Date.now()
  registry.start()
  await new Promise((resolve) => setTimeout(resolve, 200))
  await registry.stop()
  const most = Math.floor((Date.now() - started) / 50) + 1
  t.ok(state.holds.length <= most, `${state.holds.length} refreshes, at most ${most}`)
})

t.test('a registry never written, or whose whole write failed, writes everything on its next refresh', async (t) => {
  const shared = new MemoryRegistry(new MemoryBus())
  const { store, state } = flaky(shared.forNode('a'))
  const registry = new SessionRegistry(store, logged().log, 'memory')
  t.equal(await registry.refresh(), false, 'never written: a first write, not a loss')
  t.same(state.writes, ['register'])
  state.down = true
  await t.rejects(registry.sync(), /store down/)
  state.down = false
  state.writes.length = 0
  t.equal(await registry.refresh(), false)
  t.same(state.writes, ['register'], 'the failed whole write is done again, not refreshed')
})

t.test('each refresh tells the store whether the node holds sessions', async (t) => {
  const shared = new MemoryRegistry(new MemoryBus())
  const { store, state } = flaky(shared.forNode('a'))
  const registry = new SessionRegistry(store, logged().log, 'memory')
  await registry.sync()
  await registry.refresh()
  await registry.add('s1')
  await registry.refresh()
  await registry.remove('s1')
  await registry.refresh()
  t.same(state.holds, [false, true, false])
})

t.test('stop() clears the record and unregisters; a store without a TTL needs no upkeep', async (t) => {
  const shared = new MemoryRegistry(new MemoryBus())
  const { log } = logged()
  const { store, state } = flaky(shared.forNode('a'), {})
  const registry = new SessionRegistry(store, log, 'memory')
  registry.start() // no TTL: no timer keeps the process busy
  await registry.sync()
  await registry.add('s1')
  await new Promise((resolve) => setTimeout(resolve, 120))
  t.same(state.holds, [], 'never refreshed')
  await registry.stop()
  t.equal(registry.local.size, 0)
  t.same(await shared.forNode('b').alive(['a']), [false])
})

t.test('route publishes the envelope on the holder\'s node topic, never on the asker\'s', async (t) => {
  const bus = new MemoryBus()
  const shared = new MemoryRegistry(bus)
  const heard: Array<[string, string]> = []
  const engineNode = (nodeId: string): EngineNode => ({
    nodeId, log: logged().log, receive: (envelope) => heard.push([nodeId, envelope]), restore: async () => ({ channels: 0, sessions: 0 })
  })
  for (const id of ['a', 'b']) await bus.transport(engineNode(id)).subscribe([{ kind: 'node', nodeId: id }])
  const a = new SessionRegistry(shared.forNode('a'), logged().log, 'memory')
  const b = new SessionRegistry(shared.forNode('b'), logged().log, 'memory')
  await a.sync()
  await b.sync()
  await b.add('on-b')
  await a.add('on-a')
  t.equal(await a.route('on-b', 'to b'), true)
  t.equal(await a.route('on-a', 'to a'), false, 'the asker checks its own sockets itself')
  t.equal(await a.route('nowhere', 'x'), false)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(heard, [['b', 'to b']])
})

t.test('the memory store: adds keep every session, a remove forgets one, and either after an unregister is harmless', async (t) => {
  const shared = new MemoryRegistry(new MemoryBus())
  const a = shared.forNode('a')
  const b = shared.forNode('b')
  await a.add('s1') // before any register: the node's set is made
  await a.add('s2')
  t.same([await b.route('s1', 'x'), await b.route('s2', 'x')], [true, true], 'both findable')
  await a.remove('s1')
  t.same([await b.route('s1', 'x'), await b.route('s2', 'x')], [false, true], 'the removed one only is gone')
  await a.unregister()
  await a.remove('s2')
  t.same(await b.alive(['a']), [false], 'a remove does not bring a node back')
})
