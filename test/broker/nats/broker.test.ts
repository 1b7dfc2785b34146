/**
 * natsBroker()'s options and start: bad options are refused with coded errors, a missing
 * `@nats-io/*` package fails with FST_CHANNELS_MISSING_NATS, and a server that cannot be
 * reached, or has no JetStream, fails the registration with FST_CHANNELS_BROKER_UNREACHABLE.
 */
import { execFile, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import Fastify from 'fastify'
import fastifyChannels, { natsBroker, MissingNatsError } from '../../../plugin/index.js'
import { loadNats } from '../../../plugin/broker/nats/client.js'
import { freePort, natsReachable, withNatsServer } from './helpers.js'

t.test('bad options are refused', async (t) => {
  const bad: unknown[] = [
    null, 'nats://x', { servers: '' }, { servers: [] }, { servers: [1] }, { connection: {} }, { prefix: '' },
    { prefix: 'x'.repeat(101) }, { prefix: 5 }, { nodeTtl: 999 }, { nodeTtl: -1 }, { commandTimeout: 0 }, { url: 'nats://x' }
  ]
  for (const options of bad) {
    t.throws(() => natsBroker(options as never), { code: 'FST_CHANNELS_INVALID_OPTION' }, JSON.stringify(options))
  }
  t.doesNotThrow(() => natsBroker({ servers: ['nats://a:4222', 'nats://b:4222'], prefix: 'any thing.*>' }), 'several servers; any prefix')
})

t.test('without the @nats-io packages: a coded error', async (t) => {
  await t.rejects(loadNats({ transport: '@nats-io/not-installed', jetstream: '@nats-io/jetstream', kv: '@nats-io/kv' }), { code: 'FST_CHANNELS_MISSING_NATS' })
  await t.rejects(loadNats({ transport: '@nats-io/transport-node', jetstream: '@nats-io/jetstream', kv: 'nats-kv-not-installed' }), MissingNatsError)
})

t.test('with the @nats-io packages hidden the plugin works, and only a NATS broker fails, with a coded error', async (t) => {
  const dir = new URL('./fixtures/', import.meta.url)
  const { stdout } = await promisify(execFile)(process.execPath, [
    `--import=${import.meta.resolve('@tapjs/typescript/import')}`,
    `--import=${new URL('hide-nats.mjs', dir).href}`,
    fileURLToPath(new URL('without-nats.ts', dir))
  ], { env: { ...process.env, NODE_OPTIONS: '' } })
  t.same(JSON.parse(stdout), { plain: 'ok', code: 'FST_CHANNELS_MISSING_NATS' })
})

t.test('a server that cannot be reached fails the registration', async (t) => {
  const port = await freePort()
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(fastifyChannels, { broker: natsBroker({ servers: `nats://127.0.0.1:${port}`, commandTimeout: 500 }) }).ready() },
    { code: 'FST_CHANNELS_BROKER_UNREACHABLE' })
})

await withNatsServer(t, async () => {
  t.test('a server without JetStream fails the registration', async (t) => {
    const port = await freePort()
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
    t.teardown(() => { child.kill('SIGKILL') })
    const url = `nats://127.0.0.1:${port}`
    const until = Date.now() + 10_000
    for (;;) {
      const { connect } = await import('@nats-io/transport-node')
      const ok = await connect({ servers: url, reconnect: false, timeout: 500 }).then(async (nc) => { await nc.close(); return true }, () => false)
      if (ok) break
      if (Date.now() > until) throw new Error('nats-server did not start')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.equal(await natsReachable(url), false, 'no JetStream there')
    const app = Fastify({ logger: false })
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(fastifyChannels, { broker: natsBroker({ servers: url, commandTimeout: 500 }) }).ready() },
      { code: 'FST_CHANNELS_BROKER_UNREACHABLE', message: /JetStream/ })
  })
})
