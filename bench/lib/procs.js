// @ts-check
// Sessions: one server child (CPU 0) and one load-client child (CPU 1) per variant.
// The cases open a session for every variant at once and interleave their rounds
// (round 1 of a, b, c, then round 2 ...), so that a disturbance on the machine (another
// process taking a CPU for a while) spreads over all variants instead of skewing one.
// Idle sessions cost nothing measurable: their processes sleep in epoll.
import { fileURLToPath } from 'node:url'
import { spawnChild } from './rpc.js'
import { urlFor } from './variants.js'

const serverScript = fileURLToPath(new URL('../servers/main.js', import.meta.url))
const clientScript = fileURLToPath(new URL('../clients/main.js', import.meta.url))

/**
 * @typedef {object} Session
 * @property {import('./variants.js').Variant} variant
 * @property {import('./rpc.js').Child} server
 * @property {import('./rpc.js').Child} client
 * @property {string} url
 * @property {Error | null} error set once the session failed; it then takes no more rounds
 */

/**
 * @param {import('./variants.js').Variant} variant
 * @param {{ inbound?: 'schema' | 'plain' }} startArgs
 * @returns {Promise<Session>}
 */
async function openSession (variant, startArgs) {
  /** @type {import('./rpc.js').Child | null} */
  let server = null
  let started
  try {
    server = await spawnChild(serverScript, { name: `server ${variant.label}`, args: [variant.module], cpu: 0, nodeFlags: ['--expose-gc'] })
    started = await server.call('start', startArgs, 20000)
  } catch (err) {
    await server?.kill()
    // Marks a server that cannot even start (e.g. plugin not built): the runner then skips
    // this variant for the remaining cases instead of failing each one.
    throw Object.assign(new Error(`cannot start ${variant.label}: ${/** @type {Error} */ (err).message}`), { startFailure: true })
  }
  try {
    const client = await spawnChild(clientScript, { name: `load client ${variant.label}`, cpu: 1, nodeFlags: ['--max-old-space-size=4096'] })
    return { variant, server, client, url: urlFor(variant, started), error: null }
  } catch (err) {
    await server.kill()
    throw err
  }
}

/**
 * Opens a session per variant and runs `prepare` on it (e.g. connect the subscribers).
 * A variant that fails here gets `error` set and takes no rounds.
 * @param {import('./variants.js').Variant[]} variants
 * @param {{ inbound?: 'schema' | 'plain' }} startArgs
 * @param {(s: Session) => Promise<void>} prepare
 * @returns {Promise<Session[]>}
 */
export async function openSessions (variants, startArgs, prepare) {
  /** @type {Session[]} */
  const sessions = []
  for (const variant of variants) {
    try {
      const s = await openSession(variant, startArgs)
      sessions.push(s)
      await prepare(s)
    } catch (err) {
      const last = sessions.at(-1)
      if (last && last.variant === variant) last.error = /** @type {Error} */ (err)
      else sessions.push(/** @type {Session} */ ({ variant, error: /** @type {Error} */ (err) }))
    }
  }
  return sessions
}

/** @param {Session[]} sessions */
export async function closeSessions (sessions) {
  await Promise.all(sessions.flatMap((s) => [s.client?.kill(), s.server?.kill()]))
}

/**
 * Runs `total` interleaved rounds, rotating which variant goes first in each round (so no
 * variant always follows the same one); a session whose round throws is marked failed.
 * @param {Session[]} sessions
 * @param {number} total
 * @param {(s: Session, round: number) => Promise<void>} fn
 */
export async function interleave (sessions, total, fn) {
  for (let r = 0; r < total; r++) {
    const k = r % sessions.length
    for (const s of [...sessions.slice(k), ...sessions.slice(0, k)]) {
      if (s.error) continue
      try { await fn(s, r) } catch (err) { s.error = /** @type {Error} */ (err) }
    }
  }
}

/**
 * Opens `n - have` more connections and checks the server sees `n`.
 * @param {Session} s
 * @param {number} n total connections wanted
 * @param {number} [have] connections already open
 */
export async function connectClients (s, n, have = 0) {
  const add = n - have
  const res = await s.client.call('connect', { kind: s.variant.client, url: s.url, n: add, channel: 'bench', concurrency: 100, timeoutMs: 20000 }, 60000 + add * 20)
  const seen = await s.server.call('connections')
  if (typeof seen === 'number' && seen !== n) throw new Error(`server sees ${seen} connections, expected ${n}`)
  return res
}

/**
 * The per-variant result of a case: the value `ok` builds, or { error } for a failed session.
 * @template T
 * @param {Session[]} sessions
 * @param {(s: Session) => T} ok
 * @returns {Record<string, T | { error: string, startFailure?: boolean }>}
 */
export function collect (sessions, ok) {
  /** @type {Record<string, any>} */
  const out = {}
  for (const s of sessions) {
    out[s.variant.key] = s.error
      ? { error: s.error.message, ...(/** @type {any} */ (s.error).startFailure ? { startFailure: true } : {}) }
      : ok(s)
  }
  return out
}
