/**
 * plugin/users/directory.ts against brokers that fail or lack a part, and the checks of its
 * arguments: the close codes `disconnect` takes, the messages of its refusals, a broker
 * without presence (each node lists its own sessions), a broker whose writes fail (logged,
 * never thrown), the user topic subscribed once per user and left after the last connection,
 * and what another node may publish on a user topic (a stand-in node on the same memory broker).
 */
import t, { type Test } from 'tap'
import { memoryBroker, type Broker } from '../../plugin/index.js'
import type { BrokerConnection, BrokerNode } from '../../plugin/broker/types.js'
import { userTopic, userIdProblem } from '../../plugin/users/directory.js'
import { startApp, type TestApp } from '../helpers/server.js'
import { StandInNode } from '../broker/stand-in-node.js'
import { client, eventually, userOption } from './helpers.js'

/** `shared`, with the methods `methods` returns (given the real connection) in place of its own. */
function brokerWith (shared: Broker, methods: (connection: BrokerConnection) => Record<string, unknown>): Broker {
  return {
    async connect (node) {
      const connection = await shared.connect(node)
      return { ...connection, ...methods(connection) } as BrokerConnection
    }
  }
}

async function node (t: Test, broker: Broker, logged?: string[]): Promise<TestApp> {
  const logger = logged === undefined
    ? false
    : { level: 'warn', stream: { write: (line: string) => { logged.push((JSON.parse(line) as { msg: string }).msg) } } }
  const started = await startApp({ broker, user: userOption, rateLimit: false, heartbeat: false }, undefined, { logger })
  t.teardown(() => started.app.close())
  return started
}

t.test('disconnect: the close codes an app may send; the messages of the refusals', async (t) => {
  const { app } = await node(t, memoryBroker())
  const ann = app.channels.user('ann')
  for (const code of [1000, 1001, 1003, 1007, 1008, 1014, 3000, 4000, 4999]) {
    await t.resolves(ann.disconnect(code), `${code} accepted`)
  }
  for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000, 1008.5, '1008', null]) {
    await t.rejects(ann.disconnect(code as number), {
      code: 'FST_CHANNELS_INVALID_ARGUMENT', message: `fastify-channels: disconnect: ${String(code)} is not a close code an app may send`
    }, `${String(code)} refused`)
  }
  await t.rejects(ann.disconnect(1008, 5 as unknown as string), { message: 'fastify-channels: disconnect: the reason must be a string' })
  t.throws(() => app.channels.user(7 as unknown as string), { message: 'fastify-channels: user: a user id is a string, got number' })
  t.throws(() => app.channels.user(''), { message: 'fastify-channels: user: a user id has 1 to 1024 characters' })
  t.equal(userIdProblem('x'.repeat(1024)), undefined)
  t.equal(userIdProblem(undefined), 'a user id is a string, got undefined')
})

t.test('disconnect without arguments: 1008 and no reason, on every node', async (t) => {
  const shared = memoryBroker()
  const a = await node(t, shared)
  const b = await node(t, shared)
  const here = await client(t, a.url, 'ann')
  const there = await client(t, b.url, 'ann')
  await eventually(async () => (await a.app.channels.user('ann').sessions()).length === 2)
  await a.app.channels.user('ann').disconnect()
  t.same(await here.closed, { code: 1008, reason: '' })
  t.same(await there.closed, { code: 1008, reason: '' })
})

t.test('a broker without presence: each node lists its own sessions of the user', async (t) => {
  const shared = memoryBroker()
  const noPresence = brokerWith(shared, () => ({ presenceUpdate: undefined, presenceState: undefined }))
  const a = await node(t, noPresence)
  const b = await node(t, noPresence)
  const one = await client(t, a.url, 'ann')
  const two = await client(t, a.url, 'ann')
  const three = await client(t, b.url, 'ann')
  t.same((await a.app.channels.user('ann').sessions()).sort(), [one.sessionId, two.sessionId].sort())
  t.same(await b.app.channels.user('ann').sessions(), [three.sessionId])
  t.same(await b.app.channels.user('bob').sessions(), [])
  // a send still reaches every node through the user topic
  await a.app.channels.user('ann').send('hi', { event: 'note' })
  for (const c of [one, two, three]) t.same(await c.next((frame) => frame.type === 'message'), { type: 'message', event: 'note', data: 'hi' })
  two.close()
  await two.closed
  await eventually(async () => (await a.app.channels.user('ann').sessions()).length === 1, 3000, 'the closed session is gone')
  t.same(await a.app.channels.user('ann').sessions(), [one.sessionId])
})

