/**
 * Test helpers: a real Fastify app with the plugin on a loopback port, and a raw `ws` client
 * that speaks the wire protocol frame by frame (the bundled client has its own tests).
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { once } from 'node:events'
import net, { type AddressInfo } from 'node:net'
import WebSocket from 'ws'
import fastifyChannels, { type ChannelSocket, type ChannelsOptions } from '../../plugin/index.js'
import { within } from './deadline.js'

export interface TestApp {
  app: FastifyInstance
  url: string
  port: number
}

/**
 * Builds an app, lets `setup` add handlers, hooks and routes before the plugin or after it,
 * and listens on 127.0.0.1. The caller closes it (`t.teardown(() => app.close())`).
 */
export async function startApp (
  options: ChannelsOptions = {},
  setup?: (app: FastifyInstance) => void | Promise<void>,
  fastifyOptions: FastifyServerOptions = {}
): Promise<TestApp> {
  const app = Fastify({ logger: false, ...fastifyOptions })
  await app.register(fastifyChannels, { client: false, ...options })
  await setup?.(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, port, url: `ws://127.0.0.1:${port}${options.path ?? '/ws'}` }
}

export type Frame = Record<string, unknown> & { type: string }

export interface CloseInfo {
  code: number
  reason: string
}

/** A raw protocol client: every frame it receives is queued until a test takes it. */
export class TestClient {
  readonly frames: Frame[] = []
  readonly closed: Promise<CloseInfo>
  sessionId = ''
  private waiters: Array<() => void> = []

  private constructor (readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame)
      this.wake()
    })
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() })
        this.wake()
      })
    })
    ws.on('error', () => {}) // a refused or cut-off connection is what some tests want
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  /** Connects and takes the welcome frame. */
  static async connect (url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const client = await TestClient.open(url, options)
    const welcome = await client.next()
    if (welcome.type !== 'welcome') throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`)
    client.sessionId = welcome.sessionId as string
    return client
  }

  /** Opens the socket without waiting for any frame. Rejects with the HTTP status when refused. */
  static open (url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      // A handshake that never completes fails the test here, not at tap's file timeout.
      const ws = new WebSocket(url, { handshakeTimeout: 5000, ...options })
      const client = new TestClient(ws)
      ws.once('open', () => resolve(client))
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`refused with ${res.statusCode}`), { statusCode: res.statusCode }))
        res.resume()
        ws.terminate()
      })
      ws.once('error', reject)
    })
  }

  send (frame: object | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** The next frame matching `match` (removed from the queue); rejects after `timeoutMs`. */
  async next (match: (frame: Frame) => boolean = () => true, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const index = this.frames.findIndex(match)
      if (index !== -1) return this.frames.splice(index, 1)[0]
      const left = deadline - Date.now()
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        throw new Error(`no matching frame within ${timeoutMs} ms; queued: ${JSON.stringify(this.frames)}`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  /** Sends a frame with `id` and returns the answer carrying that id. */
  async request (frame: { id: number, [key: string]: unknown }): Promise<Frame> {
    this.send(frame)
    return await this.next((answer) => answer.id === frame.id)
  }

  async subscribe (channel: string, id = nextId()): Promise<Frame> {
    return await this.request({ type: 'subscribe', channel, id })
  }

  /**
   * Proves that nothing matching `match` arrived: a round trip through the server (a subscribe
   * to a probe channel, answered in order) shows everything sent before it was delivered.
   */
  async expectNothing (match: (frame: Frame) => boolean = () => true): Promise<void> {
    await this.request({ type: 'unsubscribe', channel: 'probe-never-held', id: nextId() })
    const found = this.frames.find(match)
    if (found !== undefined) throw new Error(`unexpected frame ${JSON.stringify(found)}`)
  }

  close (): void {
    this.ws.close()
  }
}

let lastId = 1_000_000
export function nextId (): number {
  return ++lastId
}

/**
 * Resolves when `predicate()` becomes true (polling each event-loop turn); rejects after
 * `timeoutMs` with `expectation`, so a failure names what did not happen.
 */
export async function until (predicate: () => boolean, timeoutMs = 3000, expectation = 'condition not met'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${expectation}: not within ${timeoutMs} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** How many TCP connections the app's HTTP server holds. */
export function openConnections (app: FastifyInstance): Promise<number> {
  return new Promise((resolve, reject) => app.server.getConnections((err, count) => err === null ? resolve(count) : reject(err)))
}

/** Resolves once the server holds `count` TCP connections; rejects with the last count after `timeoutMs`. */
export async function connectionsSettleAt (app: FastifyInstance, count: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const open = await openConnections(app)
    if (open === count) return
    if (Date.now() > deadline) throw new Error(`expected ${count} open connections, still ${open} after ${timeoutMs} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * Sends a WebSocket upgrade to /ws over raw TCP (from a page of `origin`, when given) and
 * returns everything the server wrote, once it hung up: for upgrades the server refuses.
 */
export async function rawUpgrade (port: number, { origin, key = 'dGhlIHNhbXBsZSBub25jZQ==' }: { origin?: string, key?: string } = {}): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  const originHeader = origin === undefined ? '' : `Origin: ${origin}\r\n`
  socket.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${originHeader}Upgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  try {
    await within(once(socket, 'close'), 5000, 'the server answers the upgrade and hangs up')
  } finally {
    socket.destroy()
  }
  return Buffer.concat(chunks).toString()
}

/**
 * Records every server-side socket by session id (through a `connect` handler), for tests that
 * drive a connection from the server side: `sockets.get(client.sessionId)`.
 */
export function recordSockets (app: FastifyInstance): Map<string, ChannelSocket> {
  const sockets = new Map<string, ChannelSocket>()
  app.channels.on('connect', (socket) => { sockets.set(socket.id, socket) })
  return sockets
}

/**
 * Starts an app with the plugin, connects one client and returns it with its server-side
 * socket; the app is closed at the end of the test.
 */
export async function startWithSocket (
  t: { teardown (fn: () => unknown): void },
  options: ChannelsOptions = {},
  setup?: (app: FastifyInstance) => void | Promise<void>
): Promise<TestApp & { client: TestClient, server: ChannelSocket }> {
  let sockets = new Map<string, ChannelSocket>()
  const started = await startApp(options, async (app) => {
    sockets = recordSockets(app)
    await setup?.(app)
  })
  t.teardown(() => started.app.close())
  const client = await TestClient.connect(started.url)
  return { ...started, client, server: sockets.get(client.sessionId) as ChannelSocket }
}

/**
 * Collects every uncaughtException and unhandledRejection of this test process (the listeners
 * come off at teardown), so a test can assert that hostile input broke nothing.
 */
export function captureProcessErrors (t: { teardown (fn: () => unknown): void }): unknown[] {
  const errors: unknown[] = []
  const onError = (err: unknown): void => { errors.push(err) }
  process.on('uncaughtException', onError)
  process.on('unhandledRejection', onError)
  t.teardown(() => {
    process.off('uncaughtException', onError)
    process.off('unhandledRejection', onError)
  })
  return errors
}
