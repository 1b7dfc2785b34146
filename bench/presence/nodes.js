// @ts-check
// Starting a presence bench node (server.js) as a child process, and asking it over IPC.

import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const serverPath = fileURLToPath(new URL('./server.js', import.meta.url))

/** @typedef {{ child: import('node:child_process').ChildProcess, port: number, ask: (cmd: string) => Promise<any> }} Node */

/**
 * A node on `broker` ('memory', 'redis' or 'nats') under `prefix`; `entry`: the build to load
 * (BENCH_CHANNELS_ENTRY), this repo's dist/ when absent. Resolves once it listens.
 * @param {string} broker @param {string} prefix @param {string} [entry]
 * @returns {Promise<Node>}
 */
export function startNode (broker, prefix, entry) {
  const env = { ...process.env }
  if (entry !== undefined) env.BENCH_CHANNELS_ENTRY = entry
  const child = fork(serverPath, [broker, prefix], { env, execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  /** @type {Map<string, (m: any) => void>} */
  const waiting = new Map()
  child.on('message', (/** @type {any} */ m) => { waiting.get(m.reply)?.(m); waiting.delete(m.reply) })
  const ask = (/** @type {string} */ cmd) => new Promise((resolve) => { waiting.set(cmd === 'close' ? 'closed' : cmd, resolve); child.send({ cmd }) })
  return new Promise((resolve, reject) => {
    waiting.set('ready', (m) => resolve({ child, port: m.port, ask }))
    child.once('exit', (code) => reject(new Error(`bench node exited with ${code}`)))
  })
}
