/**
 * Joining and leaving around presence (plugin/presence/tracker.ts): presence off, channels
 * without presence in a presence app, a socket that left, tracks in several channels.
 */
import t from 'tap'
import { memoryBroker, type ChannelSocket } from '../../plugin/index.js'
import { startApp, TestClient, nextId } from '../helpers/server.js'
import { Observer, presenceHandlers, startPresenceApp } from './helpers.js'

/** An app whose handler errors are collected, and its sockets by session id. */
async function start (t: { teardown (fn: () => unknown): void }, presence: boolean | RegExp) {
  const errors: Error[] = []
  const sockets = new Map<string, ChannelSocket>()
  const started = await startApp({ presence, rateLimit: false }, (app) => {
    presenceHandlers(app)
    app.channels.on('error', (_socket, err) => { errors.push(err) })
    app.channels.on('connect', (socket) => { sockets.set(socket.id, socket) })
  })
  t.teardown(() => started.app.close())
  return { ...started, errors, sockets }
}

t.test('presence off: joins and leaves as usual, a track is refused', async (t) => {
  const { url, errors, sockets } = await start(t, false)
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  t.same(await client.subscribe('room', 1), { type: 'subscribed', channel: 'room', id: 1 })
  await t.rejects((sockets.get(client.sessionId) as ChannelSocket).track('room', 'ann'), { code: 'FST_CHANNELS_INVALID_PRESENCE', message: /not a presence channel/ })
  t.same(await client.request({ type: 'unsubscribe', channel: 'room', id: 2 }), { type: 'unsubscribed', channel: 'room', id: 2 })
  await client.expectNothing((frame) => frame.type === 'presence' || frame.type === 'presence_diff')
  t.same(errors, [])
})

t.test('a channel without presence in a presence app: joined and left without a presence frame or an error', async (t) => {
  const { url, errors } = await start(t, /^room-/)
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  t.same(await client.subscribe('plain', 1), { type: 'subscribed', channel: 'plain', id: 1 })
  t.same(await client.request({ type: 'unsubscribe', channel: 'plain', id: 2 }), { type: 'unsubscribed', channel: 'plain', id: 2 })
  await client.expectNothing((frame) => frame.type === 'presence')
  t.same(errors, [])
})

t.test('a socket that left a channel gets none of its diffs; one that stays does', async (t) => {
  const { url } = await startPresenceApp(t)
  const leaver = await Observer.join(url, 'room')
  const stayer = await Observer.join(url, 'room')
  t.teardown(() => { leaver.client.close(); stayer.client.close() })
  await leaver.client.request({ type: 'unsubscribe', channel: 'room', id: nextId() })
  const ann = await Observer.join(url, 'room')
  t.teardown(() => ann.client.close())
  await ann.track('ann')
  await stayer.until((s) => s.ann !== undefined, 'ann seen by the socket that stayed')
  await leaver.client.expectNothing((frame) => frame.type === 'presence_diff')
})

t.test('tracks in two channels: each untracked on its own; untracking an untracked channel does nothing', async (t) => {
  let socket: ChannelSocket | undefined
  const { url } = await startPresenceApp(t, {}, (app) => {
    app.channels.on('connect', (s) => { socket ??= s })
  })
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  for (const channel of ['a', 'b', 'c']) await client.subscribe(channel)
  const onA = await Observer.join(url, 'a')
  const onB = await Observer.join(url, 'b')
  t.teardown(() => { onA.client.close(); onB.client.close() })
  const s = socket as ChannelSocket
  await s.track('a', 'ann')
  await s.track('b', 'ann')
  await onA.until((state) => state.ann !== undefined, 'ann in a')
  await onB.until((state) => state.ann !== undefined, 'ann in b')
  await s.untrack('c')
  await s.untrack('a')
  await onA.until((state) => state.ann === undefined, 'ann left a')
  await onB.client.expectNothing((frame) => frame.type === 'presence_diff')
  await s.untrack('b')
  await onB.until((state) => state.ann === undefined, 'ann left b too')
})

t.test('a node that had no member of a channel sends the whole state first, not {} and then joins', async (t) => {
  const broker = memoryBroker()
  const a = await startPresenceApp(t, { broker })
  const b = await startPresenceApp(t, { broker })
  const onA = await Observer.join(a.url, 'room')
  await onA.track('ann')
  await onA.until((s) => s.ann !== undefined, 'ann on A')
  const onB = await Observer.join(b.url, 'room') // B had nobody in the room
  t.same(Object.keys(onB.state), ['ann'], 'the first presence frame on B holds ann')
  await new Promise((resolve) => setTimeout(resolve, 250)) // past a diff window
  onB.drain()
  t.same(onB.diffs, [], 'and no diff brings her in again')
})
