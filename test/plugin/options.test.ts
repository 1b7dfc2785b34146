import t from 'tap'
import Fastify from 'fastify'
import fastifyChannels, { memoryBroker } from '../../plugin/index.js'
import { resolveOptions, defaultMaxPayload, defaultRateLimit } from '../../plugin/options.js'
import { sameOriginOnly } from '../../plugin/http/origins.js'

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
    origins: sameOriginOnly,
    maxConnections: Infinity,
    asyncapi: false,
    presence: false,
    compression: false,
    writeDelayMs: 0,
    drainMs: 1000,
    metrics: false,
    admin: false
  })
})

t.test('presence: true, a channel name or a RegExp, normalised once', async (t) => {
  t.same(resolveOptions({ presence: true }).presence, { channel: undefined }, 'every channel')
  t.same(resolveOptions({ presence: false }).presence, false)
  t.same(resolveOptions({ presence: 'lobby' }).presence, { channel: 'lobby' })
  const sticky = resolveOptions({ presence: /^room-/g }).presence
  t.ok(sticky !== false && sticky.channel instanceof RegExp && !sticky.channel.global, 'a g/y RegExp is copied without the stateful flags')
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
  t.equal(resolveOptions({ maxConnections: 5000 }).maxConnections, 5000)
  t.equal(resolveOptions({ origins: '*' }).origins, '*')
  const listed = resolveOptions({ origins: ['https://App.Example.com:443/', 'http://localhost:5173', /https:\/\/.+\.example\.net/g] }).origins
  if (listed === '*') throw new Error('expected a list')
  t.same([...listed.exact], ['https://app.example.com', 'http://localhost:5173'], 'exact origins are serialized as browsers send them')
  t.same(listed.patterns.map(String), ['/^(?:https:\\/\\/.+\\.example\\.net)$/'], 'patterns are anchored, without the stateful g flag')
  t.same(resolveOptions({ origins: [] }).origins, sameOriginOnly, 'an empty list: same origin only')
  t.equal(resolveOptions({ asyncapi: '/asyncapi.json' }).asyncapi, '/asyncapi.json')
  t.equal(resolveOptions({ asyncapi: false }).asyncapi, false)
  t.equal(resolveOptions({ drainMs: 0 }).drainMs, 0, 'drainMs: 0 closes every socket at once')
  t.equal(resolveOptions({ drainMs: 30_000 }).drainMs, 30_000)
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
    { presence: 1 },
    { presence: '' },
    { presence: {} },
    { presence: null },
    { origins: 'https://app.example.com' },
    { origins: true },
    { origins: null },
    { origins: ['*'] },
    { origins: ['app.example.com'] },
    { origins: ['https://app.example.com/path'] },
    { origins: ['https://user@app.example.com'] },
    { origins: ['https://app.example.com?x=1'] },
    { origins: ['ws://app.example.com'] },
    { origins: ['null'] },
    { origins: [42] },
    { maxConnections: 0 },
    { maxConnections: -5 },
    { maxConnections: 2.5 },
    { maxConnections: Infinity },
    { maxConnections: '100' },
    { asyncapi: true },
    { asyncapi: 'asyncapi.json' },
    { asyncapi: 42 },
    { maxPayLoad: 10 },
    { rateLimit: null },
    { broker: 'redis' },
    { compression: 'deflate' },
    { compression: null },
    { compression: [] },
    { compression: { threshold: -1 } },
    { compression: { threshold: 1.5 } },
    { compression: { threshold: '1024' } },
    { compression: { level: 9 } },
    { writeDelayMs: -1 },
    { writeDelayMs: 2.5 },
    { writeDelayMs: '50' },
    { writeDelayMs: 1001 },
    { writeDelayMs: Infinity },
    { drainMs: -1 },
    { drainMs: 1.5 },
    { drainMs: '1000' },
    { drainMs: Infinity },
    { drainMs: null }
  ]
  for (const options of wrong) {
    const app = Fastify()
    // The message names the option and says what was expected.
    const [name] = Object.keys(options)
    const message = new RegExp(`^fastify-channels: invalid option ${name}(\\[\\d+\\]|\\.\\w+)?: \\w`)
    await t.rejects(async () => { await app.register(fastifyChannels, options as never).ready() },
      { code: 'FST_CHANNELS_INVALID_OPTION', message }, JSON.stringify(options))
    await app.close()
  }
  t.throws(() => resolveOptions({ origins: 'https://app.example.com' as never }),
    { message: /got https:\/\/app\.example\.com \(for one origin write origins: \['https:\/\/app\.example\.com'\]\)$/ },
    'a lone origin string gets the hint')
  t.throws(() => resolveOptions({ origins: true as never }), { message: /got true$/ }, 'no hint for a non-string')
  t.throws(() => resolveOptions({ origins: [42 as never] }), { message: /origins\[0\]: expected a string or a RegExp, got 42$/ })
  t.throws(() => resolveOptions(null as never), { code: 'FST_CHANNELS_INVALID_OPTION', message: /options: expected an object/ })
  t.throws(() => resolveOptions(42 as never), { code: 'FST_CHANNELS_INVALID_OPTION', message: /options: expected an object/ })
})

t.test('accepted values of the numeric, history and prefix options', async (t) => {
  const options = resolveOptions({ maxPayload: 10, maxChannels: 3, maxBufferedBytes: 2048, heartbeat: 500, history: true, client: '/assets/' })
  t.equal(options.maxPayload, 10)
  t.equal(options.maxChannels, 3)
  t.equal(options.maxBufferedBytes, 2048)
  t.equal(options.heartbeat, 500)
  t.not(options.history, undefined, 'history: true gives a policy')
  t.equal(options.client, '/assets/', 'a prefix that has its slash keeps it as is')
  t.ok(Object.isFrozen(options))
  t.equal(resolveOptions({ maxChannels: 1 }).maxChannels, 1, '1 is the smallest positive integer')
  t.equal(resolveOptions({ maxPayload: Number.MAX_SAFE_INTEGER }).maxPayload, Number.MAX_SAFE_INTEGER, 'the largest safe one is fine')
})

t.test('a presence RegExp is kept as is, or copied without the g and y flags only', async (t) => {
  const plain = /^room-/i
  const kept = resolveOptions({ presence: plain }).presence
  t.ok(kept !== false && kept.channel === plain, 'a plain RegExp is the very one given')
  for (const stateful of [/^room-/giy, /^room-/y]) {
    const copied = resolveOptions({ presence: stateful }).presence
    if (copied === false || !(copied.channel instanceof RegExp)) throw new Error('expected a RegExp')
    t.equal(copied.channel.source, '^room-')
    t.equal(copied.channel.flags, stateful.flags.replace(/[gy]/g, ''), `${String(stateful)}: only g and y dropped`)
  }
})

t.test('compression: true, false or { threshold }; writeDelayMs: 0 to 1000 ms', async (t) => {
  t.same(resolveOptions({ compression: true }).compression, { threshold: 1024 })
  t.same(resolveOptions({ compression: {} }).compression, { threshold: 1024 })
  t.same(resolveOptions({ compression: { threshold: 0 } }).compression, { threshold: 0 })
  t.same(resolveOptions({ compression: { threshold: 4096 } }).compression, { threshold: 4096 })
  t.equal(resolveOptions({ compression: false }).compression, false)
  t.equal(resolveOptions({ writeDelayMs: 0 }).writeDelayMs, 0)
  t.equal(resolveOptions({ writeDelayMs: 50 }).writeDelayMs, 50)
  t.equal(resolveOptions({ writeDelayMs: 1000 }).writeDelayMs, 1000)
})
