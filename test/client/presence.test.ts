/**
 * The client's presence view (client/presence.ts) against a real server: `client.presence()`,
 * `onPresence` with the diffs, leaving, and the state rebuilt from a fresh `presence` frame
 * after a reconnect; then against a scripted server, the folding of exact frames.
 */
import t, { type Test } from 'tap'
import type { ChannelSocket } from '../../plugin/index.js'
import type { ChannelsClient, PresenceDiff, PresenceState } from '../../client/index.js'
import { within } from '../helpers/deadline.js'
import { recordSockets, startApp, until } from '../helpers/server.js'
import { presenceHandlers } from '../presence/helpers.js'
import { clientFor, nextEvent, statusOf } from './helpers.js'
import { ScriptedServer } from './scripted-server.js'

type AnyClient = ChannelsClient<any>

/** Resolves with the first (state, diff) for which `predicate` holds; fails with `what`. */
function presenceWhere (client: AnyClient, channel: string, predicate: (state: PresenceState) => boolean, what: string): Promise<{ state: PresenceState, diff: PresenceDiff }> {
  return new Promise((resolve, reject) => {
    if (predicate(client.presence(channel))) {
      resolve({ state: client.presence(channel), diff: { joins: {}, leaves: {} } })
      return
    }
    const timer = setTimeout(() => { off(); reject(new Error(`${what}: not within 5000 ms; state ${JSON.stringify(client.presence(channel))}`)) }, 5000)
    const off = client.onPresence(channel, (state, diff) => {
      if (!predicate(state)) return
      clearTimeout(timer)
      off()
      resolve({ state, diff })
    })
  })
}

async function setup (t: Test): Promise<{ url: string, sockets: Map<string, ChannelSocket> }> {
  let sockets = new Map<string, ChannelSocket>()
  const { app, url } = await startApp({ presence: /^room/ }, (app) => {
    sockets = recordSockets(app)
    presenceHandlers(app)
  })
  t.teardown(() => app.close())
  return { url, sockets }
}

t.test('presence() and onPresence follow joins and leaves', async (t) => {
  const { url } = await setup(t)
  const watcher = clientFor(t, url)
  const ann = clientFor(t, url)
  t.same(watcher.presence('room'), {}, '{} before anything is known')
  await watcher.subscribe('room')
  await ann.subscribe('room')
  const joined = presenceWhere(watcher, 'room', (s) => s.ann !== undefined, 'ann joins')
  await ann.request('join', { key: 'ann', meta: { name: 'Ann' } }, { channel: 'room' })
  const { state, diff } = await joined
  t.same(state.ann.map((e) => e.meta), [{ name: 'Ann' }])
  t.same(Object.keys(diff.joins), ['ann'], 'the diff names the join')
  t.same(diff.leaves, {})
  await presenceWhere(ann, 'room', (s) => s.ann !== undefined, 'ann sees herself')
  t.same(ann.presence('room'), watcher.presence('room'), 'the tracker sees itself too')

  const left = presenceWhere(watcher, 'room', (s) => s.ann === undefined, 'ann leaves')
  await ann.unsubscribe('room')
  const after = await left
  t.same(Object.keys(after.diff.leaves), ['ann'])
  t.same(ann.presence('room'), {}, 'a channel left has no state')

  let calls = 0
  const off = watcher.onPresence('room', () => { calls++ })
  off()
  await ann.subscribe('room')
  await ann.request('join', { key: 'ann' }, { channel: 'room' })
  await presenceWhere(watcher, 'room', (s) => s.ann !== undefined, 'ann back')
  t.equal(calls, 0, 'off() stops the listener')
  t.same(watcher.presence('plain'), {}, 'a channel without presence: {}')
})

