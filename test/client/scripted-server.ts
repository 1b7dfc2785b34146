/**
 * A scripted server for the client tests: a bare `ws` server on loopback that answers nothing
 * by itself. The test reads each frame the client sends and writes back exactly the frames it
 * wants (a late answer, an unsolicited `subscribed`, a frame the client cannot decode), which
 * the real plugin would never do on cue. Every wait has a deadline.
 */
import type { Socket } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'

export type Frame = Record<string, unknown> & { type: string }

interface Teardown { teardown (fn: () => unknown): void }

async function waitFor<T> (find: () => T | undefined, wake: Set<() => void>, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = find()
    if (found !== undefined) return found
    const left = deadline - Date.now()
    if (left <= 0) throw new Error(`${what()}: not within ${timeoutMs} ms`)
    await new Promise<void>((resolve) => {
      const done = (): void => { clearTimeout(timer); wake.delete(done); resolve() }
      const timer = setTimeout(done, left)
      wake.add(done)
    })
  }
}

/** One connection of the client, as the server sees it. */
export class ScriptedConnection {
  /** frames from the client not taken by `next()` yet */
  readonly frames: Frame[] = []
  /** every frame the client sent on this connection, in order */
  readonly log: Frame[] = []
  closed = false
  private readonly wake = new Set<() => void>()

  /**
   * @param url the path and query the client connected to
   * @param socket the TCP socket under `ws` (`socket.pause()` stops reading the client's frames)
   */
  constructor (readonly ws: WebSocket, readonly url: string, readonly socket: Socket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame
      this.frames.push(frame)
      this.log.push(frame)
      for (const wake of [...this.wake]) wake()
    })
    ws.on('close', () => {
      this.closed = true
      for (const wake of [...this.wake]) wake()
    })
  }

  /** Writes a frame (an object as JSON, a string as it is). */
  send (frame: object | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  welcome (sessionId = 's1'): void {
    this.send({ type: 'welcome', sessionId, protocol: 1 })
  }

  /** The next frame from the client of `type` (taken off the queue). */
  async next (type: string, timeoutMs = 3000): Promise<Frame> {
    return await waitFor(() => {
      const index = this.frames.findIndex((frame) => frame.type === type)
      return index === -1 ? undefined : this.frames.splice(index, 1)[0]
    }, this.wake, timeoutMs, () => `no "${type}" frame from the client; got ${JSON.stringify(this.frames)}`)
  }

  /** Resolves once the client closed this connection (or it was closed). */
  async ended (timeoutMs = 3000): Promise<void> {
    await waitFor(() => this.closed ? true : undefined, this.wake, timeoutMs, () => 'the connection did not close')
  }

  close (code?: number, reason?: string): void {
    this.ws.close(code, reason)
  }
}

export class ScriptedServer {
  readonly connections: ScriptedConnection[] = []
  private readonly wake = new Set<() => void>()

  private constructor (private readonly wss: WebSocketServer, readonly url: string) {
    wss.on('connection', (ws, request) => {
      this.connections.push(new ScriptedConnection(ws, request.url ?? '', request.socket as Socket))
      for (const wake of [...this.wake]) wake()
    })
  }

  /** Listens on a free loopback port; closed (with every connection) at teardown. */
  static async start (t: Teardown): Promise<ScriptedServer> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    await new Promise((resolve) => wss.once('listening', resolve))
    const { port } = wss.address() as { port: number }
    const server = new ScriptedServer(wss, `ws://127.0.0.1:${port}/ws`)
    t.teardown(() => server.close())
    return server
  }

  /** Connection number `n` (0 first), once the client made it. */
  async connection (n = 0, timeoutMs = 3000): Promise<ScriptedConnection> {
    return await waitFor(() => this.connections[n], this.wake, timeoutMs, () => `no connection #${n} (${this.connections.length} so far)`)
  }

  /** Connection number `n`, welcomed with session id `sessionId`. */
  async welcomed (n = 0, sessionId = `s${n + 1}`): Promise<ScriptedConnection> {
    const connection = await this.connection(n)
    connection.welcome(sessionId)
    return connection
  }

  async close (): Promise<void> {
    for (const client of this.wss.clients) client.terminate()
    await new Promise((resolve) => this.wss.close(resolve))
  }
}
