/**
 * `fastify.channels.emits()`: declarations are chainable, checked once, and change nothing at
 * run time.
 */
import t from 'tap'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import fastifyChannels from '../../plugin/index.js'
import { EmitRegistry } from '../../plugin/contract/emits.js'
import { within } from '../helpers/deadline.js'

const Line = Type.Object({ text: Type.String() })

t.test('declarations are kept in order, with their filters', async (t) => {
  const registry = new EmitRegistry()
  registry.declare('chat', { channel: /^room-/g, schema: Line })
  registry.declare('news', { channel: 'lobby', schema: Line })
  registry.declare('hello', { schema: Type.String() })
  const [chat, news, hello] = registry.list()
  t.equal(chat.event, 'chat')
  t.equal(String(chat.channel), '/^room-/', 'a stateful g flag is dropped, as for handlers')
  t.equal(news.channel, 'lobby')
  t.equal(hello.channel, undefined)
  t.equal(hello.schema.type, 'string')
})

t.test('a wrong declaration throws FST_CHANNELS_INVALID_HANDLER', async (t) => {
  const registry = new EmitRegistry()
  const wrong: Array<[unknown, unknown]> = [
    ['', { schema: Line }],
    [42, { schema: Line }],
    ['chat', null],
    ['chat', 'schema'],
    ['chat', {}],
    ['chat', { schema: null }],
    ['chat', { schema: Line, reply: Line }],
    ['chat', { schema: Line, channel: 42 }],
    ['chat', { schema: Type.Ref('Nowhere') }]
  ]
  for (const [event, options] of wrong) {
    t.throws(() => registry.declare(event, options), { code: 'FST_CHANNELS_INVALID_HANDLER' }, JSON.stringify([event, options]))
  }
  t.same(registry.list(), [])
})

t.test('emits on the app is chainable with on(), and changes nothing at run time', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false })
  t.teardown(() => app.close())
  const chained = app.channels
    .emits('news', { schema: Line })
    .on('message', { event: 'shout' }, async () => { await app.broadcast(42, { event: 'news' }) })
  t.equal(chained, app.channels)
  const client = await app.channels.inject()
  const news = new Promise<unknown>((resolve) => { client.on('news', resolve) })
  client.send('shout', null)
  t.equal(await within(news, 3000, 'the shout handler\'s broadcast reaches the client'), 42, 'data that does not fit the declared schema is still sent: a declaration validates nothing')
})

t.test('each refusal says what is wrong with the declaration', async (t) => {
  const registry = new EmitRegistry()
  const cases: Array<[unknown, unknown, RegExp]> = [
    ['', { schema: Line }, /emits: the event must be a non-empty string/],
    ['chat', null, /emits "chat": expected \{ channel\?, schema \}/],
    ['chat', 'schema', /emits "chat": expected \{ channel\?, schema \}/],
    ['chat', { schema: Line, reply: Line, also: 1 }, /emits "chat": unknown option reply, also/],
    ['chat', { schema: 'text' }, /emits "chat": the schema must be a TypeBox schema/],
    ['chat', { schema: null }, /emits "chat": the schema must be a TypeBox schema/],
    ['chat', { schema: Type.Ref('Nowhere') }, /emits "chat": the schema does not compile: (?!\w*Error:).*Nowhere/]
  ]
  for (const [event, options, message] of cases) t.throws(() => registry.declare(event, options), { message }, String(message))
})
