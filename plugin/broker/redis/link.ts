/**
 * One ioredis connection as the broker uses it: every call gives up after `timeout` ms, a
 * connection that stops answering is reset (so nothing keeps piling up behind it), and what
 * cannot be handed over at once is refused instead of queued.
 *
 * ioredis' own `commandTimeout` only rejects the promise: the command stays queued in the
 * client and in the socket's write buffer, and runs whenever Redis wakes up. Here a timeout
 * destroys the socket instead: ioredis then fails every command still waiting on it, the
 * buffers are freed, and it reconnects by itself (see `clientOptions`).
 *
 * On a Redis Cluster `client` is an ioredis `Cluster` (it has the same commands; the broker
 * types it as `Redis`): a stall is reported but the client is left to mend itself (see
 * `resetCluster`), and each call that gets no answer in time is rejected on its own.
 */
import { performance } from 'node:perf_hooks'
import type { Cluster, Redis } from 'ioredis'
import { asCluster } from './client.js'

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

/** One call on its way: when it was made, and whether it has settled (or was given up). */
interface Call {
  sentAt: number
  done: boolean
  /** on a cluster: rejects the caller's promise before the command itself settles */
  giveUp?: (err: Error) => void
}

export class NoAnswerError extends Error {
  constructor (timeout: number, name: string, cause?: unknown) {
    super(`redis did not answer within ${timeout} ms on ${name}`, { cause })
  }
}

export class Link {
  private pendingBytes = 0
  /**
   * The calls not known to have settled, oldest first. A connection answers in order, so the
   * oldest unsettled call tells whether it stopped answering: one timer per connection watches
   * it (a timer per call would cost every publish).
   */
  private calls: Call[] = []
  /** calls before this index have settled and are forgotten (compacted now and then, not shifted one by one) */
  private head = 0
  private watchdog: NodeJS.Timeout | undefined
  /** when the connection was last reset for not answering: calls made before it failed for that */
  private stalledAt = -Infinity
  /** when the latest TCP connection was made (read while the client waits for the handshake answer) */
  private connectedAt: number | undefined
  /** the client as a `Cluster` when it is one (calls then time out one by one) */
  private readonly cluster: Cluster | undefined

  /**
   * @param onStall told once per reset, with the reason, before the connection is cut
   */
  constructor (
    readonly client: Redis,
    readonly timeout: number,
    private readonly onStall: (err: Error) => void
  ) {
    this.cluster = asCluster(client)
    client.on('connect', () => { this.connectedAt = Date.now() })
  }

  get name (): string {
    const { cluster } = this
    return (cluster === undefined ? this.client.options.connectionName : cluster.options.redisOptions?.connectionName) ?? 'redis'
  }

  get ready (): boolean {
    return this.client.status === 'ready'
  }

  /**
   * Runs `command` on this connection. `bytes` (a payload's size) counts against
   * `maxPendingBytes` until the call settles. Rejects at once when the connection is not ready
   * or the backlog is full (nothing is ever queued for later), and after about `timeout` ms
   * without an answer, when the connection is reset.
   */
  async run<T> (command: (client: Redis) => Promise<T>, bytes = 0): Promise<T> {
    if (this.client.status !== 'ready') throw new Error(`redis connection ${this.name} is not ready (${this.client.status})`)
    // (never more than maxPendingBytes are pending: a call without bytes always fits)
    if (this.pendingBytes + bytes > maxPendingBytes) throw new BacklogFullError()
    const call: Call = { sentAt: performance.now(), done: false }
    this.forgetSettled()
    this.calls.push(call)
    this.pendingBytes += bytes
    this.watch()
    let sent: Promise<T>
    try {
      sent = command(this.client)
    } catch (err) {
      sent = Promise.reject(err)
    }
    // the bytes count until the command itself settles, even when its caller was given up on
    const settled = sent.finally(() => {
      call.done = true
      this.pendingBytes -= bytes
    })
    try {
      if (this.cluster === undefined) return await settled
      return await new Promise<T>((resolve, reject) => {
        call.giveUp = reject
        settled.then(resolve, reject)
      })
    } catch (err) {
      if (err instanceof NoAnswerError) throw err
      if (this.stalledAt >= call.sentAt) throw new NoAnswerError(this.timeout, this.name, err)
      throw err
    }
  }