t.test('after a reconnect the state is rebuilt from the fresh presence frame', async (t) => {
  const { url, sockets } = await setup(t)
  const watcher = clientFor(t, url)
  const ann = clientFor(t, url)
  const bob = clientFor(t, url)
  for (const client of [watcher, ann, bob]) await client.subscribe('room')
  await ann.request('join', { key: 'ann' }, { channel: 'room' })
  await watcher.request('join', { key: 'watcher' }, { channel: 'room' })
  await presenceWhere(watcher, 'room', (s) => s.ann !== undefined && s.watcher !== undefined, 'ann and watcher')

  // The watcher drops; meanwhile ann leaves and bob joins.
  const oldRef = watcher.presence('room').watcher[0].ref
  const reconnecting = statusOf(watcher, 'reconnecting')
  const server = sockets.get(watcher.sessionId as string) as ChannelSocket
  ;(server as unknown as { ws: { terminate: () => void } }).ws.terminate()
  await reconnecting
  const joins = new Set<string>()
  const leaves = new Set<string>()
  watcher.onPresence('room', (_state, diff) => {
    for (const key of Object.keys(diff.joins)) joins.add(key)
    for (const key of Object.keys(diff.leaves)) leaves.add(key)
  })
  ann.close()
  await bob.request('join', { key: 'bob' }, { channel: 'room' })
  // Whether ann's close reaches the server before or after the watcher's resubscription, the
  // state ends the same; the old session's track can only go through the fresh presence frame.
  const rebuilt = await presenceWhere(watcher, 'room', (s) => s.bob !== undefined && s.ann === undefined, 'bob and no ann after the reconnect')
  t.equal(rebuilt.state.watcher, undefined, 'the watcher\'s old track went with its old session')
  t.ok(joins.has('bob'), 'reported as what changed: bob joined ...')
  t.same([...leaves].sort(), ['ann', 'watcher'], '... ann and the old watcher left')
  t.notOk(JSON.stringify(watcher.presence('room')).includes(oldRef))
})

/** A presence entry as the server writes it. */
const entry = (ref: string, meta: object = {}): { ref: string, meta: object } => ({ ref, meta })

/** A client on a scripted server, holding `room`, with every (state, diff) its listener got. */
async function scripted (t: Test) {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  const calls: Array<{ state: PresenceState, diff: PresenceDiff }> = []
  client.onPresence('room', (state, diff) => calls.push({ state, diff }))
  ws.send({ type: 'subscribed', channel: 'room' })
  const next = async (what: string): Promise<{ state: PresenceState, diff: PresenceDiff }> => {
    const count = calls.length
    await until(() => calls.length > count, 3000, what)
    return calls[count]
  }
  return { server, client, ws, calls, next }
}

t.test('a presence frame replaces the state and is reported as its difference from the old one', async (t) => {
  const { client, ws, next } = await scripted(t)
  ws.send({ type: 'presence', channel: 'room', state: { ann: [entry('a1'), entry('a2')], ghost: [], bob: [entry('b1')] } })
  const first = await next('the first state')
  t.same(first.state, { ann: [entry('a1'), entry('a2')], bob: [entry('b1')] }, 'a key without entries is nobody')
  t.same(first.diff, { joins: { ann: [entry('a1'), entry('a2')], bob: [entry('b1')] }, leaves: {} })
  ws.send({ type: 'presence', channel: 'room', state: { ann: [entry('a2'), entry('a3')], cy: [entry('c1')] } })
  const second = await next('the second state')
  t.same(second.diff, { joins: { ann: [entry('a3')], cy: [entry('c1')] }, leaves: { ann: [entry('a1')], bob: [entry('b1')] } })
  t.same(client.presence('room'), { ann: [entry('a2'), entry('a3')], cy: [entry('c1')] })
})