t.test('the user topic: subscribed on the user\'s first connection, left after the last', async (t) => {
  const shared = memoryBroker()
  const calls: string[] = []
  const a = await node(t, brokerWith(shared, (connection) => ({
    subscribe: async (channel: string) => { calls.push(`subscribe ${channel}`); await connection.subscribe(channel) },
    unsubscribe: async (channel: string) => { calls.push(`unsubscribe ${channel}`); await connection.unsubscribe(channel) }
  })))
  const topic = userTopic('ann')
  const one = await client(t, a.url, 'ann')
  const two = await client(t, a.url, 'ann')
  await client(t, a.url)
  t.same(calls, [`subscribe ${topic}`], 'once for two connections; none for an anonymous one')
  one.close()
  await eventually(async () => (await a.app.channels.user('ann').sessions()).length === 1)
  t.same(calls, [`subscribe ${topic}`], 'still one connection of ann')
  two.close()
  await eventually(() => calls.length === 2)
  t.same(calls, [`subscribe ${topic}`, `unsubscribe ${topic}`])
})

t.test('a broker whose writes fail: logged with the error, never thrown; local delivery happens', async (t) => {
  const shared = memoryBroker()
  const lines: Array<{ msg: string, err?: { message: string } }> = []
  const down = async (): Promise<never> => { throw new Error('broker down') }
  const broker = brokerWith(shared, () => ({ publish: down, presenceUpdate: down, presenceState: down, unsubscribe: down }))
  const a = await startApp({ broker, user: userOption, rateLimit: false, heartbeat: false }, undefined,
    { logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line) as typeof lines[number]) } } } })
  t.teardown(() => a.app.close())
  const said = (msg: string): boolean => lines.some((line) => line.msg === msg && line.err?.message === 'broker down')
  const ann = await client(t, a.url, 'ann')
  await eventually(() => said('channels: the broker could not record a user session; it is written again when the broker is back'))
  await a.app.channels.user('ann').send('local still', { event: 'note' })
  t.same(await ann.next((frame) => frame.type === 'message'), { type: 'message', event: 'note', data: 'local still' })
  await t.rejects(a.app.channels.user('ann').sessions(), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE', message: /of user "ann".*broker down/ })
  await a.app.channels.user('ann').disconnect(4000, 'bye')
  t.same(await ann.closed, { code: 4000, reason: 'bye' }, 'a local disconnect needs no broker')
  await eventually(() => said('channels: the broker could not remove a user session'))
  await eventually(() => said('channels: broker unsubscribe failed'))
  t.ok(lines.some((line) => /publish/.test(line.msg)), 'the failed publish was logged')
})

t.test('publications on a user topic from another node', async (t) => {
  const shared = memoryBroker()
  const logged: string[] = []
  const a = await node(t, shared, logged)
  const ann = await client(t, a.url, 'ann')
  const bob = await client(t, a.url, 'bob')
  const stand = new StandInNode()
  const connection = await shared.connect(stand)
  t.teardown(() => connection.close())
  const publish = async (userId: string, frame: string): Promise<void> => {
    await connection.publish({ kind: 'channels', channels: [userTopic(userId)], frames: [frame] })
  }
  await publish('ann', '{"type":"message","event":"note","data":1}')
  t.same(await ann.next((frame) => frame.type === 'message'), { type: 'message', event: 'note', data: 1 })
  await publish('nobody', '{"type":"message","event":"note","data":2}')
  for (const bad of ['\u0000not json', '\u0000{"close":1005,"reason":""}', '\u0000{"close":1008}', '\u0000{"close":"1008","reason":""}', '\u0000{"reason":"x"}']) {
    await publish('ann', bad)
  }
  await ann.expectNothing((frame) => frame.type !== 'message' || frame.data !== 1)
  await publish('ann', '\u0000{"close":4001,"reason":"remote"}')
  t.same(await ann.closed, { code: 4001, reason: 'remote' })
  await bob.expectNothing()
  t.same(logged, [], 'nothing logged')
  const closed = await Promise.race([bob.closed.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 50))])
  t.equal(closed, false, 'bob stays')
})

