/**
 * The AsyncAPI document is built once per registration state and served from a cache: a GET
 * rebuilds nothing until a `message` handler or an `emits` declaration was added; building is
 * linear in the handlers (many sharing one event included); a schema that cannot be written as
 * JSON (a cycle in its `default`) fails its registration with a coded error, and a document
 * that cannot be built is a generic 500 that shows nothing of the cause.
 */
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type, type TSchema } from '@sinclair/typebox'
import fastifyChannels, { type AsyncApiDocument } from '../../plugin/index.js'

interface Teardown { teardown (fn: () => unknown): void }

async function build (t: Teardown, logs?: string[]): Promise<FastifyInstance> {
  const stream = new Writable({ write (chunk, _encoding, done) { logs?.push(String(chunk)); done() } })
  const app = Fastify({ logger: logs === undefined ? false : { level: 'error', stream } })
  await app.register(fastifyChannels, { client: false, asyncapi: '/asyncapi.json' })
  t.teardown(() => app.close())
  return app
}

/** A schema whose `description` counts how often it is read: each document build reads it once. */
function counted (): { schema: TSchema, reads: () => number } {
  let reads = 0
  const schema = Type.Object({ text: Type.String() })
  Object.defineProperty(schema, 'description', { enumerable: true, get () { reads++; return 'counted' } })
  return { schema, reads: () => reads }
}

/** A schema whose `default` holds a cycle: valid for TypeBox, not writable as JSON. */
function cyclic (): TSchema {
  const loop: Record<string, unknown> = { name: 'loop' }
  loop.self = loop
  return Type.Object({ options: Type.Object({}, { default: loop }) })
}

t.test('built once per registration state: GETs and asyncapi() calls rebuild nothing until a handler or emits is added', async (t) => {
  const app = await build(t)
  const { schema, reads } = counted()
  app.channels.on('message', { event: 'chat', schema }, () => {})
  await app.ready()
  const registered = reads()
  const first = await app.inject('/asyncapi.json')
  t.equal(first.statusCode, 200)
  t.match(first.headers['content-type'], /^application\/json/)
  const perBuild = reads() - registered
  t.ok(perBuild > 0, 'the first GET built the document')
  await app.inject('/asyncapi.json')
  await app.inject({ url: '/asyncapi.json', headers: { host: 'other.example:8080' } })
  app.channels.asyncapi({ info: { title: 'T', version: '2' }, host: 'x', protocol: 'wss' })
  t.equal(reads(), registered + perBuild, 'served from the cache, whatever the host or options')

  app.channels.on('message', { event: 'more' }, () => {})
  const afterHandler = (await app.inject('/asyncapi.json')).json() as AsyncApiDocument
  t.ok('receive_more' in afterHandler.operations, 'a handler added later is in the next document')
  t.equal(reads(), registered + 2 * perBuild, 'rebuilt once for the new handler')
  app.channels.on('connect', () => {})
  await app.inject('/asyncapi.json')
  t.equal(reads(), registered + 2 * perBuild, 'a handler of another event changes nothing in the document')

  app.channels.emits('line', { schema: Type.String() })
  const afterEmits = (await app.inject('/asyncapi.json')).json() as AsyncApiDocument
  t.ok('send_line' in afterEmits.operations, 'an emits declaration added later is in the next document')
  t.equal(reads(), registered + 3 * perBuild, 'rebuilt once for the declaration')
})

t.test('the served document is the one asyncapi() returns, with the reader\'s host; a returned document is the caller\'s own', async (t) => {
  const app = await build(t)
  app.channels.on('message', { event: 'chat', channel: /^room-/, schema: Type.Object({ text: Type.String() }) }, () => {})
  app.channels.emits('line', { channel: 'lobby', schema: Type.String() })
  const served = await app.inject({ url: '/asyncapi.json', headers: { host: 'chat.example:3000' } })
  t.same(served.json(), app.channels.asyncapi({ host: 'chat.example:3000' }))
  t.equal(served.body, JSON.stringify(app.channels.asyncapi({ host: 'chat.example:3000' })), 'the same bytes as the document serialised')

  const mine = app.channels.asyncapi()
  mine.info.title = 'changed'
  delete mine.operations.receive_chat
  mine.components.messages.receive_chat.name = 'changed'
  const next = app.channels.asyncapi()
  t.equal(next.info.title, 'Channels API')
  t.ok('receive_chat' in next.operations)
  t.equal(next.components.messages.receive_chat.name, 'chat', 'changing one document changes no later one')
  t.same((await app.inject('/asyncapi.json')).json().operations.receive_chat !== undefined, true)
})

/**
 * ms of the fastest of `tries` builds of a document with `count` message handlers sharing one
 * event, each with its own schema under one `$id` (so their components are numbered too).
 */
