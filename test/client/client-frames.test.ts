/**
 * The client (client/client.ts) against a scripted server: the exact frames it writes, and
 * what it does with frames the real plugin sends only in rare orders (an unsolicited
 * `subscribed`, an `unsubscribed` racing a join, a frame it cannot decode, a late answer).
 */
import t from 'tap'
import type { ChannelsClientError, PresenceDiff, Status } from '../../client/index.js'
import { within } from '../helpers/deadline.js'
import { until } from '../helpers/server.js'
import { clientFor, nextEvent, statusOf } from './helpers.js'
import { ScriptedServer } from './scripted-server.js'

t.test('send and request write exactly the frames of the protocol, with growing ids', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  t.equal(client.send('hello', { a: 1 }), true)
  t.same(await ws.next('message'), { type: 'message', event: 'hello', data: { a: 1 } }, 'no channel key, no id')
  client.send('hello', 2, { channel: 'room' })
  t.same(await ws.next('message'), { type: 'message', event: 'hello', data: 2, channel: 'room' })
  const first = client.request('ask', 'x', { channel: 'room' })
  const second = client.request('ask', 'y')
  const one = await ws.next('message')
  const two = await ws.next('message')
  t.same(one, { type: 'message', event: 'ask', data: 'x', channel: 'room', id: 1 })
  t.same(two, { type: 'message', event: 'ask', data: 'y', id: 2 })
  ws.send({ type: 'ack', id: 2, data: 'for y' })
  ws.send({ type: 'ack', id: 1 })
  t.equal(await within(second, 3000, 'the second request resolves'), 'for y')
  t.equal(await within(first, 3000, 'the first request resolves'), undefined, 'an ack without data')
})

t.test('subscribe writes last only when asked; unsubscribe writes its own id and waits for the answer', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  const plain = client.subscribe('a')
  t.same(await ws.next('subscribe'), { type: 'subscribe', channel: 'a', id: 1 })
  const backlog = client.subscribe('b', { last: 3 })
  t.same(await ws.next('subscribe'), { type: 'subscribe', channel: 'b', id: 2, last: 3 })
  t.same(client.channels, [], 'a join on the wire is not held yet')
  ws.send({ type: 'subscribed', channel: 'a', id: 1 })
  ws.send({ type: 'subscribed', channel: 'b', id: 2 })
  await within(Promise.all([plain, backlog]), 3000, 'both joins resolve')
  t.same(client.channels, ['a', 'b'])

  let left = false
  const leaving = client.unsubscribe('a').then(() => { left = true })
  t.same(await ws.next('unsubscribe'), { type: 'unsubscribe', channel: 'a', id: 3 })
  t.same(client.channels, ['b'], 'forgotten at once')
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.equal(left, false, 'still waiting for the answer')
  ws.send({ type: 'unsubscribed', channel: 'a', id: 3 })
  await within(leaving, 3000, 'the unsubscribe resolves on its answer')

  const refused = client.unsubscribe('b')
  const frame = await ws.next('unsubscribe')
  ws.send({ type: 'error', id: frame.id, code: 'NOPE', message: 'no' })
  await t.rejects(refused, { code: 'NOPE', channel: 'b' })
  await t.rejects(client.unsubscribe('bad name'), { code: 'INVALID_CHANNEL' })
})

t.test('an unanswered unsubscribe rejects TIMEOUT after its own timeout; one cut off resolves', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { timeout: 5000 })
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  const started = Date.now()
  await t.rejects(client.unsubscribe('a', { timeout: 50 }), { code: 'TIMEOUT', channel: 'a', message: 'the unsubscription from "a" was not answered within 50 ms' })
  t.ok(Date.now() - started < 2000, 'the per-call timeout wins over the client default')
  const cut = client.unsubscribe('b')
  await ws.next('unsubscribe')
  await ws.next('unsubscribe')
  ws.close(4000)
  await within(cut, 3000, 'a drop resolves an unsubscribe on the wire: the next session does not hold it')
})

