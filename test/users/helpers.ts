/**
 * The users suite over two nodes, shared by the memory test and the Redis ones: a user's
 * sessions on both nodes, a send that reaches each of them once, `track()` without a key, a
 * disconnect that closes them all with 1008, sessions gone after a close.
 */
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Broker, ChannelsOptions } from '../../plugin/index.js'
import { startApp, TestClient, nextId, type TestApp } from '../helpers/server.js'

import { eventually } from '../helpers/eventually.js'

export { eventually }

export const userOption: ChannelsOptions['user'] = async (request) => {
  const header = request.headers['x-user']
  return typeof header === 'string' ? header : undefined
}

function setup (app: FastifyInstance): void {
  app.channels.on('message', { event: 'whoami' }, (socket) => ({ user: socket.user ?? null }))
  app.channels.on('message', { event: 'track' }, async (socket, data, meta) => {
    await socket.track(meta.channel as string, undefined, data)
    return 'tracked'
  })
}

async function node (t: Test, broker: Broker, options: ChannelsOptions = {}): Promise<TestApp> {
  const started = await startApp({ broker, user: userOption, rateLimit: false, heartbeat: false, presence: true, ...options }, setup)
  t.teardown(() => started.app.close())
  return started
}

export async function client (t: Test, url: string, user?: string): Promise<TestClient> {
  const connected = await TestClient.connect(url, user === undefined ? {} : { headers: { 'x-user': user } })
  t.teardown(() => connected.close())
  return connected
}

/** Two nodes on `broker()` (called once per node: a memory broker is shared by passing one instance). */
export async function crossNodeSuite (t: Test, broker: () => Broker): Promise<void> {
  const a = await node(t, broker())
  const b = await node(t, broker())
  const ann1 = await client(t, a.url, 'ann')
  const ann2 = await client(t, b.url, 'ann')
  const bob = await client(t, b.url, 'bob')
  const anon = await client(t, a.url)

  const sessions = await a.app.channels.user('ann').sessions()
  t.same(sessions.sort(), [ann1.sessionId, ann2.sessionId].sort(), 'both of ann\'s sessions, one per node')
  t.same(await b.app.channels.user('bob').sessions(), [bob.sessionId])
  t.same(await b.app.channels.user('nobody').sessions(), [])

  await b.app.channels.user('ann').send({ hi: 1 }, { event: 'note', channel: 'room-1' })
  for (const annClient of [ann1, ann2]) {
    t.same(await annClient.next((frame) => frame.type === 'message'), { type: 'message', event: 'note', channel: 'room-1', data: { hi: 1 } })
  }
  await a.app.channels.user('nobody').send('none is not an error')
  for (const other of [bob, anon, ann1, ann2]) await other.expectNothing((frame) => frame.type === 'message')

  const whoami = await ann2.request({ type: 'message', event: 'whoami', id: nextId() })
  t.same(whoami.data, { user: 'ann' })
  t.same((await anon.request({ type: 'message', event: 'whoami', id: nextId() })).data, { user: null })

  // track() without a key: under the user; an anonymous connection is refused INVALID_PRESENCE
  await ann1.subscribe('room-1')
  await ann2.subscribe('room-1')
  await anon.subscribe('room-1')
  await ann1.request({ type: 'message', event: 'track', channel: 'room-1', data: { device: 'phone' }, id: nextId() })
  await ann2.request({ type: 'message', event: 'track', channel: 'room-1', data: { device: 'laptop' }, id: nextId() })
  const refused = await anon.request({ type: 'message', event: 'track', channel: 'room-1', data: {}, id: nextId() })
  t.equal(refused.code, 'INVALID_PRESENCE')
  await eventually(async () => (await a.app.channels.presence('room-1')).ann?.length === 2, 5000, 'two tracks of ann')
  t.same(Object.keys(await b.app.channels.presence('room-1')), ['ann'], 'one member per user, with a track per device')

  // disconnect: every connection of the user, on every node, with 1008
  await a.app.channels.user('ann').disconnect()
  t.same((await ann1.closed).code, 1008)
  t.same((await ann2.closed).code, 1008)
  await eventually(async () => (await b.app.channels.user('ann').sessions()).length === 0, 5000, 'ann has no session left')
  await bob.expectNothing()
  t.same(await a.app.channels.user('bob').sessions(), [bob.sessionId], 'others stay connected')

  await a.app.channels.user('bob').disconnect(4000, 'bye')
  t.same(await bob.closed, { code: 4000, reason: 'bye' })
}