async function fastestBuild (t: Test, count: number, tries = 3): Promise<number> {
  const app = await build(t)
  const schema = (n: number): TSchema => Type.Object({ text: Type.String({ maxLength: n + 1 }) }, { $id: 'Chat' })
  for (let i = 0; i < count; i++) app.channels.on('message', { event: 'chat', schema: schema(i) }, () => {})
  await app.ready()
  let fastest = Infinity
  for (let i = 0; i < tries; i++) {
    // a new registration state: the next call builds
    app.channels.on('message', { event: 'chat', schema: schema(count + i) }, () => {})
    const started = performance.now()
    const document = app.channels.asyncapi()
    fastest = Math.min(fastest, performance.now() - started)
    if (i === 0) {
      t.ok(`receive_chat_${count + 1}` in document.operations, `${count + 1} chat handlers, each its own operation`)
      t.ok(`Chat_${count + 1}` in document.components.schemas, `${count + 1} schemas with the id Chat, each its own component`)
    }
  }
  return fastest
}

t.test('building is linear: 8 times the handlers sharing one event, not 64 times the time', async (t) => {
  const small = await fastestBuild(t, 500)
  const large = await fastestBuild(t, 4000)
  t.comment(`500 handlers: ${small.toFixed(1)} ms, 4000 handlers: ${large.toFixed(1)} ms`)
  // Linear is about 8x; quadratic is 64x. The bound leaves room for a noisy machine.
  t.ok(large < Math.max(small, 5) * 24, `4000 handlers took ${large.toFixed(1)} ms, 500 took ${small.toFixed(1)} ms`)
})

t.test('a cyclic default: emits() throws FST_CHANNELS_INVALID_HANDLER naming the place', async (t) => {
  const app = await build(t)
  t.throws(() => app.channels.emits('bad', { schema: cyclic() }), {
    code: 'FST_CHANNELS_INVALID_HANDLER',
    message: /emits "bad": the schema cannot be written as JSON: a cycle at \/properties\/options\/default\/self/
  })
  t.same(Object.keys(app.channels.asyncapi().operations).filter((key) => key.startsWith('send_')), [], 'nothing was declared')
  t.equal((await app.inject('/asyncapi.json')).statusCode, 200)
})

t.test('a cyclic default in a message handler registered before ready: ready() rejects FST_CHANNELS_INVALID_HANDLER', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false })
  app.channels.on('message', { event: 'fine', schema: Type.String() }, () => {})
  app.channels.on('message', { event: 'bad', channel: /^room-/, schema: cyclic() }, () => {})
  await t.rejects(async () => { await app.ready() }, {
    code: 'FST_CHANNELS_INVALID_HANDLER',
    message: /the "message" handler for event "bad" on \/\^room-\/: its schema cannot be written as JSON: a cycle at \/properties\/options\/default\/self/
  })
  await app.close()
})

t.test('a cyclic default in a handler registered after ready: asyncapi() throws the coded error, the route a generic 500', async (t) => {
  const logs: string[] = []
  const app = await build(t, logs)
  await app.ready()
  app.channels.on('message', { schema: cyclic() }, () => {})
  t.throws(() => app.channels.asyncapi(), {
    code: 'FST_CHANNELS_INVALID_HANDLER',
    message: /the "message" handler for any event: its schema cannot be written as JSON: a cycle at/
  })
  for (let i = 0; i < 2; i++) {
    const response = await app.inject('/asyncapi.json')
    t.equal(response.statusCode, 500)
    t.same(response.json(), {
      statusCode: 500,
      code: 'FST_CHANNELS_INVALID_HANDLER',
      error: 'Internal Server Error',
      message: 'fastify-channels: the AsyncAPI document could not be built (the cause is in the server log)'
    }, 'nothing of the cause')
  }
  t.match(logs.join(''), /a cycle at \/properties\/options\/default\/self/, 'the cause is in the log')
  t.match(logs.join(''), /handler for any event: its schema cannot be written as JSON/, 'naming the handler')
})

t.test('a value reached twice without a cycle (shared, not looped) is written twice, and a deep default is refused, not a stack overflow', async (t) => {
  const app = await build(t)
  const shared = { a: 1 }
  app.channels.on('message', { event: 'shared', schema: Type.Object({ x: Type.Object({}, { default: { one: shared, two: shared } }) }) }, () => {})
  const document = app.channels.asyncapi()
  t.same((document.components.messages.receive_shared.payload as { properties: { x: { default: unknown } } }).properties.x.default,
    { one: { a: 1 }, two: { a: 1 } })

  let deep: Record<string, unknown> = {}
  for (let i = 0; i < 100_000; i++) deep = { deep }
  t.throws(() => app.channels.emits('deep', { schema: Type.Object({}, { default: deep }) }), {
    code: 'FST_CHANNELS_INVALID_HANDLER',
    message: /emits "deep": the schema cannot be written as JSON: nested deeper than \d+ levels at \/default\/deep/
  })
})
