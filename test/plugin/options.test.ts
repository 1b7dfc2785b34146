import t from 'tap'
import Fastify from 'fastify'
import fastifyChannels, { memoryBroker } from '../../plugin/index.js'
import { resolveOptions, defaultMaxPayload, defaultRateLimit } from '../../plugin/options.js'

t.test('defaults', async (t) => {
  t.same(resolveOptions(), {
    path: '/ws',
    client: '/channels/',
    broker: undefined,
    maxPayload: defaultMaxPayload,
    maxChannels: 100,
    heartbeat: 30000,
    maxBufferedBytes: 1048576,
    rateLimit: defaultRateLimit,
    messageLog: false,
    asyncapi: false
  })
})

t.test('accepted values', async (t) => {
  const broker = memoryBroker()
  const options = resolveOptions({ path: '/live', client: '/assets', broker, heartbeat: false, rateLimit: false, messageLog: true })
  t.equal(options.path, '/live')
  t.equal(options.client, '/assets/', 'a prefix gets its trailing slash')
  t.equal(options.broker, broker)
  t.equal(options.heartbeat, false)
  t.equal(options.rateLimit, false)
  t.equal(options.messageLog, true)
  t.same(resolveOptions({ rateLimit: { max: 5 } }).rateLimit, { max: 5, interval: 1000 })
  t.equal(resolveOptions({ client: false }).client, false)
  t.equal(resolveOptions({ asyncapi: '/asyncapi.json' }).asyncapi, '/asyncapi.json')
  t.equal(resolveOptions({ asyncapi: false }).asyncapi, false)
})

t.test('a wrong option fails registration with FST_CHANNELS_INVALID_OPTION', async (t) => {
  const wrong: Array<Record<string, unknown>> = [
    { path: 'ws' },
    { path: 42 },
    { client: 'channels' },
    { client: true },
    { broker: {} },
    { broker: null },
    { maxPayload: 0 },
    { maxPayload: 1.5 },
    { maxPayload: '10' },
    { maxChannels: -1 },
    { heartbeat: true },
    { heartbeat: 0 },
    { maxBufferedBytes: Infinity },
    { rateLimit: { max: 0 } },
    { rateLimit: { interval: 'x' } },
    { rateLimit: 5 },
    { messageLog: 'yes' },
    { asyncapi: true },
    { asyncapi: 'asyncapi.json' },
    { asyncapi: 42 },
    { maxPayLoad: 10 }
  ]
  for (const options of wrong) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(fastifyChannels, options as never).ready() }, { code: 'FST_CHANNELS_INVALID_OPTION' }, JSON.stringify(options))
    await app.close()
  }
})
