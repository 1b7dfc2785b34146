// @ts-check
// Request/response over the Node IPC channel between the runner and its children.
//
// Child side: serve({ cmd: async (args) => result }) answers { id, ok, result | error }.
// Parent side: spawnChild() starts a child (pinned to one CPU with taskset when possible)
// and returns { call(cmd, args, timeoutMs), kill() }. Every call has a timeout, every child
// is killed when the runner exits, and a child exits by itself when the runner goes away.
import { spawn, execFileSync } from 'node:child_process'

/** @typedef {{ id: number, cmd: string, args?: any }} Request */
/** @typedef {{ id: number, ok: boolean, result?: any, error?: string }} Response */

/**
 * Child side. Also makes the child exit when the IPC channel closes (runner died).
 * @param {Record<string, (args: any) => any>} handlers
 */
export function serve (handlers) {
  if (!process.send) throw new Error('this module must be started by bench/run.js (no IPC channel)')
  /** Every child also answers `exit`: it exits cleanly (one started with --cpu-prof writes its profile on the way out). */
  const all = { exit: () => { setImmediate(() => process.exit(0)); return true }, ...handlers }
  process.on('message', async (/** @type {Request} */ msg) => {
    /** @type {Response} */
    let reply
    try {
      const fn = all[msg.cmd]
      if (!fn) throw new Error(`unknown command ${msg.cmd}`)
      reply = { id: msg.id, ok: true, result: await fn(msg.args ?? {}) }
    } catch (err) {
      reply = { id: msg.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }
    }
    process.send?.(reply)
  })
  process.on('disconnect', () => process.exit(0))
  process.send({ id: 0, ok: true, result: 'ready' })
}

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set()
let cleanupInstalled = false

function killAll () {
  for (const child of children) {
    try { child.kill('SIGKILL') } catch {}
  }
  children.clear()
}

function installCleanup () {
  if (cleanupInstalled) return
  cleanupInstalled = true
  process.on('exit', killAll)
  for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
    process.on(sig, () => { killAll(); process.exit(130) })
  }
}

let tasksetChecked = false
let hasTaskset = false

/** Whether children can be pinned: taskset exists and there are at least two CPUs. */
export function canPin () {
  if (!tasksetChecked) {
    tasksetChecked = true
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
      hasTaskset = true
    } catch { hasTaskset = false }
  }
  return hasTaskset
}

/**
 * @param {string} script absolute path of the child entry module
 * @param {{ args?: string[], cpu?: number | string | null, nodeFlags?: string[], readyTimeoutMs?: number, name: string }} opts  cpu: a CPU or a taskset list ("0-2")
 */
export async function spawnChild (script, opts) {
  installCleanup()
  const nodeArgs = [...(opts.nodeFlags ?? []), script, ...(opts.args ?? [])]
  const pin = opts.cpu != null && canPin()
  const file = pin ? 'taskset' : process.execPath
  const argv = pin ? ['-c', String(opts.cpu), process.execPath, ...nodeArgs] : nodeArgs
  const child = spawn(file, argv, { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
  children.add(child)

  let stderr = ''
  child.stderr?.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000)
  })

  /** @type {Map<number, { resolve: (v: any) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>} */
  const pending = new Map()
  let nextId = 1
  /** @type {Error | null} */
  let dead = null

  const failAll = (/** @type {Error} */ err) => {
    dead = err
    for (const p of pending.values()) { clearTimeout(p.timer); p.reject(err) }
    pending.clear()
  }

  /** @type {Promise<void>} */
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${opts.name}: not ready after ${opts.readyTimeoutMs ?? 15000} ms`)), opts.readyTimeoutMs ?? 15000)
    pending.set(0, { resolve: () => { clearTimeout(timer); resolve() }, reject: (e) => { clearTimeout(timer); reject(e) }, timer })
  })

  child.on('message', (/** @type {Response} */ msg) => {
    const p = pending.get(msg.id)
    if (!p) return
    pending.delete(msg.id)
    clearTimeout(p.timer)
    if (msg.ok) p.resolve(msg.result)
    else p.reject(new Error(`${opts.name}: ${msg.error}`))
  })
  child.on('error', (err) => failAll(new Error(`${opts.name}: ${err.message}`)))
  child.on('exit', (code, signal) => {
    children.delete(child)
    const tail = stderr.trim() ? `\n--- stderr of ${opts.name} ---\n${stderr.trim()}` : ''
    failAll(new Error(`${opts.name} exited (code ${code}, signal ${signal})${tail}`))
  })

  await ready

  return {
    name: opts.name,
    pinned: pin,
    /**
     * @param {string} cmd
     * @param {any} [args]
     * @param {number} [timeoutMs]
     * @returns {Promise<any>}
     */
    call (cmd, args = {}, timeoutMs = 30000) {
      if (dead) return Promise.reject(dead)
      const id = nextId++
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`${opts.name}: '${cmd}' timed out after ${timeoutMs} ms`))
        }, timeoutMs)
        pending.set(id, { resolve, reject, timer })
        child.send({ id, cmd, args })
      })
    },
    /** Kills the child and waits (bounded) for it to be gone. */
    async kill () {
      if (child.exitCode !== null || child.signalCode !== null) return
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 5000))])
    }
  }
}

/** @typedef {Awaited<ReturnType<typeof spawnChild>>} Child */