t.test('message listeners: meta with the channel only when there is one, several listeners per event', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  const metas: unknown[] = []
  const other: unknown[] = []
  client.on('news', (data, meta) => metas.push([data, meta]))
  const off = client.on('news', (data) => other.push(data))
  ws.send({ type: 'message', event: 'news', data: 1 })
  ws.send({ type: 'message', event: 'news', data: 2, channel: 'room' })
  ws.send({ type: 'message', event: 'unheard', data: 0 })
  await until(() => metas.length === 2, 3000, 'two news events')
  t.same(metas, [[1, { event: 'news' }], [2, { event: 'news', channel: 'room' }]])
  t.same(metas.map((seen) => Object.keys((seen as [unknown, object])[1])), [['event'], ['event', 'channel']], 'no channel or offset keys without them')
  t.same(other, [1, 2], 'the second listener got them too')
  off()
  ws.send({ type: 'message', event: 'news', data: 3 })
  await until(() => metas.length === 3, 3000, 'a third news event')
  t.same(other, [1, 2], 'off() stopped only its own listener')
})

t.test('a frame the client cannot read reaches onError as BAD_FRAME, and the connection stays', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  ws.send('{ not json')
  ws.ws.send(Buffer.from('binary'), { binary: true })
  ws.send({ type: 'message', event: 'fine', data: 1 })
  await within(nextEvent(client, 'fine'), 3000, 'a good frame after the bad ones')
  t.match(errors, [{ code: 'BAD_FRAME', message: /cannot read/ }, { code: 'BAD_FRAME', message: /binary/ }])
  t.equal(client.status, 'open')
})

t.test('frames without an id: the server subscribed or unsubscribed the client, or refused a send', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  const errors: ChannelsClientError[] = []
  const subscribed: string[] = []
  client.onError((error) => errors.push(error))
  client.onSubscribed((channel) => subscribed.push(channel))
  ws.send({ type: 'subscribed', channel: 'pushed' })
  await until(() => subscribed.length === 1, 3000, 'onSubscribed for a server-side join')
  t.same(client.channels, ['pushed'])

  // An unsubscribed without id for a channel being joined (an old leave) keeps the join.
  const joining = client.subscribe('racing')
  const join = await ws.next('subscribe')
  ws.send({ type: 'unsubscribed', channel: 'never-held' })
  ws.send({ type: 'unsubscribed', channel: 'racing' })
  ws.send({ type: 'unsubscribed', channel: 'pushed' })
  ws.send({ type: 'subscribed', channel: 'racing', id: join.id })
  await within(joining, 3000, 'the join resolves')
  t.same(client.channels, ['racing'], 'the pushed channel left, the racing join held')

  ws.send({ type: 'error', code: 'NO_HANDLER', message: 'nobody' })
  ws.send({ type: 'error', id: 999, code: 'LATE', message: 'an answer nobody waits for' })
  ws.send({ type: 'message', event: 'sync', data: null })
  await within(nextEvent(client, 'sync'), 3000, 'the frames after the errors')
  t.match(errors, [{ code: 'NO_HANDLER' }], 'only the error without an id reaches onError')
  t.equal(errors.length, 1)
})

t.test('presence frames of a channel the client does not hold are ignored', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  const diffs: PresenceDiff[] = []
  client.onPresence('room', (_state, diff) => diffs.push(diff))
  ws.send({ type: 'presence', channel: 'room', state: { ada: [{ ref: 'r1', meta: {} }] } })
  ws.send({ type: 'subscribed', channel: 'held' })
  ws.send({ type: 'presence', channel: 'held', state: { bob: [{ ref: 'r2', meta: {} }] } })
  await until(() => Object.keys(client.presence('held')).length === 1, 3000, 'the held channel\'s presence')
  t.same(client.presence('room'), {})
  t.same(diffs, [])
})

