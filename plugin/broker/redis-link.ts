/**
 * One ioredis connection as the broker uses it: every call gives up after `timeout` ms, a
 * connection that stops answering is reset (so nothing keeps piling up behind it), and what
 * cannot be handed over at once is refused instead of queued.
 *
 * ioredis' own `commandTimeout` only rejects the promise: the command stays queued in the
 * client and in the socket's write buffer, and runs whenever Redis wakes up. Here a timeout
 * destroys the socket instead: ioredis then fails every command still waiting on it, the
 * buffers are freed, and it reconnects by itself (see `clientOptions`).
 */
import type { Redis } from 'ioredis'

/**
 * Payload bytes (publications and sends) one connection may have on the way to Redis at once.
 * A Redis that answers drains this in milliseconds; past it, a publish is refused at once (and
 * counted) rather than buffered, so a hung Redis costs a node at most this much memory.
 */
export const maxPendingBytes = 8 * 1024 * 1024

export class BacklogFullError extends Error {
  constructor () {
    super(`more than ${maxPendingBytes} bytes already on the way to redis: not queued`)
  }
}

export class Link {
  private pendingBytes = 0
  /** when the current TCP connection was made, while it waits for Redis' handshake answer */
  private connectedAt: number | undefined

  /**
   * @param onStall told once per reset, with the reason, before the connection is cut
   */
  constructor (
    readonly client: Redis,
    readonly timeout: number,
    private readonly onStall: (err: Error) => void
  ) {
    client.on('connect', () => { this.connectedAt = Date.now() })
    client.on('ready', () => { this.connectedAt = undefined })
    client.on('close', () => { this.connectedAt = undefined })
  }

  get name (): string {
    return this.client.options.connectionName ?? 'redis'
  }

  get ready (): boolean {
    return this.client.status === 'ready'
  }

  /**
   * Runs `command` on this connection within the timeout. `bytes` (a payload's size) counts
   * against `maxPendingBytes` until the call settles. Rejects at once when the connection is
   * not ready or the backlog is full: nothing is ever queued for later.
   */
  async run<T> (command: (client: Redis) => Promise<T>, bytes = 0): Promise<T> {
    if (this.client.status !== 'ready') throw new Error(`redis connection ${this.name} is not ready (${this.client.status})`)
    if (bytes > 0 && this.pendingBytes + bytes > maxPendingBytes) throw new BacklogFullError()
    this.pendingBytes += bytes
    try {
      return await this.within(command(this.client))
    } finally {
      this.pendingBytes -= bytes
    }
  }

  /**
   * A connection made but still waiting for Redis' handshake answer after the timeout is reset
   * too (a Redis that hangs accepts connections but never answers); called from the node's tick.
   */
  checkHandshake (): void {
    if (this.connectedAt !== undefined && Date.now() - this.connectedAt > this.timeout && this.client.status === 'connect') {
      this.reset(new Error(`redis did not answer the handshake on ${this.name} within ${this.timeout} ms`))
    }
  }

  private within<T> (work: Promise<T>): Promise<T> {
    const stream = this.client.stream
    return new Promise((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        // Decided after the poll phase, not in this timer: when this process itself was frozen
        // (a long GC pause, a stopped VM), a reply that came in meanwhile is read first and wins.
        setImmediate(() => {
          if (settled) return
          settled = true
          const err = new Error(`redis did not answer within ${this.timeout} ms on ${this.name}`)
          if (this.client.stream === stream) this.reset(err)
          reject(err)
        })
      }, this.timeout)
      work.then((value) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(value)
      }, (err: unknown) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        reject(err)
      })
    })
  }

  /** Cuts the connection: ioredis fails what waits on it and reconnects. */
  private reset (reason: Error): void {
    const stream = this.client.stream
    if (stream === undefined || stream.destroyed) return
    this.onStall(reason)
    try {
      // RST: the kernel drops what it still holds for Redis instead of delivering it later
      stream.resetAndDestroy()
    } catch {
      stream.destroy()
    }
  }
}
