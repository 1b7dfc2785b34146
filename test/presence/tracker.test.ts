import t from 'tap'
import { memoryBroker, type Broker, type BrokerConnection, type ChannelSocket, type PresenceBroker, type PresenceChanges } from '../../plugin/index.js'
import { presenceWindowMs } from '../../plugin/presence/diff-windows.js'
import { nextId, recordSockets, TestClient } from '../helpers/server.js'
import { canonical, Observer, startPresenceApp, type State } from './helpers.js'
import { within } from '../helpers/deadline.js'

t.test('track, late joiner, re-track, untrack, leave on unsubscribe and on close', async (t) => {
  const { app, url } = await startPresenceApp(t)
  const watcher = await Observer.join(url, 'room')
  t.same(watcher.state, {}, 'an empty channel: an empty state')

  const ann = await Observer.join(url, 'room')
  t.same((await ann.track('ann', { name: 'Ann' })).type, 'ack')
  await watcher.until((s) => s.ann?.length === 1, 'ann present')
  const annRef = watcher.state.ann[0].ref
  t.same(watcher.state.ann[0].meta, { name: 'Ann' })
  t.not(annRef, ann.client.sessionId, 'the ref is not the session id')
  t.ok(annRef.length >= 20, 'the ref is long enough not to be guessed')
  t.same(await app.channels.presence('room'), watcher.state, 'fastify.channels.presence is what the observer folded')

  const late = await Observer.join(url, 'room')
  t.same(late.state, watcher.state, 'a late joiner gets the whole state in its presence frame')

  await ann.track('ann', { name: 'Ann', away: true })
  await watcher.until((s) => s.ann?.length === 1 && s.ann[0].ref !== annRef, 'ann re-tracked')
  t.same(watcher.state.ann[0].meta, { name: 'Ann', away: true }, 're-tracking replaces the meta')
  const retrack = watcher.diffs.at(-1)
  t.same(Object.keys(retrack?.leaves as State), ['ann'], 'as a leave of the old meta ...')
  t.same(Object.keys(retrack?.joins as State), ['ann'], '... and a join of the new, in one diff')

  await ann.untrack()
  await watcher.until((s) => s.ann === undefined, 'ann untracked')

  await ann.track('ann')
  await watcher.until((s) => s.ann?.[0].meta !== undefined, 'ann back')
  t.same(watcher.state.ann[0].meta, {}, 'meta defaults to {}')
  await ann.client.request({ type: 'unsubscribe', channel: 'room', id: nextId() })
  await watcher.until((s) => s.ann === undefined, 'ann gone when she unsubscribes')

  const bob = await Observer.join(url, 'room')
  await bob.track('bob')
  await watcher.until((s) => s.bob !== undefined, 'bob present')
  bob.client.close()
  await watcher.until((s) => s.bob === undefined, 'bob gone when his socket closes')
  await late.equals(watcher.state)
  t.same(await app.channels.presence('room'), {})
})

t.test('two sockets under one key are listed each', async (t) => {
  const { app, url } = await startPresenceApp(t)
  const watcher = await Observer.join(url, 'room')
  const tab1 = await Observer.join(url, 'room')
  const tab2 = await Observer.join(url, 'room')
  await tab1.track('ann', { tab: 1 })
  await tab2.track('ann', { tab: 2 })
  await watcher.until((s) => s.ann?.length === 2, 'two entries under ann')
  t.not(watcher.state.ann[0].ref, watcher.state.ann[1].ref, 'each track has its own ref')
  t.equal((await app.channels.presence('room')).ann.length, 2)
  tab1.client.close()
  await watcher.until((s) => s.ann?.length === 1, 'one tab left')
  t.same(watcher.state.ann[0].meta, { tab: 2 })
})