t.test('close(): queued requests and waiting joins reject, presence is reported gone', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  await server.connection() // never welcomed: everything waits offline
  const queued = client.request('ask', 1)
  const waiting = client.subscribe('later')
  t.equal(client.queued, 1)
  t.same(client.channels, [], 'a join waiting to be sent is not held')
  client.close()
  await t.rejects(queued, { code: 'DISCONNECTED' })
  await t.rejects(waiting, { code: 'DISCONNECTED', channel: 'later' })
  t.equal(client.queued, 0)
  t.equal(client.send('late', 1, { channel: 'bad name' }), false, 'closed: dropped, not checked')
})

t.test('close() forgets every presence state and reports it as leaves', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  const diffs: PresenceDiff[] = []
  client.onPresence('held', (_state, diff) => diffs.push(diff))
  ws.send({ type: 'subscribed', channel: 'held' })
  ws.send({ type: 'presence', channel: 'held', state: { bob: [{ ref: 'r2', meta: {} }] } })
  await until(() => diffs.length === 1, 3000, 'the presence state')
  client.close()
  t.same(diffs[1], { joins: {}, leaves: { bob: [{ ref: 'r2', meta: {} }] } })
  t.same(client.presence('held'), {})
})

t.test('the offline queue holds 100 frames by default', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  await server.connection()
  for (let n = 0; n < 100; n++) t.equal(client.send('n', n), true)
  t.equal(client.send('n', 100), false, 'the 101st is dropped')
  await t.rejects(client.request('ask', 1), { code: 'QUEUE_FULL', message: /100 frames are queued/ })
})

t.test('options: params on every connect (a function is called each time, an object added as it is), reconnect: false', async (t) => {
  const server = await ScriptedServer.start(t)
  let n = 0
  const client = clientFor(t, server.url, { params: () => ({ try: String(++n) }) })
  const first = await server.welcomed()
  await statusOf(client, 'open')
  first.close(4000)
  const second = await server.welcomed(1)
  t.same([first.url, second.url], ['/ws?try=1', '/ws?try=2'])
  client.close()

  const fixed = clientFor(t, server.url, { params: { nick: 'ada' }, reconnect: false })
  const statuses: Status[] = []
  fixed.onStatus((status) => statuses.push(status))
  const ws = await server.welcomed(2)
  t.equal(ws.url, '/ws?nick=ada')
  await statusOf(fixed, 'open')
  ws.close(4000)
  await statusOf(fixed, 'closed')
  t.same(statuses, ['open', 'closed'], 'no reconnect')
  const plain = clientFor(t, server.url)
  t.equal((await server.connection(3)).url, '/ws', 'no params: the URL as given')
  plain.close()
})

t.test('a request queued before a drop is sent and answered on the next connection', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const first = await server.connection()
  const reply = client.request('ask', 1)
  first.close(4000) // before any welcome: the request never left the queue
  const second = await server.welcomed(1)
  const frame = await second.next('message')
  second.send({ type: 'ack', id: frame.id, data: 'answered' })
  t.equal(await within(reply, 3000, 'the queued request is answered'), 'answered')
  t.same(first.log, [])
})

t.test('subscribe to a channel the server put the client in: resolves at once, writes nothing', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  const subscribed: string[] = []
  client.onSubscribed((channel) => subscribed.push(channel))
  ws.send({ type: 'subscribed', channel: 'pushed' })
  await until(() => subscribed.length === 1, 3000, 'the server-side join')
  await within(client.subscribe('pushed'), 1000, 'subscribe resolves')
  ws.send({ type: 'message', event: 'line', channel: 'pushed', data: 1, offset: 5 })
  const line = await within(new Promise<unknown>((resolve) => client.on('line', (_data, meta) => resolve(meta))), 3000, 'a line')
  t.same(line, { event: 'line', channel: 'pushed', offset: 5 }, 'the offset is passed on')
  t.same(ws.log, [], 'no subscribe frame')
})

t.test('without a backoff option the default one reconnects within a second', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { backoff: undefined })
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  ws.close(4000)
  await statusOf(client, 'reconnecting')
  const started = Date.now()
  await server.welcomed(1)
  await statusOf(client, 'open')
  t.ok(Date.now() - started < 1000, 'the first retry comes after 125–250 ms')
})
