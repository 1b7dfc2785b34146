// @ts-check
// What the cases on a Redis broker share (crossnode.js, workers.js): whether they can run at all,
// the opening of their child processes, and the burst round they both measure.
import { existsSync } from 'node:fs'
import { createConnection } from 'node:net'
import { fileURLToPath } from 'node:url'
import { spawnChild } from './rpc.js'
import { channelsEntry } from './variants.js'

/**
 * Whether a Redis answers PING at `url` within a second (no client library needed).
 * @param {string} url
 * @returns {Promise<boolean>}
 */
function redisAnswers (url) {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname || '127.0.0.1', port: Number(port || 6379) })
    const done = (/** @type {boolean} */ ok) => { socket.destroy(); resolve(ok) }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (chunk) => done(chunk.toString().startsWith('+PONG')))
  })
}

/**
 * The Redis to use (BENCH_REDIS_URL, default redis://127.0.0.1:6379), or why the case skips
 * (the plugin is not built, or Redis is not reachable); a skip is logged.
 * @param {import('../run.js').Ctx} ctx
 * @returns {Promise<{ redisUrl: string } | { skipped: string }>}
 */
export async function redisCaseReady (ctx) {
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const entry = fileURLToPath(channelsEntry())
  const skipped = !existsSync(entry)
    ? `${entry} does not exist: build the plugin first (npm run build)`
    : !await redisAnswers(redisUrl) ? `Redis is not reachable at ${redisUrl} (set BENCH_REDIS_URL)` : undefined
  if (skipped === undefined) return { redisUrl }
  ctx.log(`  SKIPPED — ${skipped}`)
  return { skipped }
}

/**
 * Runs `open` with a `spawn` (bench/lib/rpc.js spawnChild) that keeps every child it starts;
 * when `open` fails, those children are killed before the error goes on.
 * @template T
 * @param {(spawn: typeof spawnChild) => Promise<T>} open
 * @returns {Promise<T>}
 */
export async function openChildren (open) {
  /** @type {import('./rpc.js').Child[]} */
  const started = []
  try {
    return await open(async (script, opts) => {
      const child = await spawnChild(script, opts)
      started.push(child)
      return child
    })
  } catch (err) {
    await Promise.all(started.map((child) => child.kill()))
    throw err
  }
}

/**
 * One burst round: `publisher` sends `messages` payloads of `size` bytes at once, each of the
 * `n` sockets of the load `client` must get every one. Deliveries/s count from the first
 * broadcast to the last delivery; the CPU is that of every process in `servers`.
 * `inOrder`: whether each socket's last message must be the last one sent (one publisher).
 * @param {{ label: string, client: import('./rpc.js').Child, publisher: import('./rpc.js').Child,
 *   servers: import('./rpc.js').Child[], inOrder: boolean, timeoutMs: number }} s
 * @param {{ n: number, messages: number, size: number }} cfg
 */
export async function burstRound ({ label, client, publisher, servers, inOrder, timeoutMs }, { n, messages, size }) {
  await client.call('arm', { mode: 'count', perSocket: messages })
  await Promise.all(servers.map((server) => server.call('markCpu')))
  const sent = await publisher.call('burst', { count: messages, size }, timeoutMs)
  const got = await client.call('wait', { timeoutMs }, timeoutMs + 5000)
  if (!got.complete) throw new Error(`${label} burst: ${got.delivered}/${got.expected} deliveries`)
  if ((inOrder && got.badLast) || got.extra) {
    throw new Error(`${label} burst: ${inOrder ? got.badLast : 0} sockets got a wrong last message, ${got.extra} extra deliveries`)
  }
  const ms = got.tLast - sent.t0
  let cpuMs = 0
  for (const server of servers) cpuMs += (await server.call('cpu')).cpuMs
  return {
    deliveriesPerSec: (n * messages) / (ms / 1000),
    ms,
    // CPU of every server process in the round, per delivery
    serverCpuUsPerDelivery: (cpuMs * 1000) / (n * messages)
  }
}

/** x / y, or null when either is missing or y is 0. @param {number | undefined} x @param {number | undefined} y */
export const ratio = (x, y) => (typeof x === 'number' && typeof y === 'number' && y !== 0 ? x / y : null)