  /**
   * A connection made but still waiting for Redis' handshake answer after the timeout is reset
   * too (a Redis that hangs accepts connections but never answers); called from the node's tick.
   */
  checkHandshake (): void {
    // the status is 'connect' only between a connection's 'connect' event and its handshake answer
    if (this.client.status === 'connect' && this.connectedAt !== undefined && Date.now() - this.connectedAt > this.timeout) {
      this.reset(new Error(`redis did not answer the handshake on ${this.name} within ${this.timeout} ms`))
    }
  }

  /** Drops settled calls from the front: under load the list stays as short as what is really pending. */
  private forgetSettled (): void {
    const { calls } = this
    while (this.head < calls.length && calls[this.head].done) this.head++
    if (this.head === calls.length) {
      calls.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > calls.length) {
      calls.splice(0, this.head)
      this.head = 0
    }
  }

  /** Arms the watchdog for the oldest unsettled call, if it is not armed. */
  private watch (): void {
    if (this.watchdog !== undefined) return
    this.forgetSettled()
    if (this.calls.length === 0) return
    const oldest = this.calls[this.head]
    const wait = Math.max(oldest.sentAt + this.timeout - performance.now(), 0)
    this.watchdog = setTimeout(() => {
      // Decided after the poll phase, not in this timer: when this process itself was frozen
      // (a long GC pause, a stopped VM), a reply that came in meanwhile is read first and wins.
      setImmediate(() => {
        this.watchdog = undefined
        if (!oldest.done && performance.now() - oldest.sentAt >= this.timeout) {
          this.reset(new NoAnswerError(this.timeout, this.name))
        }
        this.watch()
      })
    }, wait)
    this.watchdog.unref()
  }

  /**
   * On a cluster: the calls that got no answer within the timeout, now forgotten by the
   * watchdog (the others may be on shards that answer).
   */
  private takeOverdue (): Call[] {
    const now = performance.now()
    const overdue: Call[] = []
    for (let i = this.head; i < this.calls.length; i++) {
      const call = this.calls[i]
      if (!call.done && now - call.sentAt >= this.timeout) {
        call.done = true
        overdue.push(call)
      }
    }
    return overdue
  }

  /** Cuts the connection: ioredis fails what waits on it and reconnects. */
  private reset (reason: Error): void {
    if (this.cluster !== undefined) {
      this.resetCluster(this.cluster, reason)
      return
    }
    // every call waits on the one connection, cut now: the watchdog forgets them all
    this.calls = []
    this.head = 0
    const stream = this.client.stream
    if (stream === undefined || stream.destroyed) return
    this.stalledAt = performance.now()
    this.onStall(reason)
    try {
      // RST: the kernel drops what it still holds for Redis instead of delivering it later
      stream.resetAndDestroy()
    } catch {
      // only a TCP handle can be reset: a TLS connection (rediss://) or a Unix socket (`path`)
      // throws ERR_INVALID_HANDLE_TYPE, and is destroyed the plain way
      stream.destroy()
    }
  }

  /**
   * A cluster client is not cut: it has a connection per shard and mends them itself (a shard
   * that stops answering fails over, and ioredis follows the new slot map), and cutting it
   * while a failover runs would only start its reconnection over and over. The stall still
   * begins an outage, the overdue calls are rejected now (their commands stay queued for the
   * hung shard: a publication or a send then reaches it past its deadline and is refused), and
   * what waits on a hung shard stays bounded by `maxPendingBytes`.
   */
  private resetCluster (cluster: Cluster, reason: Error): void {
    for (const call of this.takeOverdue()) call.giveUp?.(reason)
    if (cluster.status !== 'ready' && cluster.status !== 'connect') return
    this.stalledAt = performance.now()
    this.onStall(reason)
  }
}
