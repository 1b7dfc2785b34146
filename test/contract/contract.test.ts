/**
 * The contract members' wiring: the route that serves the document, and the path it names.
 */
import t from 'tap'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import fastifyChannels, { type AsyncApiDocument } from '../../plugin/index.js'

t.test('the route serves the document only when asked to, and it follows handlers registered later', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false, asyncapi: '/docs/channels.json' })
  app.channels.on('message', { event: 'late', schema: Type.Object({ n: Type.Number() }) }, () => 1)
  t.teardown(() => app.close())
  const served = (await app.inject('/docs/channels.json')).json() as AsyncApiDocument
  t.ok('receive_late' in served.operations)
  t.same(served, { ...app.channels.asyncapi({ host: 'localhost:80' }) }, 'the same document as asyncapi()')

  const plain = Fastify({ logger: false })
  await plain.register(fastifyChannels, { client: false })
  t.teardown(() => plain.close())
  t.equal((await plain.inject('/asyncapi.json')).statusCode, 404, 'no route by default')
})

t.test('a prefixed registration names the prefixed path', async (t) => {
  const app = Fastify({ logger: false })
  let document: AsyncApiDocument | undefined
  await app.register(async (scope) => {
    await scope.register(fastifyChannels, { client: false })
    await scope.ready
    document = scope.channels.asyncapi()
  }, { prefix: '/api' })
  t.teardown(() => app.close())
  t.equal(document?.servers.channels.pathname, '/api/ws')
})

t.test('the served document names wss when the document was asked for over https', async (t) => {
  const app = Fastify({ logger: false, trustProxy: true })
  await app.register(fastifyChannels, { client: false, asyncapi: '/asyncapi.json' })
  t.teardown(() => app.close())
  const overTls = (await app.inject({ url: '/asyncapi.json', headers: { host: 'chat.example', 'x-forwarded-proto': 'https' } })).json() as AsyncApiDocument
  t.match(overTls.servers.channels, { host: 'chat.example', protocol: 'wss', pathname: '/ws' })
  const plain = (await app.inject({ url: '/asyncapi.json', headers: { host: 'chat.example' } })).json() as AsyncApiDocument
  t.equal(plain.servers.channels.protocol, 'ws')
})
