/**
 * The client's presence view against a real server: `client.presence()`, `onPresence` with
 * the diffs, leaving, and the state rebuilt from a fresh `presence` frame after a reconnect.
 */
import t, { type Test } from 'tap'
import type { ChannelSocket } from '../../plugin/index.js'
import type { ChannelsClient, PresenceDiff, PresenceState } from '../../client/index.js'
import { recordSockets, startApp } from '../helpers/server.js'
import { presenceHandlers } from '../presence/helpers.js'
import { clientFor, statusOf } from './helpers.js'

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