t.test('refused and bad tracks', async (t) => {
  let socket: ChannelSocket | undefined
  const { url } = await startPresenceApp(t, { presence: /^room-/ }, (app) => {
    const sockets = recordSockets(app)
    app.channels.on('subscribe', (s) => { socket = sockets.get(s.id) })
  })
  const client = await TestClient.connect(url)
  const denied = await client.request({ type: 'message', event: 'join', channel: 'room-1', data: { key: 'ann' }, id: nextId() })
  t.equal(denied.code, 'NOT_SUBSCRIBED', 'tracking a channel the socket does not hold: NOT_SUBSCRIBED')
  await client.subscribe('plain')
  t.equal(client.frames.length, 0, 'a channel without presence gets no presence frame')
  await client.subscribe('room-1')
  await client.next((f) => f.type === 'presence')
  const s = socket as ChannelSocket
  await t.rejects(s.track('plain', 'ann'), { code: 'FST_CHANNELS_INVALID_PRESENCE' }, 'a channel without presence')
  await t.rejects(s.track('room-1', ''), { code: 'FST_CHANNELS_INVALID_PRESENCE' }, 'an empty key')
  await t.rejects(s.track('room-1', 'x'.repeat(201)), { code: 'FST_CHANNELS_INVALID_PRESENCE' }, 'a key too long')
  await t.rejects(s.track('room-1', 42 as unknown as string), { code: 'FST_CHANNELS_INVALID_PRESENCE' }, 'a key not a string')
  await t.rejects(s.track('room-1', '__proto__'), { code: 'FST_CHANNELS_INVALID_PRESENCE' }, 'a poisoned key')
  await t.rejects(s.track('room-1', 'ann', { big: 'x'.repeat(5000) }), { code: 'FST_CHANNELS_INVALID_PRESENCE' }, 'a meta too large')
  await t.rejects(s.track('room-1', 'ann', JSON.parse('{"__proto__":{"x":1}}')), { code: 'FST_CHANNELS_INVALID_PRESENCE' }, 'a poisoned meta')
  await t.rejects(s.track('room-1', 'ann', { n: 1n }), { code: 'FST_CHANNELS_UNSERIALIZABLE' }, 'a meta JSON cannot carry')
  await t.rejects(s.track('room-1', 'ann', () => {}), { code: 'FST_CHANNELS_INVALID_PRESENCE' }, 'a function as meta')
  await s.untrack('room-1') // nothing tracked: a no-op
  await t.rejects(s.track('nowhere', 'ann'), { name: 'ChannelError', code: 'NOT_SUBSCRIBED' })
  await client.expectNothing((f) => f.type === 'presence_diff')
})

t.test('diffs applied in order give fastify.channels.presence(), under random churn', async (t) => {
  const { app, url } = await startPresenceApp(t)
  const watcher = await Observer.join(url, 'room')
  const members = await Promise.all(Array.from({ length: 8 }, async () => await Observer.join(url, 'room')))
  let seed = 7
  const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  for (let round = 0; round < 60; round++) {
    const member = members[random(members.length)]
    const action = random(4)
    if (action === 0) await member.untrack()
    else if (action === 1 && round % 5 === 0) {
      await member.client.request({ type: 'unsubscribe', channel: 'room', id: nextId() })
      await member.subscribe()
    } else await member.track(`user-${random(4)}`, { round })
    if (round % 7 === 0) await new Promise((resolve) => setTimeout(resolve, presenceWindowMs + 5)) // windows end mid-run too
  }
  const expected = await app.channels.presence('room')
  await watcher.equals(expected)
  t.same(canonical(watcher.state), canonical(expected), 'the observer folded the same state as the server has')
  for (const member of members) await member.equals(expected)
  t.pass('every member folded it too')
})

t.test('a track that came and went within one window appears in neither half', async (t) => {
  let socket: ChannelSocket | undefined
  const { url } = await startPresenceApp(t, {}, (app) => {
    app.channels.on('subscribe', (s) => { socket = s })
  })
  const watcher = await Observer.join(url, 'room')
  await watcher.track('stays')
  await watcher.until((s) => s.stays !== undefined, 'stays present')
  const member = await Observer.join(url, 'room')
  const s = socket as ChannelSocket
  // Within one turn: no window can end in between.
  const done = Promise.all([s.track('room', 'flash'), s.untrack('room'), s.track('room', 'kept', { v: 1 })])
  await within(done, 5000, 'track, untrack and track again settle')
  await watcher.until((st) => st.kept !== undefined, 'kept present')
  const diff = watcher.diffs.at(-1)
  t.same(Object.keys(diff?.joins as State), ['kept'], 'only the track that stayed joins')
  t.same(diff?.leaves, {}, 'and nothing leaves')
  t.notOk(JSON.stringify(watcher.diffs).includes('flash'), 'the one that came and went is in no diff')
  await member.equals(watcher.state)
})