t.test('a user topic\'s message for a user with no socket here (its last one left meanwhile) is dropped', async (t) => {
  const shared = memoryBroker()
  let captured: BrokerNode | undefined
  const { url } = await node(t, { connect: async (n) => { captured = n; return await shared.connect(n) } })
  const ann = await client(t, url, 'ann')
  const frame = '{"type":"message","event":"note","data":1}'
  t.doesNotThrow(() => { captured?.deliver({ kind: 'channels', channels: [userTopic('gone')], frames: [frame] }) })
  await ann.expectNothing()
})

t.test('sessions are listed once each', async (t) => {
  const shared = memoryBroker()
  const a = await node(t, brokerWith(shared, (connection) => ({
    presenceState: async (channel: string) => {
      const tracks = await (connection as unknown as { presenceState: (c: string) => Promise<Array<{ ref: string }>> }).presenceState(channel)
      return [...tracks, ...tracks]
    }
  })))
  const ann = await client(t, a.url, 'ann')
  await eventually(async () => (await a.app.channels.user('ann').sessions()).length === 1)
  t.same(await a.app.channels.user('ann').sessions(), [ann.sessionId])
})

t.test('a user send the broker cannot publish: one run of failures, logged as the user\'s, until it works again or the node closes', async (t) => {
  const shared = memoryBroker()
  const lines: Array<{ level: number, msg: string, kind?: string }> = []
  const state = { down: true }
  const broker = brokerWith(shared, (connection) => ({
    publish: async (publication: Parameters<BrokerConnection['publish']>[0]) => {
      if (state.down) throw new Error('broker down')
      await connection.publish(publication)
    }
  }))
  const { app, url } = await startApp({ broker, user: userOption, rateLimit: false, heartbeat: false }, undefined,
    { logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line) as typeof lines[number]) } } } })
  let closed = false
  t.teardown(async () => { if (!closed) await app.close() })
  const ann = await client(t, url, 'ann')
  const said = (msg: string): typeof lines => lines.filter((line) => line.msg === msg)

  await app.channels.user('ann').send(1)
  await app.channels.user('ann').send(2)
  t.match(said('channels: broker publish failed; delivered locally only'), [{ level: 40, kind: 'user' }], 'one line for the run')
  state.down = false
  await app.channels.user('ann').send(3)
  t.equal(said('channels: broker publish works again').length, 1)
  state.down = true
  await app.channels.user('ann').send(4)
  for (const data of [1, 2, 3, 4]) t.equal((await ann.next((frame) => frame.type === 'message')).data, data, 'delivered locally')
  ann.close()
  closed = true
  await app.close()
  t.equal(said('channels: broker closed while publishes were failing').length, 1, 'the run still failing at close is said')
})

t.test('a user session in the broker\'s presence: its ref, the user as key', async (t) => {
  const shared = memoryBroker()
  const a = await node(t, shared)
  const ann = await client(t, a.url, 'ann')
  const stand = new StandInNode()
  const connection = await shared.connect(stand) as BrokerConnection & { presenceState: (channel: string) => Promise<unknown[]> }
  t.teardown(() => connection.close())
  await eventually(async () => (await connection.presenceState(userTopic('ann'))).length === 1)
  t.match(await connection.presenceState(userTopic('ann')), [{ ref: ann.sessionId, key: 'ann', meta: '{}' }])
})
