/**
 * plugin/requests/relay.ts: `fastify.channels.ask` for a session another node holds, on a
 * shared memory broker. A stand-in node on the same broker (test/broker/stand-in-node.ts)
 * plays the other end of the relay where a real node cannot be made to: it answers a request
 * with every error code a holder may send, sends malformed answers and malformed requests. A
 * broker connection whose methods fail or swallow the request stands for a broker that is down
 * or a holding node that died with the request.
 */
import t, { type Test } from 'tap'
import { memoryBroker, type Broker } from '../../plugin/index.js'
import type { BrokerConnection } from '../../plugin/broker/types.js'
import { replyTopic, isReplyTopic, isControl, maxRelayedRequests } from '../../plugin/requests/relay.js'
import { startApp, TestClient, until, type TestApp } from '../helpers/server.js'
import { StandInNode } from '../broker/stand-in-node.js'

/** `shared`, with the methods `methods` returns (given the real connection) in place of its own. */
function brokerWith (shared: Broker, methods: (connection: BrokerConnection) => Partial<BrokerConnection>): Broker {
  return {
    async connect (node) {
      const connection = await shared.connect(node)
      return { ...connection, ...methods(connection) }
    }
  }
}

async function node (t: Test, broker: Broker, logged?: string[]): Promise<TestApp> {
  const logger = logged === undefined
    ? false
    : { level: 'warn', stream: { write: (line: string) => { logged.push((JSON.parse(line) as { msg: string }).msg) } } }
  const started = await startApp({ broker, rateLimit: false, heartbeat: false }, undefined, { logger })
  t.teardown(() => started.app.close())
  return started
}

async function rawClient (t: Test, url: string): Promise<TestClient> {
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  return client
}

/** A stand-in node on `shared` that listens on its own reply topic. */
async function standIn (t: Test, shared: Broker): Promise<{ stand: StandInNode, connection: BrokerConnection, answers: () => unknown[] }> {
  const stand = new StandInNode()
  const connection = await shared.connect(stand)
  t.teardown(() => connection.close())
  await connection.subscribe(replyTopic(stand.nodeId))
  const answers = (): unknown[] => stand.deliveries.flatMap((delivery) => delivery.kind === 'channels' && delivery.channels[0] === replyTopic(stand.nodeId)
    ? delivery.frames.map((frame) => JSON.parse(frame.slice(1)) as unknown)
    : [])
  return { stand, connection, answers }
}

/** A node whose requests never reach the holder (recorded in `sent`): its own timer and the stand-in's answers settle them. */
async function deafNode (t: Test, shared: Broker, logged?: string[]): Promise<{ app: TestApp['app'], sent: string[] }> {
  const sent: string[] = []
  const { app } = await node(t, brokerWith(shared, () => ({
    async sendToSession (_sessionId, frame) {
      sent.push(frame)
      return true
    }
  })), logged)
  return { app, sent }
}

t.test('topics and control texts', async (t) => {
  t.equal(replyTopic('abc'), ' node:abc')
  t.ok(isReplyTopic(' node:abc'))
  for (const channel of ['node:abc', ' user:abc', ' nodes', 'x node:abc', '']) t.notOk(isReplyTopic(channel), channel)
  t.ok(isControl('\u0000{}'))
  t.notOk(isControl('{}'))
  t.notOk(isControl(''))
})

