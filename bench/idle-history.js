// @ts-check
/**
 * State kept for history channels that are only read, never published to (docs/history.md,
 * "State from subscriptions alone"): N distinct channels read once each through
 * `fastify.channels.history()` (the read a subscribe makes), then
 *
 *   1. the heap the memory broker keeps for them (after a full GC), bytes per channel
 *   2. what Redis keeps for them (INFO memory used_memory before and after), bytes per channel,
 *      on a private redis-server of its own (nothing else writes to it) when `redis-server` is
 *      installed, else on --redis (then other clients' writes add noise)
 *
 *   npm run build && node bench/idle-history.js [--quick] [--redis redis://127.0.0.1:6379] [--json FILE]
 *
 * BENCH_CHANNELS_ENTRY=/path/to/other/dist/plugin/index.js measures another build the same way.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify from 'fastify'
import { Redis } from 'ioredis'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const flag = (/** @type {string} */ name, /** @type {string | undefined} */ fallback) => {
  const index = args.indexOf(name)
  return index === -1 ? fallback : args[index + 1]
}
const jsonFile = flag('--json', undefined)
const channels = quick ? 20_000 : 100_000

// BENCH_CHANNELS_ENTRY: another build's dist/plugin/index.js (an older one, to compare)
const entry = process.env.BENCH_CHANNELS_ENTRY ?? new URL('../dist/plugin/index.js', import.meta.url).href
const plugin = await import(entry)

setFlagsFromString('--expose-gc')
/** @type {() => void} */
const gc = runInNewContext('gc')

/** @param {Record<string, unknown>} options */
async function startNode (options) {
  const app = Fastify({ logger: false })
  await app.register(plugin.default, { client: false, heartbeat: false, history: true, ...options })
  await app.ready()
  return app
}

/** Reads `channels` distinct never-published channels, 2000 at a time. @param {any} app @param {string} tag */
async function readAll (app, tag) {
  for (let start = 0; start < channels; start += 2000) {
    await Promise.all(Array.from({ length: 2000 }, async (_, i) => await app.channels.history(`${tag}-${start + i}`, { last: 0 })))
  }
}

async function memoryHeap () {
  const app = await startNode({})
  await app.channels.history('warm-up')
  await readAll(app, 'warm') // the code paths compiled and their caches filled before measuring
  gc(); gc()
  const before = process.memoryUsage().heapUsed
  await readAll(app, 'idle')
  gc(); gc()
  const added = process.memoryUsage().heapUsed - before
  await app.close()
  return { channels, heapBytes: added, bytesPerChannel: Math.max(0, added) / channels }
}

async function freePort () {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** A redis-server of this run's own, or undefined when none can be started. */
async function privateRedis () {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const started = await new Promise((resolve) => {
    child.once('error', () => resolve(false))
    setTimeout(() => resolve(true), 300)
  })
  if (!started || child.exitCode !== null) return undefined
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') }
}

async function redisMemory () {
  const own = await privateRedis()
  const url = own?.url ?? flag('--redis', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  const admin = new Redis(url)
  const prefix = `bench-idle-${randomBytes(4).toString('hex')}`
  const app = await startNode({ broker: plugin.redisBroker({ url, prefix }) })
  const used = async () => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])
  try {
    await app.channels.history('warm-up')
    const before = await used()
    await readAll(app, 'idle')
    const added = await used() - before
    return { channels, server: own === undefined ? 'shared' : 'private', usedMemoryBytes: added, bytesPerChannel: Math.max(0, added) / channels }
  } finally {
    await app.close()
    if (own === undefined) {
      const keys = await admin.keys(`${prefix}:*`)
      for (let i = 0; i < keys.length; i += 1000) await admin.del(...keys.slice(i, i + 1000))
    }
    admin.disconnect()
    own?.stop()
  }
}

const results = { channels, node: process.version, at: new Date().toISOString() }
results.memory = await memoryHeap()
console.log(`memory broker: ${channels} never-published channels read: heap +${(Math.max(0, results.memory.heapBytes) / 1048576).toFixed(2)} MB (${results.memory.bytesPerChannel.toFixed(1)} B per channel)`)
try {
  results.redis = await redisMemory()
  console.log(`Redis (${results.redis.server}): used_memory +${(results.redis.usedMemoryBytes / 1048576).toFixed(2)} MB (${results.redis.bytesPerChannel.toFixed(1)} B per channel)`)
} catch (err) {
  console.log('Redis unreachable: the Redis case skipped', String(err))
}
if (jsonFile !== undefined) writeFileSync(jsonFile, JSON.stringify(results, null, 2))
process.exit(0)
