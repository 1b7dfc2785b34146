/**
 * Helpers for the tests that need a real NATS with JetStream: a reachability gate (skip loudly,
 * or fail under CI=true), unique prefixes and the removal of what they created, and a private
 * nats-server on a free port that tests may kill, pause and restart.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import { natsBroker, type ChannelsOptions, type NatsBrokerOptions } from '../../../plugin/index.js'
import { NatsNames } from '../../../plugin/broker/nats/names.js'
import { startApp, type TestApp } from '../../helpers/server.js'
import { exited, listeningPort } from '../../redis/helpers.js'

export { eventually } from '../../redis/helpers.js'

export const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222'

/** true when a server with JetStream answers at `url` within a few seconds (the machine may be busy) */
export async function natsReachable (url = natsUrl, timeout = 5000): Promise<boolean> {
  let nc: NatsConnection | undefined
  try {
    nc = await connect({ servers: url, timeout, reconnect: false })
    await jetstreamManager(nc, { timeout })
    return true
  } catch {
    return false
  } finally {
    await nc?.close().catch(() => {})
  }
}

function skipOrFail (t: Test, message: string): void {
  if (process.env.CI === 'true') {
    t.fail(`${message} (CI=true makes this a failure)`)
    return
  }
  process.stderr.write(`\n*** SKIPPED: ${message} ***\n\n`)
  t.test('the NATS broker suite', { skip: message }, () => {})
}

/**
 * Runs `fn` only when NATS (with JetStream) answers. Otherwise the test is skipped with a loud
 * message, or fails when CI=true: CI must never pass a NATS suite that did not run.
 */
export async function withNats (t: Test, fn: () => Promise<void> | void): Promise<void> {
  if (await natsReachable()) {
    await fn()
    return
  }
  skipOrFail(t, `NATS with JetStream is not reachable at ${natsUrl}: the NATS broker tests did not run`)
}

export function natsServerInstalled (): boolean {
  return spawnSync('nats-server', ['--version']).status === 0
}

/** Like withNats, for tests that start their own nats-server. */
export async function withNatsServer (t: Test, fn: () => Promise<void> | void): Promise<void> {
  if (natsServerInstalled()) {
    await fn()
    return
  }
  skipOrFail(t, 'nats-server is not installed: the NATS fault tests did not run')
}

/** A prefix no other test shares. */
export function uniquePrefix (): string {
  return `test-${randomBytes(6).toString('hex')}`
}

/** Deletes the stream and the buckets of `prefix` (tests tidy up after themselves). */
export async function deleteStreams (prefix: string, url = natsUrl): Promise<void> {
  const names = new NatsNames(prefix)
  let nc: NatsConnection | undefined
  try {
    nc = await connect({ servers: url, timeout: 1000, reconnect: false })
    const jsm = await jetstreamManager(nc, { timeout: 2000 })
    for (const stream of [names.historyStream, `KV_${names.nodesBucket}`, `KV_${names.presenceBucket}`]) {
      await jsm.streams.delete(stream).catch(() => {})
    }
  } catch {
    // the private server may be gone already
  } finally {
    await nc?.close().catch(() => {})
  }
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A nats-server of the test's own, with JetStream, on a free port and a store in a temporary folder. */
export class NatsServer {
  private child: ChildProcess | undefined
  readonly url: string
  private constructor (readonly port: number, private readonly dir: string, private readonly config: string[] = []) {
    this.url = `nats://127.0.0.1:${port}`
  }

  /** `maxPayload`: the server's `max_payload` (bytes), instead of its default 1 MB */
  static async start (t: Test, { maxPayload }: { maxPayload?: number } = {}): Promise<NatsServer> {
    const dir = mkdtempSync(join(tmpdir(), 'fc-nats-'))
    const config: string[] = []
    if (maxPayload !== undefined) {
      writeFileSync(join(dir, 'server.conf'), `max_payload: ${maxPayload}\n`)
      config.push('-c', join(dir, 'server.conf'))
    }
    const server = new NatsServer(await freePort(), join(dir, 'store'), config)
    mkdirSync(server.dir)
    t.teardown(async () => {
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    })
    await server.run()
    return server
  }

  /** (Re)starts it on the same port and store. */
  async run (): Promise<void> {
    const child = this.child = spawn('nats-server', [...this.config, '-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.dir], { stdio: 'ignore' })
    child.on('error', () => {})
    const until = Date.now() + 10_000
    while (!await natsReachable(this.url, 1000)) {
      if (Date.now() > until) throw new Error(`nats-server on ${this.port} did not start`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** SIGSTOP, and waits until the kernel shows it stopped (so nothing sent after this reaches it). */
  pause (): void {
    const child = this.child
    if (child?.pid === undefined) return
    child.kill('SIGSTOP')
    const until = Date.now() + 2000
    while (Date.now() < until) {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return
    }
  }

  /** Deletes its store (while it is stopped): it starts again without streams or buckets. */
  wipe (): void {
    rmSync(this.dir, { recursive: true, force: true })
  }

  resume (): void {
    this.child?.kill('SIGCONT')
  }

  /** Kills it at once (no clean shutdown) and waits until it is gone. */
  async kill (): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    await exited
  }

  async stop (): Promise<void> {
    await this.kill()
    this.child = undefined
  }
}

/** A node in this process on NATS; closed at teardown. */
export async function startNatsNode (
  t: Test,
  broker: NatsBrokerOptions,
  setup?: (app: FastifyInstance) => void | Promise<void>,
  options: ChannelsOptions = {},
  fastifyOptions: FastifyServerOptions = {}
): Promise<TestApp> {
  const node = await startApp({ broker: natsBroker({ servers: natsUrl, ...broker }), heartbeat: false, rateLimit: false, ...options }, setup, fastifyOptions)
  t.teardown(() => node.app.close())
  return node
}

const fixture = fileURLToPath(new URL('./fixtures/node.ts', import.meta.url))
const tsImport = import.meta.resolve('@tapjs/typescript/import')

/** A NATS node in a child process (fixtures/node.ts), to kill or freeze; killed at teardown. */
export class ChildNatsNode {
  private constructor (readonly child: ChildProcess, readonly port: number) {}

  get url (): string {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  static async start (t: Test, env: { PREFIX: string, NATS_URL?: string, NODE_TTL?: string, COMMAND_TIMEOUT?: string, LOG_LEVEL?: string }, nodeFlags: string[] = []): Promise<ChildNatsNode> {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, NATS_URL: natsUrl, ...env }
    delete childEnv.NODE_OPTIONS
    const child = spawn(process.execPath, [...nodeFlags, `--import=${tsImport}`, fixture], { env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] })
    const node = new ChildNatsNode(child, await listeningPort(child, 'NATS fixture node'))
    t.teardown(() => node.kill('SIGKILL'))
    return node
  }

  async post (path: string, data: unknown, event?: string): Promise<{ ok: boolean, code?: string }> {
    return await this.postJson(path, { data, event }) as { ok: boolean, code?: string }
  }

  async presence (channel: string): Promise<Record<string, Array<{ ref: string, meta: unknown }>>> {
    const response = await fetch(`http://127.0.0.1:${this.port}/presence/${encodeURIComponent(channel)}`)
    return await response.json() as Record<string, Array<{ ref: string, meta: unknown }>>
  }

  async postJson (path: string, body: unknown): Promise<unknown> {
    const response = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body)
    })
    return await response.json()
  }

  pause (): void {
    this.child.kill('SIGSTOP')
  }

  resume (): void {
    this.child.kill('SIGCONT')
  }

  async kill (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGCONT')
      this.child.kill(signal)
    }
    await exited(this.child)
  }
}
