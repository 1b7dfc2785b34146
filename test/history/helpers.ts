/**
 * Helpers of the history tests: a history node in a child process, a TCP proxy that stands in
 * for a load balancer (it can switch its target, cut every connection, or go silent), and a
 * memory broker whose history reads wait for the test.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { memoryBroker, type Broker } from '../../plugin/index.js'
import { exited, listeningPort, redisUrl } from '../redis/helpers.js'

const fixture = fileURLToPath(new URL('./fixtures/history-node.ts', import.meta.url))
const tsImport = import.meta.resolve('@tapjs/typescript/import')

interface Teardown { teardown (fn: () => unknown): void }

/**
 * The environment of a child-process node: this one's, with only the TypeScript loader (not
 * tap's coverage and mock hooks), and on a cluster only when `env` says so (CI exports
 * REDIS_CLUSTER_URL for every test).
 */
export function childEnv (env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const { REDIS_CLUSTER_URL: _cluster, NODE_OPTIONS: _hooks, ...inherited } = process.env
  return { ...inherited, REDIS_URL: redisUrl, ...env }
}

/** A history node (test/history/fixtures/history-node.ts) in its own process. */
export class HistoryChild {
  private constructor (readonly child: ChildProcess, readonly port: number) {}

  get url (): string {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  static async start (t: Teardown, env: { PREFIX: string, REDIS_URL?: string, REDIS_CLUSTER_URL?: string }): Promise<HistoryChild> {
    const child = spawn(process.execPath, [`--import=${tsImport}`, fixture], { env: childEnv(env), stdio: ['ignore', 'pipe', 'inherit'] })
    const node = new HistoryChild(child, await listeningPort(child, 'history node'))
    t.teardown(() => node.kill('SIGKILL'))
    return node
  }

  async burst (channel: string, count: number, tag: string): Promise<void> {
    const response = await fetch(`http://127.0.0.1:${this.port}/burst/${channel}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ count, tag })
    })
    if (!response.ok) throw new Error(`burst failed with ${response.status}`)
  }

  async kill (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    await exited(this.child)
  }
}

/**
 * A TCP proxy on a loopback port: a stand-in load balancer. New connections go to `target`;
 * `cut()` destroys every open pair (like a dropped network path with RSTs); `silence()` keeps
 * connections open but stops forwarding either way (a NAT that forgot the mapping).
 */
export class TcpProxy {
  target: number
  private silent = false
  private readonly pairs = new Set<[Socket, Socket]>()

  private constructor (private readonly server: Server, target: number) {
    this.target = target
  }

  get port (): number {
    return (this.server.address() as AddressInfo).port
  }

  url (path = '/ws'): string {
    return `ws://127.0.0.1:${this.port}${path}`
  }

  static async start (t: Teardown, target: number): Promise<TcpProxy> {
    const server = createServer()
    const proxy = new TcpProxy(server, target)
    server.on('connection', (client) => proxy.accept(client))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => proxy.close())
    return proxy
  }

  private accept (client: Socket): void {
    const upstream = tcpConnect(this.target, '127.0.0.1')
    const pair: [Socket, Socket] = [client, upstream]
    this.pairs.add(pair)
    const forget = (): void => {
      this.pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('data', (chunk) => { if (!this.silent) upstream.write(chunk) })
    upstream.on('data', (chunk) => { if (!this.silent) client.write(chunk) })
    client.on('close', forget).on('error', forget)
    upstream.on('close', forget).on('error', forget)
  }

  get connections (): number {
    return this.pairs.size
  }

  cut (): void {
    for (const [client, upstream] of [...this.pairs]) {
      client.resetAndDestroy()
      upstream.destroy()
    }
  }

  /** Stops forwarding on every open connection (they stay open); new connections forward again. */
  silence (): void {
    this.silent = true
    const open = [...this.pairs]
    for (const pair of open) {
      for (const socket of pair) socket.removeAllListeners('data').on('data', () => {})
    }
    this.silent = false
  }

  async close (): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/**
 * A memory broker whose history reads answer only once the test calls `open()`: with `reads:
 * 'now'` a read takes the store as it is and holds its answer; with `'at-open'` it reads the
 * store when the gate opens. Reads after that answer at once.
 */
export function gatedHistoryBroker (reads: 'now' | 'at-open'): { broker: Broker, open: () => void } {
  const inner = memoryBroker()
  let open = (): void => {}
  const gate = new Promise<void>((resolve) => { open = resolve })
  return {
    open: () => open(),
    broker: {
      async connect (node) {
        const connection = await inner.connect(node)
        const read = connection.readHistory?.bind(connection)
        if (read === undefined) throw new Error('the memory broker keeps history')
        connection.readHistory = async (channel, query, limits) => {
          if (reads === 'at-open') await gate
          const result = await read(channel, query, limits)
          await gate
          return result
        }
        return connection
      }
    }
  }
}
