/**
 * Deltas on history channels, server side (real sockets on loopback): a delta subscriber gets
 * fossil deltas against the previous publication and rebuilds what a whole-payload subscriber
 * gets; the first message, a replay and a gap go whole; a channel without `history.delta`
 * accepts `delta: true` and sends whole payloads; the bytes per delivery of a scoreboard stream.
 */
import t from 'tap'
import { createDelta } from 'fossil-delta'
import { applyDelta } from '../../client/delta.js'
import { deltaText } from '../../schemas/delta.js'
import { startApp, TestClient, nextId, until, type Frame } from '../helpers/server.js'

interface Teardown { teardown (fn: () => unknown): void }

async function server (t: Teardown, delta = true) {
  const started = await startApp({ history: { channel: /^h-/, size: 50, delta }, heartbeat: false }, (app) => {
    app.channels.on('message', { event: 'say' }, async (socket, data, meta) => {
      await socket.broadcastChannel(data, { channel: meta.channel, event: 'board' })
      return 'ok'
    })
  })
  t.teardown(() => started.app.close())
  return started
}

/** A raw socket that counts the bytes of every message frame and rebuilds deltas itself. */
async function subscriber (t: Teardown, url: string, channel: string, extra: Record<string, unknown> = {}) {
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  const sizes: Array<{ offset: number, bytes: number, delta: boolean }> = []
  client.ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as Frame
    if (frame.type === 'message') sizes.push({ offset: frame.offset as number, bytes: data.length, delta: 'delta' in frame })
  })
  const answer = await client.request({ type: 'subscribe', channel, id: nextId(), ...extra })
  if (answer.type !== 'subscribed') throw new Error(JSON.stringify(answer))
  const versions: unknown[] = []
  let base: { offset: number, text: string } | undefined
  /** Takes every queued message frame, rebuilding deltas. */
  const take = (): void => {
    for (let frame = client.frames.shift(); frame !== undefined; frame = client.frames.shift()) {
      if (frame.type !== 'message') continue
      const offset = frame.offset as number
      let text: string
      if (typeof frame.delta === 'string') {
        if (base?.offset !== offset - 1) throw new Error(`a delta at ${offset} without its base (${base?.offset})`)
        if ('data' in frame) throw new Error('a delta frame carries data')
        text = applyDelta(base.text, frame.delta)
      } else {
        text = deltaText(frame.data) as string
      }
      base = { offset, text }
      versions.push(JSON.parse(text))
    }
  }
  return { client, sizes, versions, take }
}

/** A scoreboard of 12 teams (about 2.1 KB of JSON); publication k changes one field. */
function scoreboard (teams = 12) {
  return {
    match: 'league-2026-round-17',
    note: 'Zoë’s derby — ünïcode',
    teams: Array.from({ length: teams }, (_, i) => ({ id: `team-${i}`, name: `Team number ${i}`, score: 0, players: Array.from({ length: 3 }, (_, j) => ({ id: `p-${i}-${j}`, points: 0, fouls: 0 })) }))
  }
}
function step (state: ReturnType<typeof scoreboard>, k: number): ReturnType<typeof scoreboard> {
  const next = structuredClone(state)
  const team = next.teams[(k * 7) % next.teams.length]
  if (k % 3 === 0) team.score += 1 + (k % 3)
  else if (k % 3 === 1) team.players[k % 3].points += 2
  else team.players[(k + 1) % 3].fouls += 1
  return next
}

t.test('a delta subscriber rebuilds every version a whole-payload one gets; bytes per delivery at most 20 %', async (t) => {
  const { app, url } = await server(t)
  const delta = await subscriber(t, url, 'h-board', { delta: true })
  const whole = await subscriber(t, url, 'h-board')
  const published: unknown[] = []
  let state = scoreboard()
  const count = 300
  for (let k = 1; k <= count; k++) {
    state = step(state, k)
    published.push(state)
    await app.broadcastChannel('h-board', state, { event: 'board' })
  }
  await until(() => delta.sizes.length === count && whole.sizes.length === count, 5000, 'every delivery')
  delta.take()
  whole.take()
  t.same(whole.versions, published)
  t.same(delta.versions, published, 'the delta subscriber rebuilt every version')
  t.notOk(delta.sizes[0].delta, 'the first message goes whole')
  t.ok(delta.sizes.slice(1).every((s) => s.delta), 'every later one is a delta')
  t.ok(whole.sizes.every((s) => !s.delta), 'a subscriber that did not ask gets whole payloads')
  const bytes = (list: typeof delta.sizes) => list.reduce((n, s) => n + s.bytes, 0)
  const ratio = bytes(delta.sizes.slice(1)) / bytes(whole.sizes.slice(1))
  t.comment(`whole ${(bytes(whole.sizes) / count).toFixed(0)} B/delivery, delta ${(bytes(delta.sizes.slice(1)) / (count - 1)).toFixed(0)} B/delivery (${(ratio * 100).toFixed(1)} %)`)
  t.ok(ratio <= 0.2, `deltas are ${(ratio * 100).toFixed(1)} % of whole payloads`)
})

