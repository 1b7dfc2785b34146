// @ts-check
// Starts one server child (CPU 0) and one load-client child (CPU 1) for a variant, runs a
// function with them, and always kills both afterwards.
import { fileURLToPath } from 'node:url'
import { spawnChild } from './rpc.js'
import { urlFor } from './variants.js'

const serverScript = fileURLToPath(new URL('../servers/main.js', import.meta.url))
const clientScript = fileURLToPath(new URL('../clients/main.js', import.meta.url))

/**
 * @template T
 * @param {import('./variants.js').Variant} variant
 * @param {{ inbound?: 'schema' | 'plain' }} startArgs
 * @param {(p: { server: import('./rpc.js').Child, client: import('./rpc.js').Child, url: string }) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withProcesses (variant, startArgs, fn) {
  /** @type {import('./rpc.js').Child | null} */
  let server = null
  /** @type {import('./rpc.js').Child | null} */
  let client = null
  try {
    let started
    try {
      server = await spawnChild(serverScript, { name: `server ${variant.label}`, args: [variant.module], cpu: 0, nodeFlags: ['--expose-gc'] })
      started = await server.call('start', startArgs, 20000)
    } catch (err) {
      // Marks a server that cannot even start (e.g. plugin not built): the runner then skips
      // this variant for the remaining cases instead of failing each one.
      throw Object.assign(new Error(`cannot start ${variant.label}: ${/** @type {Error} */ (err).message}`), { startFailure: true })
    }
    client = await spawnChild(clientScript, { name: 'load client', cpu: 1, nodeFlags: ['--max-old-space-size=4096'] })
    return await fn({ server, client, url: urlFor(variant, started) })
  } finally {
    await Promise.all([client?.kill(), server?.kill()])
  }
}

/**
 * Opens `n` connections and checks the server sees them all.
 * @param {{ server: import('./rpc.js').Child, client: import('./rpc.js').Child, url: string }} p
 * @param {import('./variants.js').Variant} variant
 * @param {number} n total connections wanted
 * @param {number} have connections already open
 */
export async function connectClients (p, variant, n, have = 0) {
  const add = n - have
  const res = await p.client.call('connect', { kind: variant.client, url: p.url, n: add, channel: 'bench', concurrency: 100, timeoutMs: 20000 }, 60000 + add * 20)
  const seen = await p.server.call('connections')
  if (typeof seen === 'number' && seen !== n) throw new Error(`server sees ${seen} connections, expected ${n}`)
  return res
}
