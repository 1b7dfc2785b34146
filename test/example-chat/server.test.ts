/**
 * The example chat's server, driven by the client in Node: rooms, nicknames, notices,
 * members, history, the private room, validation, the HTTP routes.
 */
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildChatApp } from '../../example-chat/server.js'
import type { ChatEvents } from '../../example-chat/events.js'
import type { ChannelsClient, PresenceDiff } from '../../client/index.js'
import { clientFor, ensureClientBundle, nextEvent, statusOf } from '../client/helpers.js'
import { within } from '../helpers/deadline.js'

type ChatClient = ChannelsClient<ChatEvents>

async function chat (t: Test, options: Parameters<typeof buildChatApp>[0] = {}): Promise<{ app: FastifyInstance, base: string, ws: string }> {
  const app = await buildChatApp({ password: 'sesame', ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as AddressInfo
  return { app, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` }
}

/** A client that has set its nickname (sent from the "open" listener, as the page does). */
async function person (t: Test, ws: string, nick: string): Promise<ChatClient> {
  const client = clientFor<ChatEvents>(t, ws)
  client.onStatus((status) => { if (status === 'open') client.send('nick', { nick }) })
  await statusOf(client, 'open')
  return client
}

/** Resolves once `client`'s presence of `channel` lists exactly `nicks` (sorted); fails after 5 s. */
async function members (client: ChatClient, channel: string, nicks: string[]): Promise<void> {
  const want = JSON.stringify(nicks)
  const now = (): string => JSON.stringify(Object.keys(client.presence(channel)).sort())
  if (now() === want) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`members ${want} not seen within 5000 ms; have ${now()}`)) }, 5000)
    const off = client.onPresence(channel, () => {
      if (now() !== want) return
      clearTimeout(timer)
      off()
      resolve()
    })
  })
}

t.before(ensureClientBundle)

t.test('serves the page, its assets and the client bundle', async (t) => {
  const { app } = await chat(t)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /"fastify-channels\/client": "\/channels\/client\.js"/, 'the import map points at the bundle')
  for (const [url, type] of [['/app.js', /javascript/], ['/style.css', /^text\/css/], ['/channels/client.js', /^text\/javascript/]] as const) {
    const response = await app.inject(url)
    t.equal(response.statusCode, 200, url)
    t.match(response.headers['content-type'], type, url)
  }
})

t.test('serves Prometheus metrics at /metrics, and they move', async (t) => {
  const { app, ws } = await chat(t)
  const before = await app.inject('/metrics')
  t.equal(before.statusCode, 200)
  t.match(before.headers['content-type'], /^text\/plain/)
  t.match(before.body, /^channels_connections 0$/m, 'no one connected yet')
  await person(t, ws, 'ann')
  t.match((await app.inject('/metrics')).body, /^channels_connections 1$/m, 'a connection counted')
})

/** Every presence diff `client` gets for `channel` from now on. */
function diffsOf (client: ChatClient, channel: string): PresenceDiff[] {
  const diffs: PresenceDiff[] = []
  client.onPresence(channel, (_state, diff) => { diffs.push(diff) })
  return diffs
}

/** The events stored in `channel`'s history, oldest first. */
async function storedEvents (app: FastifyInstance, channel: string): Promise<string[]> {
  return (await app.channels.history(channel, { last: 50 })).messages.map((message) => message.event)
}

t.test('members, history and chat lines; a join is a presence change, never a stored line', async (t) => {
  const { app, ws } = await chat(t)
  const ada = await person(t, ws, 'ada')
  await ada.subscribe('lobby')
  await members(ada, 'lobby', ['ada'])
  t.match(ada.presence('lobby').ada, [{ meta: { nick: 'ada', since: Number } }], 'tracked under the nick, with what the page shows')
  t.same(await ada.request('chat', { text: '  first!  ' }, { channel: 'lobby' }), { ok: true })

  const grace = await person(t, ws, 'grace')
  const diffs = diffsOf(ada, 'lobby')
  const backlog = nextEvent<{ nick: string, text: string }>(grace, 'chat')
  await grace.subscribe('lobby', { last: 50 })
  await members(grace, 'lobby', ['ada', 'grace'])
  await members(ada, 'lobby', ['ada', 'grace'])
  t.match(diffs, [{ joins: { grace: [{ meta: { nick: 'grace', since: Number } }] }, leaves: {} }], 'the others see the joiner come through presence')
  t.match((await backlog).data, { nick: 'ada', text: 'first!', at: Number }, 'trimmed, and kept for newcomers by the plugin\'s history')

  const line = nextEvent(grace, 'chat')
  const echo = nextEvent(ada, 'chat')
  await ada.request('chat', { text: 'hello' }, { channel: 'lobby' })
  t.match(await line, { data: { nick: 'ada', text: 'hello', at: Number }, channel: 'lobby' })
  t.match(await echo, { data: { nick: 'ada', text: 'hello' } }, 'the sender gets its own line too')

  await grace.unsubscribe('lobby')
  await members(ada, 'lobby', ['ada'])
  t.same(await storedEvents(app, 'lobby'), ['chat', 'chat'], 'the history keeps the lines, not who came and went')
})

t.test('leaves on unsubscribe and on disconnect are presence changes; a rename is said and kept', async (t) => {
  const { app, ws } = await chat(t)
  const ada = await person(t, ws, 'ada')
  const grace = await person(t, ws, 'grace')
  const ben = await person(t, ws, 'ben')
  for (const client of [ada, grace, ben]) await client.subscribe('lobby')
  await members(ada, 'lobby', ['ada', 'ben', 'grace'])
  const since = ada.presence('lobby').grace[0].meta as { since: number }

  const diffs = diffsOf(ada, 'lobby')
  const renamed = nextEvent(ada, 'renamed')
  t.same(await grace.request('nick', { nick: 'Grace H.' }), { nick: 'Grace H.' })
  t.same((await renamed).data, { from: 'grace', to: 'Grace H.' })
  await members(ada, 'lobby', ['Grace H.', 'ada', 'ben'])
  t.match(diffs, [{ leaves: { grace: [{ meta: { nick: 'grace' } }] }, joins: { 'Grace H.': [{ meta: { nick: 'Grace H.', since: since.since } }] } }],
    'one diff: a leave of the old nick and a join of the new, with the same since (the page tells it from a leave and a join)')

  diffs.length = 0
  await grace.unsubscribe('lobby')
  await members(ada, 'lobby', ['ada', 'ben'])
  t.match(diffs, [{ leaves: { 'Grace H.': [{}] }, joins: {} }], 'an unsubscribe is a presence leave')

  diffs.length = 0
  ben.close()
  await members(ada, 'lobby', ['ada'])
  t.match(diffs, [{ leaves: { ben: [{}] }, joins: {} }], 'a disconnect leaves every room')
  t.same(await storedEvents(app, 'lobby'), ['renamed'], 'of all that, the history keeps the rename only')
})

t.test('two tabs of one nick are one member with two devices', async (t) => {
  const { ws } = await chat(t)
  const ada = await person(t, ws, 'ada')
  const tab1 = await person(t, ws, 'grace')
  const tab2 = await person(t, ws, 'grace')
  for (const client of [ada, tab1, tab2]) await client.subscribe('lobby')
  await members(ada, 'lobby', ['ada', 'grace'])
  await within(new Promise<void>((resolve) => {
    const check = (): boolean => ada.presence('lobby').grace?.length === 2
    if (check()) resolve()
    const off = ada.onPresence('lobby', () => { if (check()) { off(); resolve() } })
  }), 5000, 'grace is one member with both tabs')
  t.equal(ada.presence('lobby').grace.length, 2, 'one key, one entry per tab')
  tab1.close()
  await within(new Promise<void>((resolve) => {
    const off = ada.onPresence('lobby', (state) => { if (state.grace?.length === 1) { off(); resolve() } })
  }), 5000, 'closing one tab leaves grace with one')
  t.same(Object.keys(ada.presence('lobby')).sort(), ['ada', 'grace'], 'closing one tab keeps the member')
})

t.test('the nick a page connects with is its user: its tabs are one member, tracked without a key', async (t) => {
  const { app, ws } = await chat(t)
  const ada = await person(t, ws, 'ada')
  const tabs = [clientFor<ChatEvents>(t, ws, { params: { nick: 'grace' } }), clientFor<ChatEvents>(t, ws, { params: { nick: 'grace' } })]
  for (const tab of tabs) await statusOf(tab, 'open')
  t.same((await app.channels.user('grace').sessions()).sort(), tabs.map((tab) => tab.sessionId).sort(), 'both tabs are grace\'s sessions')
  for (const client of [ada, ...tabs]) await client.subscribe('lobby')
  await within(new Promise<void>((resolve) => {
    const check = (): boolean => ada.presence('lobby').grace?.length === 2
    if (check()) resolve()
    const off = ada.onPresence('lobby', () => { if (check()) { off(); resolve() } })
  }), 5000, 'grace is one member with both tabs')
  t.match(ada.presence('lobby').grace, [{ meta: { nick: 'grace' } }, { meta: { nick: 'grace' } }])
  const guest = clientFor<ChatEvents>(t, ws, { params: { nick: ' not a nick ' } })
  await statusOf(guest, 'open')
  t.same(await app.channels.user(' not a nick ').sessions(), [], 'a nick the schema refuses is no user: a guest')
})

t.test('the private room: refused without the password, admitted with it', async (t) => {
  const { ws } = await chat(t)
  const ada = await person(t, ws, 'ada')
  await t.rejects(ada.subscribe('private-lounge'), { code: 'FORBIDDEN', channel: 'private-lounge' })
  await t.rejects(ada.request('unlock', { room: 'private-lounge', password: 'guess' }), { code: 'WRONG_PASSWORD' })
  await t.rejects(ada.subscribe('private-lounge'), { code: 'FORBIDDEN' })
  await t.rejects(ada.request('unlock', { room: 'lobby', password: 'sesame' }), { code: 'NOT_PRIVATE' })
  t.same(await ada.request('unlock', { room: 'private-lounge', password: 'sesame' }), { ok: true })
  await ada.subscribe('private-lounge')
  await t.rejects(ada.subscribe('private-other'), { code: 'FORBIDDEN' }, 'the password unlocks one room at a time')
  t.same(ada.channels, ['private-lounge'])
})

t.test('invalid messages are refused with the schema errors', async (t) => {
  const { ws } = await chat(t)
  const ada = await person(t, ws, 'ada')
  await ada.subscribe('lobby')
  const refused = async (promise: Promise<unknown>): Promise<unknown> => await promise.then(() => 'accepted', (err: unknown) => err)
  t.match(await refused(ada.request('chat', { text: '' }, { channel: 'lobby' })), { code: 'VALIDATION_FAILED', errors: [{ path: '/text' }] })
  t.match(await refused(ada.request('chat', { text: '   ' }, { channel: 'lobby' })), { code: 'VALIDATION_FAILED' }, 'white space only')
  t.match(await refused(ada.request('chat', { text: 'x'.repeat(501) }, { channel: 'lobby' })), { code: 'VALIDATION_FAILED' })
  t.match(await refused(ada.request('chat', { text: 'hi', html: '<b>' } as never, { channel: 'lobby' })), { code: 'VALIDATION_FAILED' }, 'no extra fields')
  t.match(await refused(ada.request('nick', { nick: ' padded ' })), { code: 'VALIDATION_FAILED' })
  t.match(await refused(ada.request('nick', { nick: 'n'.repeat(25) })), { code: 'VALIDATION_FAILED' })
  t.match(await refused(ada.request('chat', { text: 'hi' }, { channel: 'random' })), { code: 'NOT_SUBSCRIBED' })
  t.match(await refused(ada.request('chat', { text: 'hi' })), { code: 'NO_HANDLER' }, 'chat lines go to a room')
  t.match(await refused(ada.subscribe('Not-A-Room')), { code: 'INVALID_ROOM' })
  t.match(await refused(ada.subscribe('a'.repeat(33))), { code: 'INVALID_ROOM' })
})

t.test('POST /rooms/:room/announce reaches the room and its history; GET /rooms lists rooms', async (t) => {
  const { app, ws } = await chat(t)
  const ada = await person(t, ws, 'ada')
  await ada.subscribe('lobby')
  await ada.subscribe('side-room')
  const announced = nextEvent(ada, 'announce')
  const response = await app.inject({ method: 'POST', url: '/rooms/lobby/announce', payload: { text: ' maintenance at noon ' } })
  t.equal(response.statusCode, 202)
  t.same(response.json(), { ok: true, room: 'lobby', members: 1 })
  t.match(await announced, { data: { text: 'maintenance at noon', at: Number }, channel: 'lobby' })

  const grace = await person(t, ws, 'grace')
  const kept = nextEvent<{ text: string }>(grace, 'announce')
  await grace.subscribe('lobby', { last: 50 })
  t.match((await kept).data, { text: 'maintenance at noon' })
  const history = await app.inject('/rooms/lobby/history')
  t.equal(history.statusCode, 200)
  t.match(history.json(), { epoch: String, offset: 1 })
  t.match(history.json().messages, [{ event: 'announce', offset: 1, data: { text: 'maintenance at noon' } }], 'the announcement, and no join line')
  t.equal(history.json().messages.length, 1)
  t.equal((await app.inject('/rooms/private-lounge/history')).statusCode, 403, 'a private room\'s history needs its password')
  t.equal((await app.inject({ url: '/rooms/private-lounge/history', headers: { 'x-room-password': 'sesame' } })).statusCode, 200)
  t.equal((await app.inject('/rooms/Bad/history')).statusCode, 400)

  for (const [url, payload] of [['/rooms/Lobby/announce', { text: 'x' }], ['/rooms/lobby/announce', { text: '' }], ['/rooms/lobby/announce', {}]] as const) {
    t.equal((await app.inject({ method: 'POST', url, payload })).statusCode, 400, `${url} ${JSON.stringify(payload)}`)
  }

  const rooms = await app.inject('/rooms')
  t.same(rooms.json(), {
    rooms: [
      { name: 'lobby', members: 2, private: false },
      { name: 'random', members: 0, private: false },
      { name: 'private-lounge', members: 0, private: true },
      { name: 'side-room', members: 1, private: false }
    ]
  })
})