t.test('each channel\'s window opens at its own first change: busy channels are not flushed in one go', async (t) => {
  const sockets: ChannelSocket[] = []
  const { url } = await startPresenceApp(t, {}, (app) => {
    app.channels.on('subscribe', (s, channel) => { if (channel === 'room-b') sockets.push(s) })
  })
  const watchA = await Observer.join(url, 'room-a')
  const watchB = await Observer.join(url, 'room-b')
  await watchA.client.request({ type: 'subscribe', channel: 'room-b', id: nextId() }) // the member: in both rooms
  await watchA.client.next((f) => f.type === 'presence' && f.channel === 'room-b')
  const member = sockets.at(-1) as ChannelSocket
  await new Promise((resolve) => setTimeout(resolve, 2 * presenceWindowMs)) // the windows the joins opened have ended
  const arrival = async (watcher: Observer): Promise<number> => {
    await watcher.client.next((f) => f.type === 'presence_diff' && f.channel === watcher.channel).then((frame) => { watcher.client.frames.unshift(frame) })
    return performance.now()
  }
  const arrivedA = arrival(watchA)
  const arrivedB = arrival(watchB)
  const trackedA = performance.now()
  await member.track('room-a', 'ann')
  await new Promise((resolve) => setTimeout(resolve, 15))
  const trackedB = performance.now()
  await member.track('room-b', 'ann')
  const [a, b] = await Promise.all([arrivedA, arrivedB])
  // Timers never fire early (give or take the event loop's clock: 3 ms), so with one window for
  // every channel, room-b's diff would leave with room-a's, about 35 ms after its own change.
  t.ok(a - trackedA >= presenceWindowMs - 3, `room-a's diff ${(a - trackedA).toFixed(1)} ms after its change`)
  t.ok(b - trackedB >= presenceWindowMs - 3, `room-b's diff ${(b - trackedB).toFixed(1)} ms after its own change, not with room-a's`)
  await watchA.until((s) => s.ann !== undefined, 'ann in room-a')
  await watchB.until((s) => s.ann !== undefined, 'ann in room-b')
})

