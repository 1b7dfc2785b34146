// @ts-check
/**
 * History channels, measured as ratios in one run (docs/history.md):
 *
 *   1. burst fan-out on the memory broker: a history channel vs the same channel without history
 *   2. publications/s through Redis: to a history channel (one Lua script each) vs plain PUBLISH
 *   3. recovery of 100 missed messages (subscribe with `since` → the 100th replayed frame):
 *      p50/p99 on the memory broker and on Redis
 *
 *   npm run build && node bench/history.js [--quick] [--redis redis://127.0.0.1:6379] [--json FILE]
 *
 * Server and clients share this process (loopback sockets, real frames), so the absolute numbers
 * are this machine's, but each pair is measured alike, alternating, and reported as a ratio.
 */
import { writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import WebSocket from 'ws'
import { median, percentile } from './lib/stats.js'
import { listenOnFreePort } from './lib/listen.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const flag = (name, fallback) => {
  const index = args.indexOf(name)
  return index === -1 ? fallback : args[index + 1]
}
const redisUrl = flag('--redis', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const jsonFile = flag('--json', undefined)

const plugin = await import(new URL('../dist/plugin/index.js', import.meta.url).href)
const fastifyChannels = plugin.default

const config = quick
  ? { subscribers: 50, burst: 500, rounds: 3, redisPublications: 1000, recoveries: 20 }
  : { subscribers: 200, burst: 2000, rounds: 7, redisPublications: 5000, recoveries: 100 }

/** @param {Record<string, unknown>} options */
async function startServer (options) {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false, rateLimit: false, heartbeat: false, history: { channel: /^h-/, size: 1000 }, ...options })
  const port = await listenOnFreePort(app, '127.0.0.1')
  return { app, url: `ws://127.0.0.1:${port}/ws` }
}

/** A raw client: counts frames and lets a test wait for the nth. */
class Client {
  /** @param {string} url */
  static async open (url) {
    const ws = new WebSocket(url)
    const client = new Client(ws)
    // Watch for the welcome before the socket opens: it may arrive in the same read as the upgrade.
    const welcome = client.next((frame) => frame.type === 'welcome')
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    await welcome
    return client
  }

  /** @param {WebSocket} ws */
  constructor (ws) {
    this.ws = ws
    this.sessionId = ''
    /** @type {Array<(frame: any) => boolean>} */
    this.watchers = []
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString())
      if (frame.type === 'welcome') this.sessionId = frame.sessionId
      this.watchers = this.watchers.filter((watch) => !watch(frame))
    })
  }

  /** @param {(frame: any) => boolean} match @returns {Promise<any>} */
  next (match) {
    return new Promise((resolve) => this.watchers.push((frame) => { if (!match(frame)) return false; resolve(frame); return true }))
  }

  /** resolves after `count` message frames */
  messages (count) {
    let seen = 0
    return this.next((frame) => frame.type === 'message' && ++seen === count)
  }

  /** @param {Record<string, unknown>} frame */
  async subscribe (frame) {
    const id = Math.floor(Math.random() * 1e9) + 1
    const answer = this.next((f) => f.id === id)
    this.ws.send(JSON.stringify({ type: 'subscribe', id, ...frame }))
    return await answer
  }

  close () { this.ws.close() }
}

// ---- 1. burst fan-out, memory broker -----------------------------------------------------------

async function burstFanOut () {
  const { app, url } = await startServer({})
  const clients = await Promise.all(Array.from({ length: config.subscribers }, () => Client.open(url)))
  for (const client of clients) {
    await client.subscribe({ channel: 'h-bench' })
    await client.subscribe({ channel: 'plain-bench' })
  }
  /** @param {string} channel */
  const round = async (channel) => {
    const done = Promise.all(clients.map((client) => client.messages(config.burst)))
    const start = performance.now()
    for (let i = 0; i < config.burst; i++) app.broadcastChannel(channel, { i, text: 'a line of chat text' })
    await done
    return (config.burst * config.subscribers) / ((performance.now() - start) / 1000)
  }
  await round('plain-bench')
  await round('h-bench') // warm-up
  const plain = []
  const history = []
  for (let r = 0; r < config.rounds; r++) {
    plain.push(await round('plain-bench'))
    history.push(await round('h-bench'))
  }
  for (const client of clients) client.close()
  await app.close()
  return { deliveriesPerSecond: { plain: median(plain), history: median(history) }, ratio: median(history) / median(plain) }
}

