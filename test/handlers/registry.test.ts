import t from 'tap'
import { Type } from '@sinclair/typebox'
import { HandlerRegistry, channelMatches } from '../../plugin/handlers/registry.js'

const noop = (): void => {}

t.test('channel filters', async (t) => {
  t.ok(channelMatches(undefined, undefined), 'no filter matches a frame without channel')
  t.ok(channelMatches(undefined, 'a'), 'no filter matches any channel')
  t.notOk(channelMatches('a', undefined), 'a filter never matches a frame without channel')
  t.notOk(channelMatches(/undefined/, undefined), 'not even a RegExp that would match the text "undefined"')
  t.ok(channelMatches('room-1', 'room-1'))
  t.notOk(channelMatches('room-1', 'room-10'), 'a string is exact, not a prefix')
  t.ok(channelMatches(/^room-/, 'room-10'))
  t.notOk(channelMatches(/^room-/, 'private-room-1'))
})

t.test('message handlers match by event and channel, in registration order', async (t) => {
  const registry = new HandlerRegistry()
  const all = (): string => 'all'
  const chat = (): string => 'chat'
  const roomChat = (): string => 'roomChat'
  const exact = (): string => 'exact'
  registry.on('message', all)
  registry.on('message', { event: 'chat' }, chat)
  registry.on('message', { event: 'chat', channel: /^room-/ }, roomChat)
  registry.on('message', { channel: 'room-1' }, exact)
  const names = (event: string, channel?: string): unknown[] => registry.forMessage(event, channel).map((entry) => entry.fn())
  t.same(names('chat'), ['all', 'chat'])
  t.same(names('chat', 'room-1'), ['all', 'chat', 'roomChat', 'exact'])
  t.same(names('chat', 'room-2'), ['all', 'chat', 'roomChat'])
  t.same(names('other', 'room-1'), ['all', 'exact'])
  t.same(names('other', 'lobby'), ['all'])
})

t.test('a global or sticky RegExp matches the same way every time', async (t) => {
  const registry = new HandlerRegistry()
  registry.on('subscribe', { channel: /^room-/g }, noop)
  registry.on('unsubscribe', { channel: /room/y }, noop)
  for (let i = 0; i < 3; i++) {
    t.equal(registry.forChannel('subscribe', 'room-1').length, 1, `g, try ${i}`)
    t.equal(registry.forChannel('unsubscribe', 'room-1').length, 1, `y, try ${i}`)
  }
})

t.test('forAnyChannel runs a handler once when any held channel matches', async (t) => {
  const registry = new HandlerRegistry()
  registry.on('disconnect', { channel: /^room-/ }, noop)
  registry.on('disconnect', noop)
  registry.on('disconnect', { channel: 'lobby' }, noop)
  t.equal(registry.forAnyChannel('disconnect', ['room-1', 'room-2']).length, 2)
  t.equal(registry.forAnyChannel('disconnect', []).length, 1)
  t.equal(registry.forAnyChannel('disconnect', ['lobby', 'room-9']).length, 3)
})

t.test('schemas are compiled at registration', async (t) => {
  const registry = new HandlerRegistry()
  registry.on('message', { schema: Type.Object({ text: Type.String() }) }, noop)
  const [entry] = registry.forMessage('message', undefined)
  t.ok(entry.schema?.check({ text: 'x' }))
  t.notOk(entry.schema?.check({ text: 1 }))
  t.same(entry.schema?.issues({ text: 1 }), [{ path: '/text', message: 'Expected string' }])
})

t.test('validation issues are bounded', async (t) => {
  const registry = new HandlerRegistry()
  registry.on('message', { schema: Type.Array(Type.String()) }, noop)
  const [entry] = registry.forMessage('message', undefined)
  const issues = entry.schema?.issues(Array.from({ length: 1000 }, (_, i) => i)) ?? []
  t.ok(issues.length <= 10, `${issues.length} issues reported`)
})

t.test('wrong registrations throw FST_CHANNELS_INVALID_HANDLER', async (t) => {
  const registry = new HandlerRegistry()
  const wrong: Array<[string, unknown, unknown?]> = [
    ['nope', noop],
    ['message', undefined],
    ['message', {}, 'not a function'],
    ['message', null, noop],
    ['connect', { channel: 'a' }, noop],
    ['finish', { channel: /a/ }, noop],
    ['subscribe', { event: 'x' }, noop],
    ['disconnect', { schema: Type.String() }, noop],
    ['message', { channel: 42 }, noop],
    ['message', { event: '' }, noop],
    ['message', { schema: 'string' }, noop],
    ['message', { chanel: 'typo' }, noop]
  ]
  for (const [event, options, handler] of wrong) {
    t.throws(() => registry.on(event as never, options, handler), { code: 'FST_CHANNELS_INVALID_HANDLER' }, `${event} ${String(JSON.stringify(options))}`)
  }
})

t.test('each wrong registration says what is wrong', async (t) => {
  const registry = new HandlerRegistry()
  const wrong: Array<[string, unknown, unknown, string]> = [
    ['nope', noop, undefined, 'unknown event "nope"'],
    ['message', undefined, undefined, 'the "message" handler must be a function'],
    ['subscribe', {}, 'not a function', 'the "subscribe" handler must be a function'],
    ['message', null, noop, 'the "message" options must be an object'],
    ['message', 'room', noop, 'the "message" options must be an object'],
    ['connect', { channel: 'a' }, noop, '"connect" handlers take no channel filter'],
    ['finish', { channel: /a/ }, noop, '"finish" handlers take no channel filter'],
    ['subscribe', { event: 'x' }, noop, 'only "message" handlers take an event or a schema'],
    ['disconnect', { schema: Type.String() }, noop, 'only "message" handlers take an event or a schema'],
    ['message', { channel: 42 }, noop, 'the channel filter must be a string or a RegExp'],
    ['message', { event: '' }, noop, 'the event filter must be a non-empty string'],
    ['message', { event: 7 }, noop, 'the event filter must be a non-empty string'],
    ['message', { schema: 'string' }, noop, 'the schema must be a TypeBox schema'],
    ['message', { schema: null }, noop, 'the schema must be a TypeBox schema'],
    ['message', { chanel: 'typo' }, noop, 'unknown "message" option chanel'],
    ['error', { chanel: 'a', evnt: 'b' }, noop, 'unknown "error" option chanel, evnt']
  ]
  for (const [event, options, handler, message] of wrong) {
    t.throws(() => registry.on(event as never, options, handler),
      { code: 'FST_CHANNELS_INVALID_HANDLER', message: `fastify-channels: ${message}` }, message)
  }
  for (const event of ['connect', 'message', 'subscribe', 'unsubscribe', 'error', 'disconnect', 'finish'] as const) {
    registry.on(event, noop)
    t.equal(registry.list(event).length, 1, `"${event}" is an event`)
  }
  registry.on('subscribe', { channel: 'lobby' }, noop)
  registry.on('message', { event: 'chat', channel: /^room-/ }, noop)
  t.equal(registry.list('subscribe').length, 2, 'a channel filter is fine where one is taken')
})

t.test('a RegExp filter loses only its g and y flags', async (t) => {
  const registry = new HandlerRegistry()
  registry.on('subscribe', { channel: /^ROOM-/giy }, noop)
  const [entry] = registry.list('subscribe')
  t.equal((entry.channel as RegExp).flags, 'i')
  t.equal((entry.channel as RegExp).source, '^ROOM-')
  const plain = /^a/
  registry.on('unsubscribe', { channel: plain }, noop)
  t.equal(registry.list('unsubscribe')[0].channel, plain, 'a RegExp without g or y is kept as it is')
})