t.test('replays go whole; a gap (the socket skipped as sender) forces a whole payload; the stream goes on in deltas', async (t) => {
  const { app, url } = await server(t)
  let state = scoreboard(4)
  const versions: unknown[] = []
  const publish = async (): Promise<void> => {
    state = step(state, versions.length + 1)
    versions.push(state)
    await app.broadcastChannel('h-board', state, { event: 'board' })
  }
  for (let i = 0; i < 3; i++) await publish()
  const sub = await subscriber(t, url, 'h-board', { delta: true, last: 3 })
  await until(() => sub.sizes.length === 3, 3000, 'the backlog')
  t.ok(sub.sizes.every((s) => !s.delta), 'the backlog goes whole')
  await publish()
  await until(() => sub.sizes.length === 4, 3000, 'live 4')
  t.ok(sub.sizes[3].delta, 'the publication after the backlog is a delta against its last message')
  // Its own broadcastChannel skips it: offset 5 never reaches it, so 6 goes whole.
  state = step(state, 5)
  versions.push(state)
  t.equal((await sub.client.request({ type: 'message', event: 'say', channel: 'h-board', data: state, id: nextId() })).type, 'ack')
  await publish()
  await publish()
  await until(() => sub.sizes.length === 6, 3000, 'live 6 and 7')
  t.same(sub.sizes.map((s) => [s.offset, s.delta]), [[1, false], [2, false], [3, false], [4, true], [6, false], [7, true]])
  sub.take()
  t.same(sub.versions, [...versions.slice(0, 4), ...versions.slice(5)])
})

t.test('a channel without history.delta accepts delta: true and sends whole payloads', async (t) => {
  const { app, url } = await server(t, false)
  const sub = await subscriber(t, url, 'h-board', { delta: true })
  let state = scoreboard(4)
  for (let k = 1; k <= 5; k++) await app.broadcastChannel('h-board', state = step(state, k), { event: 'board' })
  await until(() => sub.sizes.length === 5, 3000, 'five messages')
  t.ok(sub.sizes.every((s) => !s.delta))
  sub.take()
  t.same(sub.versions.at(-1), state)
  // A channel that is no history channel at all: accepted too, no offsets, whole payloads.
  const answer = await sub.client.request({ type: 'subscribe', channel: 'plain', id: nextId(), delta: true })
  t.equal(answer.type, 'subscribed')
})

t.test('an unsubscribe and a new subscribe without delta: whole payloads again', async (t) => {
  const { app, url } = await server(t)
  const sub = await subscriber(t, url, 'h-board', { delta: true })
  let state = scoreboard(4)
  for (let k = 1; k <= 2; k++) await app.broadcastChannel('h-board', state = step(state, k), { event: 'board' })
  await until(() => sub.sizes.length === 2, 3000, 'two messages')
  t.same(sub.sizes.map((s) => s.delta), [false, true])
  await sub.client.request({ type: 'unsubscribe', channel: 'h-board', id: nextId() })
  await sub.client.request({ type: 'subscribe', channel: 'h-board', id: nextId() })
  for (let k = 3; k <= 4; k++) await app.broadcastChannel('h-board', state = step(state, k), { event: 'board' })
  await until(() => sub.sizes.length === 4, 3000, 'four messages')
  t.same(sub.sizes.map((s) => s.delta), [false, true, false, false])
})

t.test('the delta on the wire is fossil\'s, made against the previous data text', async (t) => {
  const { app, url } = await server(t)
  const sub = await subscriber(t, url, 'h-x', { delta: true })
  const a = { text: 'x'.repeat(200), n: 1 }
  const b = { text: 'x'.repeat(200), n: 2 }
  await app.broadcastChannel('h-x', a)
  await app.broadcastChannel('h-x', b)
  const second = await sub.client.next((f) => f.offset === 2)
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0))
  t.equal(second.delta, String.fromCharCode(...createDelta(ascii(deltaText(a) as string), ascii(deltaText(b) as string))))
  t.same(Object.keys(second).sort(), ['channel', 'delta', 'event', 'offset', 'type'])
})

t.test('a subscribe frame whose delta is not a boolean is a BAD_FRAME', async (t) => {
  const { url } = await server(t)
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  for (const delta of ['yes', 1, null, {}]) {
    const answer = await client.request({ type: 'subscribe', channel: 'h-x', id: nextId(), delta })
    t.match(answer, { type: 'error', code: 'BAD_FRAME' }, JSON.stringify(delta))
  }
})
