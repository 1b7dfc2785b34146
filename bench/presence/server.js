// @ts-check
// A presence bench node: fastify-channels from dist/, presence on every channel, rate limit and
// heartbeat off. Forked by bench/presence/run.js and large-nats.js with argv [broker, prefix]:
// broker 'memory', 'redis' or 'nats'. Clients track with a `join` message ({ key, meta }), acked
// when it has an id. Answers IPC: { cmd: 'memory' } → process.memoryUsage() after a GC;
// { cmd: 'cpu' } → process.cpuUsage(); { cmd: 'close' }.
import Fastify from 'fastify'
import { channelsEntry } from '../lib/variants.js'
import { listenOnFreePort } from '../lib/listen.js'

const [broker = 'memory', prefix = 'bench-presence'] = process.argv.slice(2)
const mod = await import(channelsEntry().href)
/** @type {any} */
const app = Fastify({ logger: { level: 'warn' } })
await app.register(mod.default, {
  client: false,
  rateLimit: false,
  heartbeat: false,
  maxBufferedBytes: 64 * 1024 * 1024,
  // Presence on the bench's crowd and churn channels; `plain-*` channels have none (the baseline).
  presence: /^(crowd|churn)-/,
  broker: broker === 'redis'
    ? mod.redisBroker({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix })
    : broker === 'nats' ? mod.natsBroker({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', prefix }) : undefined
})
app.channels.on('message', { event: 'join' }, async (/** @type {any} */ socket, /** @type {any} */ data, /** @type {any} */ meta) => {
  await socket.track(meta.channel, data.key, data.meta)
})
const port = await listenOnFreePort(app, '127.0.0.1')

process.on('message', async (/** @type {any} */ message) => {
  if (message.cmd === 'memory') {
    globalThis.gc?.()
    process.send?.({ reply: 'memory', usage: process.memoryUsage() })
  } else if (message.cmd === 'cpu') {
    process.send?.({ reply: 'cpu', usage: process.cpuUsage() })
  } else if (message.cmd === 'close') {
    await app.close()
    process.send?.({ reply: 'closed' })
    process.exit(0)
  }
})
process.on('disconnect', () => process.exit(0)) // the runner died
process.send?.({ reply: 'ready', port })
