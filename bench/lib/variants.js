// @ts-check
// The three implementations compared side by side, and how the load client reaches each.

import { pathToFileURL } from 'node:url'

/**
 * Where variant (a) is loaded from: the compiled plugin of this repo, or the file named by
 * BENCH_CHANNELS_ENTRY (to bench another build, e.g. a branch checked out elsewhere).
 * @returns {URL}
 */
export function channelsEntry () {
  const override = process.env.BENCH_CHANNELS_ENTRY
  return override ? pathToFileURL(override) : new URL('../../dist/plugin/index.js', import.meta.url)
}

/** @typedef {{ key: 'a' | 'b' | 'c', module: 'channels' | 'handwritten' | 'socketio', label: string, client: 'frames' | 'socketio' }} Variant */

/** @type {Variant[]} */
export const variants = [
  { key: 'a', module: 'channels', label: '(a) fastify-channels', client: 'frames' },
  { key: 'b', module: 'handwritten', label: '(b) hand-written ws', client: 'frames' },
  { key: 'c', module: 'socketio', label: '(c) socket.io 4', client: 'socketio' }
]

/**
 * @param {Variant} variant
 * @param {{ port: number, path: string }} started
 */
export function urlFor (variant, started) {
  return variant.client === 'socketio'
    ? `http://127.0.0.1:${started.port}`
    : `ws://127.0.0.1:${started.port}${started.path}`
}