t.test('a channel that keeps changing is not held back: its window ends a window after its first change, whatever comes after', async (t) => {
  let socket: ChannelSocket | undefined
  const { url } = await startPresenceApp(t, {}, (app) => {
    app.channels.on('subscribe', (s) => { socket = s })
  })
  const watcher = await Observer.join(url, 'room')
  await Observer.join(url, 'room')
  const member = socket as ChannelSocket
  await new Promise((resolve) => setTimeout(resolve, 2 * presenceWindowMs)) // the join's window has ended
  // A change every 10 ms for 8 windows: a window that each change pushed back would end only
  // once the changes stop, and the watcher would see nothing until then.
  const churnUntil = performance.now() + 8 * presenceWindowMs
  let round = 0
  while (performance.now() < churnUntil) {
    await member.track('room', `k${round++ % 3}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const duringChurn = watcher.client.frames.filter((f) => f.type === 'presence_diff').length
  t.ok(duringChurn >= 2, `${duringChurn} diffs came while the channel kept changing (${round} changes)`)
  await watcher.until((s) => Object.keys(s).length === 1, 'the last track in the state')
})

t.test('a crowd of 300 joining at once converges in few frames, and back to empty', async (t) => {
  const { app, url } = await startPresenceApp(t, { maxChannels: 10 })
  const observers = await Promise.all(Array.from({ length: 3 }, async () => await Observer.join(url, 'crowd')))
  const crowd = await Promise.all(Array.from({ length: 300 }, async () => await TestClient.connect(url)))
  for (const [i, client] of crowd.entries()) {
    client.send({ type: 'subscribe', channel: 'crowd' })
    client.send({ type: 'message', event: 'join', channel: 'crowd', data: { key: `user-${i}`, meta: { i } }, id: 1 })
  }
  for (const observer of observers) {
    await observer.until((s) => Object.keys(s).length === 300, '300 keys', 20000)
    t.ok(observer.frames < 100, `converged to 300 keys in ${observer.frames} frames (< 100)`)
  }
  t.equal(Object.keys(await app.channels.presence('crowd')).length, 300)
  const before = observers.map((o) => o.frames)
  for (const client of crowd) client.close()
  for (const [i, observer] of observers.entries()) {
    await observer.until((s) => Object.keys(s).length === 0, 'empty', 20000)
    t.ok(observer.frames - before[i] < 100, `back to empty in ${observer.frames - before[i]} frames (< 100)`)
  }
})

t.test('nodes sharing one memory broker share presence; a closed node\'s tracks leave', async (t) => {
  const broker = memoryBroker()
  const a = await startPresenceApp(t, { broker })
  const b = await startPresenceApp(t, { broker })
  const onA = await Observer.join(a.url, 'room')
  const onB = await Observer.join(b.url, 'room')
  await onA.track('ann')
  await onB.track('bob')
  await onA.until((s) => s.ann !== undefined && s.bob !== undefined, 'both on A')
  await onB.equals(onA.state)
  t.same(canonical(await b.app.channels.presence('room')), canonical(onA.state), 'presence() over every node')
  const late = await Observer.join(b.url, 'room')
  t.same(canonical(late.state), canonical(onA.state), 'a late joiner on the other node sees both')
  await a.app.close()
  await onB.until((s) => s.ann === undefined && s.bob !== undefined, 'ann gone with node A')
})

t.test('a track made before the first join has read the state is not lost', async (t) => {
  // A broker as slow as a remote one: the subscription takes 20 ms, a presence write 50 ms.
  const memory = memoryBroker()
  const later = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
  const slow: Broker = {
    async connect (node) {
      const inner = await memory.connect(node) as BrokerConnection & PresenceBroker
      return {
        ...inner,
        async subscribe (channel) { await later(20); await inner.subscribe(channel) },
        async presenceUpdate (channel: string, changes: PresenceChanges) { await later(50); await inner.presenceUpdate(channel, changes) }
      }
    }
  }
  // Tracks as soon as the subscribe handlers passed, while the join still waits for the broker.
  const { url } = await startPresenceApp(t, { broker: slow }, (app) => {
    app.channels.on('subscribe', (socket, channel) => {
      setImmediate(() => { socket.track(channel, 'early').catch(() => {}) })
    })
  })
  const first = await Observer.join(url, 'room')
  await first.until((s) => s.early?.length === 1, 'the first subscriber sees its own early track')
})

t.test('a key of 200 characters and a meta of 4096 bytes are the largest; each refusal says why', async (t) => {
  let socket: ChannelSocket | undefined
  const { app, url } = await startPresenceApp(t, { presence: /^room-/ }, (app) => {
    app.channels.on('subscribe', (s) => { socket = s })
  })
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  await client.subscribe('plain')
  await client.subscribe('room-1')
  const s = socket as ChannelSocket
  const meta = { m: 'x'.repeat(4096 - '{"m":""}'.length) }
  await s.track('room-1', 'k'.repeat(200), meta)
  t.same(Object.values(await app.channels.presence('room-1')).map((entries) => entries[0].meta), [meta], 'both at the limit: tracked')
  await t.rejects(s.track('room-1', 'ann', { m: meta.m + 'x' }), { message: /meta is larger than 4096 bytes as JSON/ })
  await t.rejects(s.track('room-1', 'k'.repeat(201)), { message: /key must be a string of 1-200 characters/ })
  await t.rejects(s.track('room-1', '__proto__'), { message: /key must not be "__proto__"/ })
  await t.rejects(s.track('room-1', 'ann', () => {}), { message: /meta must be JSON data/ })
  await t.rejects(s.track('room-1', 'ann', JSON.parse('{"a":{"__proto__":{}}}')), { message: /meta must not contain __proto__ or constructor.prototype keys/ })
  await t.rejects(s.track('room-1', 'ann', { n: 1n }), { message: /BigInt/ }, 'JSON.stringify\'s own reason')
  await t.rejects(s.track('plain', 'ann'), { message: /"plain" is not a presence channel/ })
  await t.rejects(s.track('nowhere', 'ann'), { message: /not subscribed to channel "nowhere"/ })
})
