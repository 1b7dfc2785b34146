/**
 * The Redis broker on its own, driven through the Broker interface with stand-in nodes (real
 * Redis, no Fastify): options, the missing-peer error, what it subscribes and when, one
 * delivery per node, and whose connections `close()` ends.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import fastifyChannels, {
  BrokerUnreachableError, InvalidOptionError, MissingIoredisError, redisBroker, type BrokerConnection, type RedisBrokerOptions
} from '../../../plugin/index.js'
import { loadIoredis } from '../../../plugin/broker/redis/client.js'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { PrivateRedis, deleteKeys, eventually, freePort, redisUrl, uniquePrefix, withRedis } from '../../redis/helpers.js'
import { StandInNode } from '../stand-in-node.js'

const run = promisify(execFile)

async function connectNode (t: Test, options: RedisBrokerOptions): Promise<{ node: StandInNode, link: BrokerConnection }> {
  const node = new StandInNode()
  const link = await redisBroker({ url: redisUrl, ...options }).connect(node)
  t.teardown(() => link.close())
  return { node, link }
}

t.test('options are checked when the broker is made', async (t) => {
  for (const options of [{ prefix: '' }, { prefix: 'has space' }, { prefix: 7 }, { url: '' }, { nodeTtl: 0 }, { nodeTtl: 999 }, { commandTimeout: 1.5 }, { redis: {} }, { redis: null }, { color: 'red' }]) {
    t.throws(() => redisBroker(options as RedisBrokerOptions), { code: 'FST_CHANNELS_INVALID_OPTION' }, JSON.stringify(options))
  }
  t.throws(() => redisBroker(null as unknown as RedisBrokerOptions), InvalidOptionError)
  t.type(redisBroker().connect, 'function', 'all defaults are fine, and nothing connects before a node does')
  t.doesNotThrow(() => redisBroker({ url: process.env.UNSET_REDIS_URL_FOR_THIS_TEST }), 'an unset environment variable means the default url')
})

t.test('a missing ioredis is a coded error', async (t) => {
  await t.rejects(loadIoredis('ioredis-that-is-not-installed'), { code: 'FST_CHANNELS_MISSING_IOREDIS' })
  await t.rejects(loadIoredis('ioredis-that-is-not-installed'), MissingIoredisError)
  t.equal(typeof await loadIoredis(), 'function')
})

t.test('without ioredis installed the plugin works, and only a Redis broker fails, with a coded error', async (t) => {
  const dir = new URL('./fixtures/', import.meta.url)
  // the esbuild loader of `npm run mutate` (type stripping only): seconds faster than ts-node's
  const { stdout } = await run(process.execPath, [
    `--import=${new URL('../../../scripts/ts-loader.mjs', import.meta.url).href}`,
    `--import=${new URL('hide-ioredis.mjs', dir).href}`,
    fileURLToPath(new URL('without-ioredis.ts', dir))
  ], { env: { ...process.env, NODE_OPTIONS: '' } })
  t.same(JSON.parse(stdout), { plain: 'ok', code: 'FST_CHANNELS_MISSING_IOREDIS' })
})

t.test('connecting to a Redis that is not there fails at once, with a coded error, and leaves nothing running', async (t) => {
  const port = await freePort()
  const started = Date.now()
  const err = await redisBroker({ url: `redis://127.0.0.1:${port}` }).connect(new StandInNode()).catch((err: unknown) => err)
  t.ok(err instanceof BrokerUnreachableError)
  t.match(err, { code: 'FST_CHANNELS_BROKER_UNREACHABLE', statusCode: 503, message: /^fastify-channels: cannot connect to redis: .*ECONNREFUSED/ })
  t.match((err as Error).cause, { code: 'ECONNREFUSED' }, 'the cause kept')
  t.ok(Date.now() - started < 2000, 'at once')
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(fastifyChannels, { broker: redisBroker({ url: `redis://127.0.0.1:${port}` }) }) },
    { code: 'FST_CHANNELS_BROKER_UNREACHABLE' }, 'registering the plugin fails with it')
})

await withRedis(t, async () => {
  const admin = new Redis(redisUrl)
  t.teardown(() => admin.disconnect())

  t.test('subscribes to a channel only while the node has local subscribers of it', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const { node, link } = await connectNode(t, { prefix })
    const keys = new RedisKeys(prefix)
    const channels = async (): Promise<string[]> => [
      ...await admin.pubsub('CHANNELS', `${prefix}:*`) as string[],
      ...await admin.pubsub('CHANNELS', `{${prefix}}:*`) as string[]
    ].sort()
    t.same(await channels(), [keys.all, keys.direct(node.nodeId)].sort(), 'node-wide channels only')
    await link.subscribe('room:1')
    t.ok((await channels()).includes(keys.channel('room:1')))
    await link.unsubscribe('room:1')
    t.notOk((await channels()).includes(keys.channel('room:1')), 'unsubscribed when the last left')
  })

  t.test('each node gets one delivery per publication, never its own', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const a = await connectNode(t, { prefix })
    const b = await connectNode(t, { prefix })
    const c = await connectNode(t, { prefix })
    for (const channel of ['x', 'y', 'z']) await b.link.subscribe(channel)
    await c.link.subscribe('z')
    await a.link.subscribe('x') // the publisher holds one too: its echo is dropped

    const frames = ['fx', 'fy', 'fz']
    await a.link.publish({ kind: 'channels', channels: ['x', 'y', 'z'], frames, except: 'sender' })
    await a.link.publish({ kind: 'all', frame: 'fence' })
    await eventually(() => b.node.deliveries.length === 2 && c.node.deliveries.length === 2)
    const multi = { kind: 'channels', channels: ['x', 'y', 'z'], frames, except: 'sender' }
    t.same(b.node.deliveries, [multi, { kind: 'all', frame: 'fence', except: undefined }], 'b holds all three channels: one delivery')
    t.same(c.node.deliveries, [multi, { kind: 'all', frame: 'fence', except: undefined }], 'c holds one of them: the whole publication')
    t.same(a.node.deliveries, [], 'the publisher never hears its own messages')
  })

  t.test('sessions: found on the node that holds them, gone when removed', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const a = await connectNode(t, { prefix })
    const b = await connectNode(t, { prefix })
    await b.link.addSession('s1')
    t.equal(await a.link.sendToSession('s1', 'hello'), true)
    await eventually(() => b.node.deliveries.length === 1)
    t.same(b.node.deliveries, [{ kind: 'session', sessionId: 's1', frame: 'hello' }])
    t.equal(await b.link.sendToSession('s1', 'self'), false, 'a node does not look itself up: the plugin checks locally first')
    await b.link.removeSession('s1')
    t.equal(await a.link.sendToSession('s1', 'again'), false)
    t.equal(await a.link.sendToSession('never', 'x'), false)
  })

  t.test('close() ends the connections it made from a client passed in, not that client', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const mine = new Redis(redisUrl)
    t.teardown(() => mine.disconnect())
    const node = new StandInNode()
    const link = await redisBroker({ redis: mine, prefix }).connect(node)
    const named = async (): Promise<number> =>
      (await admin.client('LIST') as string).split('\n').filter((line) => line.includes(`name=${prefix}:`)).length
    t.equal(await named(), 2, 'one publisher and one subscriber per node')
    await link.close()
    await eventually(async () => await named() === 0, 3000, 'its connections are gone')
    t.equal(await mine.ping(), 'PONG', 'the client passed in still works')
    t.equal(await admin.exists(new RedisKeys(prefix).alive(node.nodeId)), 0, 'unregistered')
  })

  t.test('the prefix keeps apps on one Redis apart', async (t) => {
    const prefixA = uniquePrefix()
    const prefixB = uniquePrefix()
    t.teardown(() => deleteKeys(prefixA))
    t.teardown(() => deleteKeys(prefixB))
    const a = await connectNode(t, { prefix: prefixA })
    const a2 = await connectNode(t, { prefix: prefixA })
    const b = await connectNode(t, { prefix: prefixB })
    await a2.link.subscribe('room')
    await b.link.subscribe('room')
    await b.link.addSession('sb')
    await a.link.publish({ kind: 'all', frame: 'all' })
    await a.link.publish({ kind: 'channels', channels: ['room'], frames: ['room'] })
    t.equal(await a.link.sendToSession('sb', 'x'), false, 'sessions of the other app are not found')
    await b.link.publish({ kind: 'all', frame: 'fence-b' })
    await eventually(() => a2.node.deliveries.length === 2 && b.node.deliveries.length === 0)
    t.same(a2.node.deliveries.map((d) => d.kind === 'session' ? d.frame : d.kind === 'all' ? d.frame : d.frames[0]), ['all', 'room'])
    t.same(b.node.deliveries, [], 'nothing crossed over')
  })
  t.test('while Redis is down every call rejects at once; when it is back they work again', async (t) => {
    const redis = await PrivateRedis.start(t)
    const prefix = uniquePrefix()
    const a = await connectNode(t, { url: redis.url, prefix })
    const b = await connectNode(t, { url: redis.url, prefix })
    await b.link.subscribe('room')
    await redis.kill()
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['publish all', () => a.link.publish({ kind: 'all', frame: 'f' })],
      ['publish channels', () => a.link.publish({ kind: 'channels', channels: ['x', 'y'], frames: ['fx', 'fy'] })],
      ['subscribe', () => a.link.subscribe('room')],
      ['unsubscribe', () => a.link.unsubscribe('other')],
      ['addSession', () => a.link.addSession('s')],
      ['removeSession', () => a.link.removeSession('other')],
      ['sendToSession', () => a.link.sendToSession('s', 'f')]
    ]
    for (const [name, call] of calls) {
      const started = Date.now()
      await t.rejects(call(), Error, `${name} rejects`)
      t.ok(Date.now() - started < 200, `${name} rejects at once`)
    }
    await redis.restart()
    await eventually(async () => {
      await a.link.publish({ kind: 'channels', channels: ['room'], frames: ['back'] }).catch(() => {})
      return b.node.deliveries.length > 0
    }, 15000, 'delivery resumes after the restart')
    await eventually(async () => await b.link.sendToSession('s', 'f').catch(() => false), 15000,
      'a session added during the outage is registered on reconnect')
    t.pass('sessions registered again')
  })
})
