/**
 * Users (plugin/users/): the `user` option, `socket.user`, `track()` without a key, and
 * `fastify.channels.user(id).send / disconnect / sessions` over two nodes on the memory broker
 * (test/users/users-redis.test.ts runs the same suite on one Redis and a Redis Cluster).
 */
import t from 'tap'
import { memoryBroker } from '../../plugin/index.js'
import { startApp, TestClient, nextId } from '../helpers/server.js'
import { userTopic, isUserTopic, userIdProblem } from '../../plugin/users/directory.js'
import { client, crossNodeSuite, eventually, userOption } from './helpers.js'

t.test('on the memory broker', async (t) => {
  const shared = memoryBroker()
  await crossNodeSuite(t, () => shared)
})

t.test('the user option: a lookup that fails refuses the connection with 1008; bad ids too', async (t) => {
  for (const user of [() => { throw new Error('db down') }, () => 42, () => '']) {
    const { app, url } = await startApp({ user: user as never })
    let connected = false
    app.channels.on('connect', () => { connected = true })
    const refused = await TestClient.open(url)
    t.same(await refused.closed, { code: 1008, reason: 'user lookup failed' })
    t.equal(refused.frames.filter((frame) => frame.type === 'welcome').length, 0, 'no welcome')
    t.notOk(connected, 'no connect handler ran')
    await eventually(() => app.channels.stats().sockets === 0, 3000, 'the refused socket is gone')
    await app.close()
  }
  await t.rejects(startApp({ user: 'ann' as never }), { code: 'FST_CHANNELS_INVALID_OPTION' })
})

t.test('the user option runs after the app\'s hooks; without it socket.user is undefined', async (t) => {
  const { app, url } = await startApp({ user: (request) => (request as unknown as { auth?: string }).auth }, (app) => {
    app.channels.on('message', { event: 'whoami' }, (socket) => ({ user: socket.user ?? null }))
    app.addHook('onRequest', async (request) => { (request as unknown as { auth?: string }).auth = String(request.headers['x-user']) })
  })
  t.teardown(() => app.close())
  const ann = await client(t, url, 'ann')
  t.same((await ann.request({ type: 'message', event: 'whoami', id: nextId() })).data, { user: 'ann' })

  const plain = await startApp({}, (app) => {
    app.channels.on('message', { event: 'whoami' }, (socket) => ({ user: socket.user ?? null }))
  })
  t.teardown(() => plain.app.close())
  const someone = await client(t, plain.url, 'ann')
  t.same((await someone.request({ type: 'message', event: 'whoami', id: nextId() })).data, { user: null })
  t.same(await plain.app.channels.user('ann').sessions(), [], 'no user option: no user has sessions')
})

t.test('user(): bad ids and bad close codes are coded errors; a bad channel too', async (t) => {
  const { app } = await startApp({ user: userOption })
  t.teardown(() => app.close())
  t.throws(() => app.channels.user('' as string), { code: 'FST_CHANNELS_INVALID_ARGUMENT' })
  t.throws(() => app.channels.user(7 as unknown as string), { code: 'FST_CHANNELS_INVALID_ARGUMENT' })
  await t.rejects(app.channels.user('ann').disconnect(1005), { code: 'FST_CHANNELS_INVALID_ARGUMENT' })
  await t.rejects(app.channels.user('ann').disconnect(1008, 5 as unknown as string), { code: 'FST_CHANNELS_INVALID_ARGUMENT' })
  await t.rejects(app.channels.user('ann').send('x', { channel: 'has space' }), { code: 'FST_CHANNELS_INVALID_CHANNEL' })
  await t.rejects(app.channels.user('ann').send(10n), { code: 'FST_CHANNELS_UNSERIALIZABLE' })
})

t.test('user topics: never an app channel name; any id fits', async (t) => {
  for (const id of ['ann', 'a\nb', 'x'.repeat(1024), 'ü €']) {
    const topic = userTopic(id)
    t.ok(isUserTopic(topic))
    t.notOk(topic.includes('\n'))
    t.equal(topic.length, 49)
  }
  t.notOk(isUserTopic('user:ann'))
  t.notOk(isUserTopic(' other'))
  t.equal(userIdProblem('x'.repeat(1025)), 'a user id has 1 to 1024 characters')
  t.equal(userIdProblem('x'), undefined)
})

t.test('the user option: what a refusal logs; a lookup that resolves undefined lets an anonymous connection in', async (t) => {
  const logged: Array<{ level: number, msg: string, sessionId?: string, err?: { message: string } }> = []
  const stream = { write: (line: string) => { logged.push(JSON.parse(line) as typeof logged[number]) } }
  const lookups: Array<() => unknown> = [() => { throw new Error('db down') }, () => 42, () => undefined]
  let lookup = lookups[0]
  const { app, url } = await startApp({ user: () => lookup() as string }, (app) => {
    app.channels.on('message', { event: 'whoami' }, (socket) => ({ user: socket.user ?? null }))
  }, { logger: { level: 'error', stream } })
  t.teardown(() => app.close())

  const thrown = await TestClient.open(url)
  t.same(await thrown.closed, { code: 1008, reason: 'user lookup failed' })
  t.match(logged, [{ level: 50, msg: 'channels: the user option failed; connection refused', sessionId: String, err: { message: 'db down' } }])

  lookup = lookups[1]
  const numeric = await TestClient.open(url)
  t.same(await numeric.closed, { code: 1008, reason: 'user lookup failed' })
  t.match(logged[1], { level: 50, msg: 'channels: the user option returned no user id (a user id is a string, got number); connection refused', sessionId: String })

  lookup = lookups[2]
  const anonymous = await TestClient.connect(url)
  t.teardown(() => anonymous.close())
  t.same((await anonymous.request({ type: 'message', event: 'whoami', id: nextId() })).data, { user: null })
  t.equal(logged.length, 2, 'nothing more logged')
})
