/**
 * Helpers for the tests that need a real Redis: a reachability gate (skip loudly, or fail
 * under CI=true), unique prefixes, nodes in this process and in child processes, and a
 * private redis-server that tests may kill and restart.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { redisBroker, type ChannelsOptions, type RedisBrokerOptions } from '../../plugin/index.js'
import { within } from '../helpers/deadline.js'
import { startApp, type TestApp } from '../helpers/server.js'

export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** true when a PING to `url` is answered within a second */
export async function redisReachable (url = redisUrl): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 1000, maxRetriesPerRequest: 0 })
  client.on('error', () => {})
  try {
    await client.connect()
    return (await client.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

/**
 * Runs `fn` only when Redis answers. Otherwise the test is skipped with a loud message, or
 * fails when CI=true: CI must never pass a Redis suite that did not run.
 */
export async function withRedis (t: Test, fn: () => Promise<void> | void): Promise<void> {
  if (await redisReachable()) {
    await fn()
    return
  }
  const message = `Redis is not reachable at ${redisUrl}: the Redis broker tests did not run`
  if (process.env.CI === 'true') {
    t.fail(`${message} (CI=true makes this a failure)`)
    return
  }
  process.stderr.write(`\n*** SKIPPED: ${message} ***\n\n`)
  t.test('the Redis broker suite', { skip: message }, () => {})
}

/** A prefix no other test shares, so tests running side by side never see each other. */
export function uniquePrefix (): string {
  return `test-${randomBytes(6).toString('hex')}`
}

/** Deletes every key under `prefix`, node-wide (`{prefix}:…`) and per channel (tests tidy up after themselves). */
export async function deleteKeys (prefix: string, url = redisUrl): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    const keys = [...await client.keys(`${prefix}:*`), ...await client.keys(`{${prefix}}:*`)]
    if (keys.length > 0) await client.del(...keys)
  } catch {
    // the private server may be gone already
  } finally {
    client.disconnect()
  }
}

/** A node in this process; closed at teardown. */
export async function startNode (
  t: Test,
  broker: RedisBrokerOptions,
  setup?: (app: FastifyInstance) => void | Promise<void>,
  options: ChannelsOptions = {},
  fastifyOptions: FastifyServerOptions = {}
): Promise<TestApp> {
  const node = await startApp({ broker: redisBroker({ url: redisUrl, ...broker }), heartbeat: false, rateLimit: false, ...options }, setup, fastifyOptions)
  t.teardown(() => node.app.close())
  return node
}

export interface LogLine { level: number, msg: string, time?: number, err?: { message?: string } }

/** Fastify options whose logger keeps every line in `lines`. */
export function capturedLogger (lines: LogLine[]): FastifyServerOptions {
  return { logger: { level: 'debug', stream: { write (line: string) { lines.push(JSON.parse(line) as LogLine) } } } }
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

import { eventually } from '../helpers/eventually.js'

export { eventually }

/** Resolves once `child` has exited; fails with the expectation if it has not within 10 s. */
export async function exited (child: ChildProcess, what = 'the child process exits'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await within(new Promise<void>((resolve) => child.once('exit', () => resolve())), 10000, what)
}

/**
 * The port a node fixture in `child` listens on: the `{ port }` of the first line it prints.
 * Fails with `what` if the child exits first, or prints nothing within 60 s (a child compiles its TypeScript first: slow on a busy machine).
 */
export async function listeningPort (child: ChildProcess, what: string): Promise<number> {
  const port = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port))
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before listening`)))
  })
  return await within(port, 60000, `${what} prints its port`)
}

/**
 * A redis-server of the test's own, on a free port: kill it at will. Without persistence (it
 * comes back empty), or with `{ persistent: true }` an append-only file synced on every write
 * in a temporary folder (it comes back with what it held).
 */
export class PrivateRedis {
  private child: ChildProcess | undefined

  private constructor (readonly port: number, private readonly persistence: string[]) {}

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  static async start (t: Test, { persistent = false }: { persistent?: boolean } = {}): Promise<PrivateRedis> {
    let persistence = ['--appendonly', 'no']
    if (persistent) {
      const dir = mkdtempSync(join(tmpdir(), 'fc-redis-'))
      t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
      persistence = ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]
    }
    const server = new PrivateRedis(await freePort(), persistence)
    await server.restart()
    t.teardown(() => server.kill())
    return server
  }

  /** (Re)starts the server on the same port and waits until it answers. */
  async restart (): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...this.persistence], { stdio: 'ignore' })
    const child = this.child
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`)
      return await redisReachable(this.url)
    }, 10000, 'private redis-server up')
  }

  /** SIGSTOP / SIGCONT: a Redis that hangs without closing its connections. */
  pause (): void {
    this.child?.kill('SIGSTOP')
  }

  resume (): void {
    this.child?.kill('SIGCONT')
  }

  /** SIGKILL: the way a crashed or unplugged Redis goes away. */
  async kill (): Promise<void> {
    const child = this.child
    this.child = undefined
    if (child === undefined) return
    child.kill('SIGKILL')
    await exited(child)
  }
}

const fixture = fileURLToPath(new URL('./fixtures/node.ts', import.meta.url))
const tsImport = import.meta.resolve('@tapjs/typescript/import')

/** A node in a child process (test/redis/fixtures/node.ts), driven over HTTP. */
export class ChildNode {
  private constructor (readonly child: ChildProcess, readonly port: number) {}

  get url (): string {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  static async start (
    t: Test,
    env: { PREFIX: string, NODE_TTL?: string, REDIS_URL?: string, REDIS_CLUSTER_URL?: string, COMMAND_TIMEOUT?: string, LOG_LEVEL?: string },
    nodeFlags: string[] = []
  ): Promise<ChildNode> {
    // Only the TypeScript loader: not tap's coverage and mock hooks of this process.
    // on the cluster only when `env` says so (CI exports REDIS_CLUSTER_URL for every test)
    const { REDIS_CLUSTER_URL: _cluster, ...inherited } = process.env
    const childEnv: NodeJS.ProcessEnv = { ...inherited, REDIS_URL: redisUrl, ...env }
    delete childEnv.NODE_OPTIONS
    const child = spawn(process.execPath, [...nodeFlags, `--import=${tsImport}`, fixture], { env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] })
    const node = new ChildNode(child, await listeningPort(child, 'fixture node'))
    t.teardown(() => node.kill('SIGKILL'))
    return node
  }

  async post (path: string, data: unknown, event?: string): Promise<{ ok: boolean, code?: string }> {
    return await this.postJson(path, { data, event }) as { ok: boolean, code?: string }
  }

  /** POSTs `body` as it is and returns the JSON answer. */
  async postJson (path: string, body: unknown): Promise<unknown> {
    const response = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body)
    })
    return await response.json()
  }

  /** SIGSTOP / SIGCONT: a node frozen by a long GC pause or a stopped VM, then thawed. */
  pause (): void {
    this.child.kill('SIGSTOP')
  }

  resume (): void {
    this.child.kill('SIGCONT')
  }

  async kill (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    await exited(this.child)
  }
}