t.test('a presence_diff applies its leaves, then its joins, and is reported as it came', async (t) => {
  const { client, ws, next } = await scripted(t)
  ws.send({ type: 'presence', channel: 'room', state: { ann: [entry('a1'), entry('a2')], bob: [entry('b1')] } })
  await next('the state')
  const diff = {
    joins: { ann: [entry('a3', { x: 1 })], dan: [entry('d1')], bob: [entry('b1', { back: true })] },
    leaves: { ann: [entry('a1')], bob: [entry('b1')], nobody: [entry('n1')] }
  }
  ws.send({ type: 'presence_diff', channel: 'room', ...diff })
  const applied = await next('the diff')
  t.same(applied.diff, diff)
  t.same(applied.state, { ann: [entry('a2'), entry('a3', { x: 1 })], bob: [entry('b1', { back: true })], dan: [entry('d1')] },
    'a leave and a join of one ref in one diff: it stays (leaves first); an unknown leave is ignored')
  ws.send({ type: 'presence_diff', channel: 'room', joins: {}, leaves: { bob: [entry('b1')], dan: [entry('d1')] } })
  t.same((await next('the second diff')).state, { ann: [entry('a2'), entry('a3', { x: 1 })] }, 'a key whose last ref left is gone')
  t.same(client.presence('room'), { ann: [entry('a2'), entry('a3', { x: 1 })] })
})

t.test('a diff for a channel with no state yet starts one', async (t) => {
  const { ws, next } = await scripted(t)
  ws.send({ type: 'presence_diff', channel: 'room', joins: { ann: [entry('a1')] }, leaves: { bob: [entry('b1')] } })
  t.same((await next('the diff')).state, { ann: [entry('a1')] })
})

t.test('listeners per channel: each off() stops only its own, even called twice after a new one', async (t) => {
  const { client, ws } = await scripted(t)
  const first: unknown[] = []
  const second: unknown[] = []
  const offFirst = client.onPresence('solo', (state) => first.push(state))
  offFirst() // the channel's last listener: its set goes
  const offSecond = client.onPresence('solo', (state) => second.push(state))
  offFirst() // a stale off: must not remove the new listener
  client.onPresence('solo', () => {})() // on and off again: the second one stays
  ws.send({ type: 'subscribed', channel: 'solo' })
  ws.send({ type: 'presence', channel: 'solo', state: { ann: [entry('a1')] } })
  await until(() => Object.keys(client.presence('solo')).length === 1, 3000, 'the state of solo')
  t.same(first, [])
  t.same(second, [{ ann: [entry('a1')] }])
  offSecond()
  const leaving = client.unsubscribe('never-had-presence') // no presence state to forget: fine
  ws.send({ type: 'unsubscribed', channel: 'never-had-presence', id: (await ws.next('unsubscribe')).id })
  await within(leaving, 3000, 'the unsubscribe resolves')
})

t.test('leaving a channel reports its members as leaves; an empty state is not reported', async (t) => {
  const { server, client, ws, calls, next } = await scripted(t)
  const empty: PresenceDiff[] = []
  client.onPresence('quiet', (_state, diff) => empty.push(diff))
  ws.send({ type: 'subscribed', channel: 'quiet' })
  ws.send({ type: 'presence', channel: 'quiet', state: {} })
  ws.send({ type: 'presence', channel: 'room', state: { ann: [entry('a1')] } })
  await next('the state')
  t.same(empty, [{ joins: {}, leaves: {} }], 'the empty state arrived')
  const leaving = client.unsubscribe('room')
  t.same(calls[1], { state: {}, diff: { joins: {}, leaves: { ann: [entry('a1')] } } }, 'reported at once')
  const frame = await ws.next('unsubscribe')
  ws.send({ type: 'unsubscribed', channel: 'room', id: frame.id })
  await leaving
  ws.send({ type: 'unsubscribed', channel: 'quiet' }) // the server took the client out
  ws.send({ type: 'message', event: 'sync', data: null })
  await within(nextEvent(client, 'sync'), 3000, 'the frames after the unsubscribed')
  t.same(empty.length, 1, 'nobody was there: no leaves to report')
  t.same(client.presence('quiet'), {})
  t.equal(server.connections.length, 1)
})
