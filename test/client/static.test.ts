/**
 * plugin/http/static.ts: the bundled client is served at `${client}client.js` as an ES module,
 * with its source map, and nothing is served with `client: false`.
 */
import t from 'tap'
import Fastify from 'fastify'
import fastifyChannels from '../../plugin/index.js'
import { ensureClientBundle } from './helpers.js'

t.before(ensureClientBundle)

async function app (options: { client?: string | false } = {}): Promise<ReturnType<typeof Fastify>> {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, options)
  await app.ready()
  return app
}

t.test('serves client.js as text/javascript with its source map, at /channels/ by default', async (t) => {
  const server = await app()
  t.teardown(() => server.close())
  const js = await server.inject('/channels/client.js')
  t.equal(js.statusCode, 200)
  t.equal(js.headers['content-type'], 'text/javascript; charset=utf-8')
  t.equal(js.headers['x-content-type-options'], 'nosniff')
  t.match(js.body, /export\s*\{[^}]*\bconnect\b/, 'an ES module exporting connect')
  t.match(js.body, /\/\/# sourceMappingURL=client\.js\.map\s*$/)
  t.notMatch(js.body, /\bimport\s*[{*"']|\brequire\(/, 'no import or require left: every dependency is bundled')

  const map = await server.inject('/channels/client.js.map')
  t.equal(map.statusCode, 200)
  t.match(map.headers['content-type'], /^application\/json/)
  const sourceMap = JSON.parse(map.body) as { sources: string[] }
  t.ok(sourceMap.sources.some((source) => source.endsWith('client/socket.ts')), 'maps back to client/socket.ts')

  const head = await server.inject({ method: 'HEAD', url: '/channels/client.js' })
  t.equal(head.statusCode, 200)
  const cached = await server.inject({ url: '/channels/client.js', headers: { 'if-none-match': js.headers.etag as string } })
  t.equal(cached.statusCode, 304, 'conditional GET works (ETag)')

  for (const url of ['/channels/', '/channels/index.html', '/channels/../package.json', '/channels/client.ts', '/channels/%2e%2e/package.json']) {
    t.equal((await server.inject(url)).statusCode, 404, `nothing else: ${url}`)
  }
})

t.test('a custom prefix', async (t) => {
  const server = await app({ client: '/assets/rt' })
  t.teardown(() => server.close())
  t.equal((await server.inject('/assets/rt/client.js')).statusCode, 200)
  t.equal((await server.inject('/channels/client.js')).statusCode, 404)
})

t.test('client: false serves nothing', async (t) => {
  const server = await app({ client: false })
  t.teardown(() => server.close())
  t.equal((await server.inject('/channels/client.js')).statusCode, 404)
  t.equal((await server.inject('/channels/client.js.map')).statusCode, 404)
})

t.test('an app that registers @fastify/static itself keeps its own files and reply.sendFile', async (t) => {
  const { default: fastifyStatic } = await import('@fastify/static')
  const { fileURLToPath } = await import('node:url')
  const server = Fastify({ logger: false })
  await server.register(fastifyStatic, { root: fileURLToPath(new URL('.', import.meta.url)), prefix: '/files/' })
  await server.register(fastifyChannels)
  server.get('/send', (_request, reply) => reply.sendFile('static.test.ts'))
  await server.ready()
  t.teardown(() => server.close())
  t.equal((await server.inject('/files/static.test.ts')).statusCode, 200)
  t.equal((await server.inject('/send')).statusCode, 200)
  t.equal((await server.inject('/channels/client.js')).statusCode, 200)
})