// ---- 2. publications/s through Redis ------------------------------------------------------------

async function redisPublications () {
  const prefix = `bench-${randomBytes(4).toString('hex')}`
  const { app, url } = await startServer({ broker: plugin.redisBroker({ url: redisUrl, prefix }) })
  const listener = await Client.open(url) // one subscriber of each, so every publication is delivered
  await listener.subscribe({ channel: 'h-bench' })
  await listener.subscribe({ channel: 'plain-bench' })
  /** @param {string} channel */
  const round = async (channel) => {
    const count = config.redisPublications
    const delivered = listener.messages(count)
    const start = performance.now()
    const inFlight = []
    for (let i = 0; i < count; i++) {
      inFlight.push(app.broadcastChannel(channel, { i }))
      if (inFlight.length === 100) await Promise.all(inFlight.splice(0))
    }
    await Promise.all(inFlight)
    await delivered
    return count / ((performance.now() - start) / 1000)
  }
  await round('plain-bench')
  await round('h-bench')
  const plain = []
  const history = []
  for (let r = 0; r < config.rounds; r++) {
    plain.push(await round('plain-bench'))
    history.push(await round('h-bench'))
  }
  listener.close()
  await app.close()
  const { Redis } = await import('ioredis')
  const redis = new Redis(redisUrl)
  const keys = await redis.keys(`${prefix}:*`)
  if (keys.length > 0) await redis.del(...keys)
  redis.disconnect()
  return { publicationsPerSecond: { plain: median(plain), history: median(history) }, ratio: median(history) / median(plain) }
}

// ---- 3. recovery of 100 missed messages ---------------------------------------------------------

/** @param {Record<string, unknown>} options */
async function recovery (options) {
  const { app, url } = await startServer(options)
  const times = []
  for (let r = 0; r < config.recoveries; r++) {
    const channel = `h-recover-${r}`
    const first = await Client.open(url)
    const { epoch, offset } = await first.subscribe({ channel })
    first.close()
    for (let i = 0; i < 100; i++) await app.broadcastChannel(channel, { i, text: 'missed while away' })
    const back = await Client.open(url)
    const replayed = back.messages(100)
    const start = performance.now()
    const answer = await back.subscribe({ channel, since: { epoch, offset, session: first.sessionId } })
    if (answer.recovered !== true) throw new Error(`not recovered: ${JSON.stringify(answer)}`)
    await replayed
    times.push(performance.now() - start)
    back.close()
  }
  await app.close()
  times.sort((a, b) => a - b)
  return { p50ms: percentile(times, 50), p99ms: percentile(times, 99), samples: times.length }
}

const results = { config, node: process.version, at: new Date().toISOString() }
results.burstFanOutMemory = await burstFanOut()
console.log('burst fan-out (memory broker): history / plain =', results.burstFanOutMemory.ratio.toFixed(2), results.burstFanOutMemory.deliveriesPerSecond)
let redisUp = true
try {
  results.redisPublications = await redisPublications()
  console.log('publications/s through Redis: history / plain =', results.redisPublications.ratio.toFixed(2), results.redisPublications.publicationsPerSecond)
} catch (err) {
  redisUp = false
  console.log('Redis unreachable: Redis cases skipped', String(err))
}
results.recoveryMemory = await recovery({})
console.log('recovery of 100 missed (memory broker):', results.recoveryMemory)
if (redisUp) {
  const prefix = `bench-${randomBytes(4).toString('hex')}`
  results.recoveryRedis = await recovery({ broker: plugin.redisBroker({ url: redisUrl, prefix }) })
  console.log('recovery of 100 missed (Redis):', results.recoveryRedis)
  const { Redis } = await import('ioredis')
  const redis = new Redis(redisUrl)
  const keys = await redis.keys(`${prefix}:*`)
  if (keys.length > 0) await redis.del(...keys)
  redis.disconnect()
}
if (jsonFile !== undefined) writeFileSync(jsonFile, JSON.stringify(results, null, 2))
