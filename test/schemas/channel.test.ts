import t from 'tap'
import { channelNameProblem, isValidChannelName, MAX_CHANNEL_LENGTH } from '../../schemas/channel.js'
import { TestClient, nextId, startApp, startWithSocket } from '../helpers/server.js'
import { clientFor } from '../client/helpers.js'

t.test('valid names', async (t) => {
  for (const name of ['a', 'room-42', 'private-x', 'ünïcode✓', 'a/b:c.d', 'x'.repeat(MAX_CHANNEL_LENGTH)]) {
    t.equal(channelNameProblem(name), undefined, name)
    t.ok(isValidChannelName(name))
  }
})

t.test('invalid names', async (t) => {
  const bad: unknown[] = ['', 'x'.repeat(MAX_CHANNEL_LENGTH + 1), 'a b', 'tab\there', 'nl\n', 'nul\u0000', 'del\u007f',
    'c1\u0085', 'c1\u009f', 'nbsp\u00a0', 'em\u2003space', 'ls\u2028', 'bom\ufeff', 42, null, undefined, {}]
  for (const [index, name] of bad.entries()) {
    // labelled by index: some names (U+2028) would break the TAP stream if printed
    t.type(channelNameProblem(name), 'string', `bad name #${index}`)
    t.notOk(isValidChannelName(name))
  }
})

t.test('length counts UTF-16 code units', async (t) => {
  const astral = '😀'.repeat(100) // 200 code units
  t.equal(channelNameProblem(astral), undefined)
  t.type(channelNameProblem(astral + 'x'), 'string')
})

t.test('each problem says which rule the name broke', async (t) => {
  t.equal(channelNameProblem(42), 'channel must be a string')
  t.equal(channelNameProblem(''), 'channel must not be empty')
  t.equal(channelNameProblem('x'.repeat(MAX_CHANNEL_LENGTH + 1)), `channel must be at most ${MAX_CHANNEL_LENGTH} characters`)
  t.equal(channelNameProblem('a b'), 'channel must not contain control or white-space characters')
})

// ---- lone surrogates, at every entry point --------------------------------------------------
// UTF-8 (the way names cross Redis) turns every lone surrogate into U+FFFD, so 'room-\uD800',
// 'room-\uDBFF' and 'room-\uFFFD' would be one Redis channel: every entry point refuses them.

const lone = ['room-\uD800', 'room-\uDBFF', 'room-\uDC00', '\uDFFFroom', 'room-\uDE00\uD83D'] // last: a pair in the wrong order
const wellFormed = ['room-\uFFFD', 'room-😀', 'room-\uD83D\uDE00', '\uDBFF\uDFFF']

t.test('the rule: lone surrogates are refused, pairs and U+FFFD are not', async (t) => {
  for (const [index, name] of lone.entries()) {
    t.equal(channelNameProblem(name), 'channel must be well-formed Unicode (no lone surrogate)', `lone #${index}`)
  }
  for (const [index, name] of wellFormed.entries()) t.equal(channelNameProblem(name), undefined, `well-formed #${index}`)
})

/** `name` as a JSON string literal with its surrogates escaped, the way a client can send one. */
const escaped = (name: string): string => JSON.stringify(name).replace(/[\uD800-\uDFFF]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16)}`)

t.test('frames naming a lone surrogate get INVALID_CHANNEL', async (t) => {
  const { app, url } = await startApp({}, (app) => { app.channels.on('message', () => 'ok') })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  t.teardown(() => c.close())
  for (const name of lone) {
    for (const type of ['subscribe', 'unsubscribe', 'message']) {
      const id = nextId()
      c.send(`{"type":"${type}","channel":${escaped(name)},"id":${id}}`)
      const answer = await c.next((frame) => frame.id === id)
      t.same([answer.type, answer.code], ['error', 'INVALID_CHANNEL'], `${type} ${escaped(name)}`)
    }
  }
  t.equal(app.channels.stats().channels, 0, 'nothing was subscribed')
  // the well-formed neighbour U+FFFD is an ordinary channel
  t.equal((await c.subscribe('room-\uFFFD')).type, 'subscribed')
})

t.test('socket methods and decorators reject lone surrogates with the coded error', async (t) => {
  const { app, client, server } = await startWithSocket(t)
  t.teardown(() => client.close())
  for (const name of lone) {
    const code = 'FST_CHANNELS_INVALID_CHANNEL'
    await t.rejects(server.subscribe(name), { code }, 'socket.subscribe')
    await t.rejects(server.unsubscribe(name), { code }, 'socket.unsubscribe')
    t.throws(() => server.send(1, { channel: name }), { code }, 'socket.send')
    await t.rejects(async () => await server.broadcastChannel(1, { channel: name }), { code }, 'socket.broadcastChannel')
    await t.rejects(async () => await server.sendAndBroadcastChannel(1, { channel: name }), { code }, 'socket.sendAndBroadcastChannel')
    await t.rejects(app.broadcastChannel(name, 1), { code: 'FST_CHANNELS_INVALID_CHANNEL' }, 'fastify.broadcastChannel')
    await t.rejects(app.send(client.sessionId, 1, { channel: name }), { code: 'FST_CHANNELS_INVALID_CHANNEL' }, 'fastify.send')
  }
  t.same([...server.channels], [])
  await client.expectNothing((frame) => frame.type === 'message' || frame.type === 'subscribed')
})

t.test('the client refuses lone surrogates before sending', async (t) => {
  const received: string[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('subscribe', (_socket, channel) => { received.push(channel) })
    app.channels.on('message', (_socket, _data, meta) => { received.push(meta.channel ?? '') })
  })
  t.teardown(() => app.close())
  const client = clientFor(t, url)
  for (const name of lone) {
    await t.rejects(client.subscribe(name), { name: 'ChannelsClientError', code: 'INVALID_CHANNEL' }, 'subscribe')
    t.throws(() => client.send('chat', {}, { channel: name }), { code: 'INVALID_CHANNEL' }, 'send')
  }
  await client.subscribe('room-\uFFFD') // a round trip: anything sent before it has been handled
  t.same(received, ['room-\uFFFD'], 'nothing with a lone surrogate reached the server')
})
