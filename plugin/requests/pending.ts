/**
 * Server → client requests on one connection (`socket.ask`): numbering (`rid`, the server's
 * own, apart from the client's frame ids), the requests waiting for their `reply`, their
 * timers, and how each one settles: the client's data, a ClientRequestError with the client's
 * code and message, REQUEST_TIMEOUT, or DISCONNECTED when the connection closes first.
 *
 * Bounded: at most `maxPendingRequests` wait on one socket; past it `ask` rejects with
 * FST_CHANNELS_TOO_MANY_REQUESTS at once, so a client that never answers cannot make a
 * socket hold an unbounded number of timers and promises. A reply settles its request once:
 * a second reply, one with an unknown `rid` or one that comes after the timeout is ignored.
 */
import { encodeFrame } from '../../schemas/wire.js'
import type { ReplyFrame } from '../../schemas/protocol.js'
import {
  ClientRequestError, DisconnectedError, InvalidArgumentError, RequestTimeoutError, TooManyRequestsError, UnserializableDataError
} from '../errors.js'
import type { AskOptions } from '../types.js'

/** `socket.ask`'s timeout when none is given: 5 s */
export const defaultAskTimeout = 5000
/** requests one socket may have waiting for a reply at once */
export const maxPendingRequests = 1000
/** longest timeout a request may have (setTimeout's own limit, about 24.8 days) */
const maxTimeout = 2 ** 31 - 1

export type { AskOptions }

interface Waiting {
  event: string
  resolve (value: unknown): void
  reject (error: Error): void
  timer: NodeJS.Timeout
}

/** The checks of `ask`'s arguments, shared by `socket.ask` and `fastify.channels.ask`. */
export function askTimeout (event: unknown, options: AskOptions | undefined): number {
  if (typeof event !== 'string' || event.length === 0 || event.length > 200) {
    throw new InvalidArgumentError('ask: the event must be a string of 1 to 200 characters')
  }
  const timeout = options?.timeout ?? defaultAskTimeout
  if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout < 1 || timeout > maxTimeout) {
    throw new InvalidArgumentError(`ask: timeout must be a positive integer of ms (at most ${maxTimeout}), got ${String(timeout)}`)
  }
  return timeout
}

/** What is wrong with a well-formed `reply` frame (the BAD_FRAME message), if anything. */
export function replyProblem (frame: ReplyFrame): string | undefined {
  return frame.data !== undefined && frame.error !== undefined ? 'a reply carries data or error, not both' : undefined
}

export class PendingRequests {
  private readonly waiting = new Map<number, Waiting>()
  private lastRid = 0
  private closed = false

  /** `send` writes the request frame (false when the socket cannot take it any more). */
  constructor (private readonly send: (frame: string) => boolean) {}

  get size (): number {
    return this.waiting.size
  }

  ask (event: unknown, data: unknown, options?: AskOptions): Promise<unknown> {
    let timeout: number
    try {
      timeout = askTimeout(event, options)
    } catch (err) {
      return Promise.reject(err)
    }
    const name = event as string
    if (this.closed) return Promise.reject(new DisconnectedError(name))
    if (this.waiting.size >= maxPendingRequests) return Promise.reject(new TooManyRequestsError(maxPendingRequests))
    const rid = this.lastRid = this.lastRid >= Number.MAX_SAFE_INTEGER ? 1 : this.lastRid + 1
    let frame: string
    try {
      frame = encodeFrame({ type: 'request', rid, event: name, data })
    } catch (err) {
      return Promise.reject(new UnserializableDataError((err as Error).message))
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(rid)
        reject(new RequestTimeoutError(name, timeout))
      }, timeout)
      this.waiting.set(rid, { event: name, resolve, reject, timer })
      if (!this.send(frame)) this.settle(rid, new DisconnectedError(name))
    })
  }

  /**
   * A `reply` frame: settles its request once. False for a reply that answers nothing (an
   * unknown or already answered `rid`): ignored, as the protocol says. A reply with both
   * `data` and `error` is refused by `replyProblem` before it gets here.
   */
  reply (frame: ReplyFrame): boolean {
    const { rid, error } = frame
    if (error !== undefined) return this.settle(rid, new ClientRequestError(error.code, error.message))
    return this.settle(rid, undefined, frame.data)
  }

  private settle (rid: number, error: Error | undefined, data?: unknown): boolean {
    const waiting = this.waiting.get(rid)
    if (waiting === undefined) return false
    this.waiting.delete(rid)
    clearTimeout(waiting.timer)
    if (error !== undefined) waiting.reject(error)
    else waiting.resolve(data)
    return true
  }

  /** The connection closed: every waiting request rejects with DISCONNECTED, and later asks too. */
  close (): void {
    this.closed = true
    for (const [rid, waiting] of [...this.waiting]) {
      this.waiting.delete(rid)
      clearTimeout(waiting.timer)
      waiting.reject(new DisconnectedError(waiting.event))
    }
  }
}
