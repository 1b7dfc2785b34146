/**
 * A frame that carries an `id` and waits for the server's answer carrying the same `id`
 * (phoenix.js's Push): a request awaiting its ack, an unsubscribe awaiting `unsubscribed`.
 */
import type { AckFrame, ErrorFrame, SubscribedFrame, UnsubscribedFrame } from '../schemas/protocol.js'
import { ChannelsClientError, ClientErrorCodes } from './errors.js'

/** Every server frame that answers an `id`. */
export type ReplyFrame = AckFrame | ErrorFrame | SubscribedFrame | UnsubscribedFrame

/** Anything waiting for an answer, as the client's table of ids sees it. */
export interface Pending {
  answer (frame: ReplyFrame): void
  /** the connection dropped (`final`: for good); returns true to keep waiting (not sent yet) */
  dropped (final: boolean): boolean
}

/** The error a refused frame rejects with: the error frame's code, message and issues. */
export function errorFromFrame (frame: ErrorFrame, channel?: string): ChannelsClientError {
  return new ChannelsClientError(frame.code, frame.message, { errors: frame.errors, channel })
}

export function disconnected (what: string, channel?: string): ChannelsClientError {
  return new ChannelsClientError(ClientErrorCodes.DISCONNECTED, `the connection dropped before ${what} was answered`, { channel })
}

/**
 * What a connection drop after the frame was written means for the caller: `'reject'` with
 * DISCONNECTED (a request may or may not have run), or `'resolve'` with `undefined` (an
 * unsubscribe: the next session does not hold the channel anyway). Only a push whose value
 * may be `undefined` can resolve.
 */
export type WhenDropped<T> = undefined extends T ? 'reject' | 'resolve' : 'reject'

export interface PushOptions<T> {
  /** ms before it rejects with TIMEOUT */
  timeout: number
  /** turns the answer into the promise's value (an error frame always rejects) */
  value: (frame: Exclude<ReplyFrame, ErrorFrame>) => T
  /** what was asked, for error messages */
  what: string
  /** called when it settles in any way (the owner forgets the id) */
  done: () => void
  /** a drop after it was sent: reject DISCONNECTED, or resolve (see WhenDropped) */
  whenDropped: WhenDropped<T>
  channel?: string
}

export class Push<T> implements Pending {
  /** true once written to a connection (a drop then rejects with DISCONNECTED) */
  sent = false
  readonly promise: Promise<T>
  private resolve!: (value: T) => void
  private reject!: (error: Error) => void
  private readonly timer: ReturnType<typeof setTimeout>
  private settled = false

  constructor (readonly id: number, private readonly options: PushOptions<T>) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
    this.timer = setTimeout(() => {
      this.fail(new ChannelsClientError(ClientErrorCodes.TIMEOUT, `${options.what} was not answered within ${options.timeout} ms`, { channel: options.channel }))
    }, options.timeout)
  }

  answer (frame: ReplyFrame): void {
    if (this.settled) return
    if (frame.type === 'error') return this.fail(errorFromFrame(frame, this.options.channel))
    this.settle()
    this.resolve(this.options.value(frame))
  }

  dropped (final: boolean): boolean {
    if (this.settled) return false
    if (!this.sent && !final) return true // still queued: it goes out on the next connection
    if (this.sent && this.options.whenDropped === 'resolve') {
      this.settle()
      this.resolve(undefined as T) // WhenDropped allows 'resolve' only where undefined is a T
    } else {
      this.fail(disconnected(this.options.what, this.options.channel))
    }
    return false
  }

  fail (error: Error): void {
    if (this.settled) return
    this.settle()
    this.reject(error)
  }

  private settle (): void {
    this.settled = true
    clearTimeout(this.timer)
    this.options.done()
  }
}