t.test('a relayed request: its control text, an answer before the timeout, the asking node\'s own timer', async (t) => {
  const shared = memoryBroker()
  const { app: a, sent } = await deafNode(t, shared)
  const b = await node(t, shared)
  const raw = await rawClient(t, b.url)

  const asked = a.channels.ask(raw.sessionId, 'q', { n: 1 }, { timeout: 50 })
  await until(() => sent.length === 1)
  t.equal(sent[0].charCodeAt(0), 0, 'a control text: starts with NUL')
  const command = JSON.parse(sent[0].slice(1)) as { from: string }
  t.same(command, { ask: 1, from: command.from, event: 'q', timeout: 50, data: { n: 1 } })
  t.match(command.from, /^[\w-]{16,}$/, 'from: the asking node\'s id')
  await t.rejects(asked, { code: 'FST_CHANNELS_REQUEST_TIMEOUT', message: 'the client did not answer the request "q" within 50 ms' },
    'a holder that never answers: the asking node gives up by itself')
  await raw.expectNothing((frame) => frame.type === 'request')

  // through a real holder: an answer that comes within the timeout settles the request
  const c = await node(t, shared)
  const answered = c.app.channels.ask(raw.sessionId, 'q', 'within', { timeout: 400 })
  const request = await raw.next((frame) => frame.type === 'request')
  t.same(request, { type: 'request', rid: 1, event: 'q', data: 'within' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  raw.send({ type: 'reply', rid: request.rid, data: 'in time' })
  t.equal(await answered, 'in time')
})

t.test('answers from the holder: data, every error code, malformed or late ones ignored', async (t) => {
  const shared = memoryBroker()
  const logged: string[] = []
  const { app: a, sent } = await deafNode(t, shared, logged)
  const { connection } = await standIn(t, shared)
  const answer = async (text: string): Promise<void> => {
    const topic = replyTopic((JSON.parse(sent[0].slice(1)) as { from: string }).from)
    await connection.publish({ kind: 'channels', channels: [topic], frames: [text] })
  }
  const ask = (event: string): { asked: Promise<unknown>, id: number } => {
    const asked = a.channels.ask('held-elsewhere', event, null, { timeout: 30_000 })
    return { asked, id: sent.length + 1 }
  }

  const first = ask('q')
  await until(() => sent.length === 1)
  for (const bad of ['\u0000not json', '\u0000null', '\u00007', `\u0000{"answer":"${first.id}","data":"string id"}`, '\u0000{"data":"no id"}']) await answer(bad)
  await answer(`\u0000{"answer":${first.id},"data":"the answer"}`)
  t.equal(await first.asked, 'the answer', 'malformed answers before it were ignored')
  await answer(`\u0000{"answer":${first.id},"data":"a second answer"}`)

  const cases: Array<[{ code: string, clientCode?: string, message: string }, { code: string, clientCode?: string, message: string | RegExp }]> = [
    [{ code: 'FST_CHANNELS_CLIENT_ERROR', clientCode: 'DECLINED', message: 'no way' }, { code: 'FST_CHANNELS_CLIENT_ERROR', clientCode: 'DECLINED', message: 'no way' }],
    [{ code: 'FST_CHANNELS_REQUEST_TIMEOUT', message: 'x' }, { code: 'FST_CHANNELS_REQUEST_TIMEOUT', message: 'the client did not answer the request "e1" within 30000 ms' }],
    [{ code: 'FST_CHANNELS_NO_SOCKET', message: 'x' }, { code: 'FST_CHANNELS_NO_SOCKET', message: /held-elsewhere/ }],
    [{ code: 'FST_CHANNELS_TOO_MANY_REQUESTS', message: 'x' }, { code: 'FST_CHANNELS_TOO_MANY_REQUESTS', message: 'the socket has 1000 requests waiting for a reply already' }],
    [{ code: 'FST_CHANNELS_UNSERIALIZABLE', message: 'cyclic' }, { code: 'FST_CHANNELS_UNSERIALIZABLE', message: /cyclic/ }],
    [{ code: 'SOMETHING_ELSE', message: 'x' }, { code: 'FST_CHANNELS_DISCONNECTED', message: 'the connection closed before the client answered the request "e5"' }]
  ]
  for (const [i, [error, expected]] of cases.entries()) {
    const { asked, id } = ask(`e${i}`)
    await until(() => sent.length === id)
    await answer(`\u0000${JSON.stringify({ answer: id, error })}`)
    await t.rejects(asked, expected, error.code)
  }
  t.same(logged, [], 'no answer made the node fail or warn')
})

t.test('the reply topic is subscribed once; a failed subscription is tried again on the next ask', async (t) => {
  const shared = memoryBroker()
  const subscribed: string[] = []
  let failNext = true
  const { app: a } = await node(t, brokerWith(shared, (connection) => ({
    async subscribe (channel) {
      subscribed.push(channel)
      if (failNext) {
        failNext = false
        throw new Error('subscribe refused')
      }
      await connection.subscribe(channel)
    }
  })))
  const b = await node(t, shared)
  const raw = await rawClient(t, b.url)
  await t.rejects(a.channels.ask(raw.sessionId, 'q', 1), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE', message: /subscribe refused/ })
  await raw.expectNothing((frame) => frame.type === 'request')
  for (const n of [1, 2]) {
    const asked = a.channels.ask(raw.sessionId, 'q', n)
    const request = await raw.next((frame) => frame.type === 'request' && frame.data === n)
    raw.send({ type: 'reply', rid: request.rid, data: n * 10 })
    t.equal(await asked, n * 10)
  }
  t.equal(subscribed.length, 2, 'once failed, once done, then kept')
  t.ok(isReplyTopic(subscribed[0]))
  t.equal(subscribed[1], subscribed[0])
})

t.test('a broker that cannot route the request: BROKER_UNAVAILABLE; a session no node holds: NO_SOCKET; bad arguments', async (t) => {
  const shared = memoryBroker()
  const routed: unknown[] = []
  const { app: a } = await node(t, brokerWith(shared, (connection) => ({
    async sendToSession (sessionId, frame) {
      routed.push(sessionId)
      if (sessionId === 'broken') throw new Error('route lost')
      return await connection.sendToSession(sessionId, frame)
    }
  })))
  await t.rejects(a.channels.ask('broken', 'q', 1), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE', message: /route lost/ })
  await t.rejects(a.channels.ask('nobody', 'q', 1), { code: 'FST_CHANNELS_NO_SOCKET', message: /nobody/ })
  for (const sessionId of [42, undefined, null]) {
    await t.rejects(a.channels.ask(sessionId as unknown as string, 'q', 1), { code: 'FST_CHANNELS_NO_SOCKET' }, String(sessionId))
  }
  await t.rejects(a.channels.ask('nobody', 'q', 10n), { code: 'FST_CHANNELS_UNSERIALIZABLE' })
  await t.rejects(a.channels.ask('nobody', '', 1), { code: 'FST_CHANNELS_INVALID_ARGUMENT' })
  t.same(routed, ['broken', 'nobody'], 'only well-formed asks for a string session id reach the broker')
})

t.test('the asking node closes: what waits rejects DISCONNECTED', async (t) => {
  const shared = memoryBroker()
  const { app: a, sent } = await deafNode(t, shared)
  const asked = a.channels.ask('held-elsewhere', 'q', 1, { timeout: 30_000 })
  await until(() => sent.length === 1)
  await a.close()
  await t.rejects(asked, { code: 'FST_CHANNELS_DISCONNECTED', message: 'the connection closed before the client answered the request "q"' })
})

t.test('on the holding node: malformed requests are ignored; a good one is asked and answered on the asker\'s topic', async (t) => {
  const shared = memoryBroker()
  const logged: string[] = []
  const b = await node(t, shared, logged)
  const raw = await rawClient(t, b.url)
  const { stand, connection, answers } = await standIn(t, shared)
  const from = stand.nodeId
  const command = { ask: 7, from, event: 'q', timeout: 5000, data: 'd' }
  const send = async (text: string): Promise<boolean> => await connection.sendToSession(raw.sessionId, text)
  for (const key of ['ask', 'from', 'event', 'timeout'] as const) {
    t.ok(await send(`\u0000${JSON.stringify({ ...command, [key]: undefined })}`), `routed without ${key}`)
    t.ok(await send(`\u0000${JSON.stringify({ ...command, [key]: [command[key]] })}`), `routed with a bad ${key}`)
  }
  for (const text of ['\u0000not json', '\u0000null', '\u0000"text"']) await send(text)
  await raw.expectNothing((frame) => frame.type === 'request')
  t.same(answers(), [], 'nothing answered')

  await send(`\u0000${JSON.stringify(command)}`)
  const request = await raw.next((frame) => frame.type === 'request')
  t.same(request, { type: 'request', rid: 1, event: 'q', data: 'd' })
  raw.send({ type: 'reply', rid: request.rid, data: { ok: true } })
  await until(() => answers().length === 1)
  t.same(answers(), [{ answer: 7, data: { ok: true } }])

  await send(`\u0000${JSON.stringify({ ...command, ask: 8, timeout: 50 })}`)
  await until(() => answers().length === 2)
  t.same(answers()[1], { answer: 8, error: { code: 'FST_CHANNELS_REQUEST_TIMEOUT', message: 'the client did not answer the request "q" within 50 ms' } },
    'the holder\'s socket.ask with the asker\'s timeout')

  await send(`\u0000${JSON.stringify({ ...command, ask: 9, event: '' })}`)
  await until(() => answers().length === 3)
  t.match(answers()[2], { answer: 9, error: { code: 'FST_CHANNELS_INVALID_ARGUMENT' } })
  t.same(logged, [], 'no request made the node fail or warn')
})

t.test('on the holding node: an answer that cannot be published is logged', async (t) => {
  const shared = memoryBroker()
  const logged: string[] = []
  const b = await node(t, brokerWith(shared, (connection) => ({
    async publish (publication) {
      if (publication.kind === 'channels' && isReplyTopic(publication.channels[0])) throw new Error('publish refused')
      await connection.publish(publication)
    }
  })), logged)
  const raw = await rawClient(t, b.url)
  const { stand, connection } = await standIn(t, shared)
  await connection.sendToSession(raw.sessionId, `\u0000${JSON.stringify({ ask: 1, from: stand.nodeId, event: 'q', timeout: 5000 })}`)
  const request = await raw.next((frame) => frame.type === 'request')
  raw.send({ type: 'reply', rid: request.rid, data: 1 })
  await until(() => logged.includes('channels: the answer to a request from another node could not be published'))
  t.pass('logged')
})

t.test('at most maxRelayedRequests wait on other nodes at once', async (t) => {
  const shared = memoryBroker()
  const { app: a, sent } = await deafNode(t, shared)
  const waiting = Array.from({ length: maxRelayedRequests }, (_, i) => a.channels.ask('held-elsewhere', 'q', i, { timeout: 60_000 }))
  await until(() => sent.length === maxRelayedRequests, 10_000)
  await t.rejects(a.channels.ask('held-elsewhere', 'one too many', 1), {
    code: 'FST_CHANNELS_TOO_MANY_REQUESTS', message: `the socket has ${maxRelayedRequests} requests waiting for a reply already`
  })
  t.equal(sent.length, maxRelayedRequests, 'the one too many never reached the broker')
  await a.close()
  const settled = await Promise.allSettled(waiting)
  t.ok(settled.every((outcome) => outcome.status === 'rejected' && (outcome.reason as { code: string }).code === 'FST_CHANNELS_DISCONNECTED'))
})
