/**
 * The subscription to one channel (phoenix.js's Channel): its join state, the first join a
 * caller awaits, and the rejoin after every reconnect.
 *
 *   waiting ──send──▶ joining ──subscribed──▶ joined ──reconnect──▶ rejoining ──subscribed──▶ joined
 *   (offline)           │ error/drop: gone                           │ error: gone (reported)
 *                                                                    │ drop: joined, retried next time
 */
import { encodeFrame } from '../schemas/wire.js'
import { ChannelsClientError, ClientErrorCodes } from './errors.js'
import { disconnected, errorFromFrame, type Pending, type ReplyFrame } from './push.js'

/** What a subscription needs of the client. */
export interface ChannelHost {
  /** ms a rejoin waits for its answer before it is sent again */
  readonly timeout: number
  nextId (): number
  /** writes on the open connection; false when there is none */
  write (text: string): boolean
  /** routes the answer carrying `id` to `pending` */
  expect (id: number, pending: Pending): void
  forget (id: number): void
  /** this subscription is over: take it out of the client's table */
  remove (subscription: Subscription): void
  /** a rejoin was refused: nobody awaits it, so the client reports it */
  refused (error: ChannelsClientError): void
}

export type JoinState = 'waiting' | 'joining' | 'joined' | 'rejoining'

interface Caller {
  resolve: () => void
  reject: (error: Error) => void
  deadline: ReturnType<typeof setTimeout>
}

export class Subscription {
  /** id of the subscribe frame on the wire, if one is */
  private inFlight: number | undefined
  /** a rejoin nobody awaits is retried when it is not answered in time (a rate limit may drop it) */
  private retry: ReturnType<typeof setTimeout> | undefined
  private caller: Caller | undefined
  /** the first join's promise, shared by every `subscribe()` call made while it is pending */
  promise: Promise<void> | undefined
  /** unsubscribe() was called: this subscription is out of the client's table */
  private cancelled = false

  constructor (readonly channel: string, private readonly host: ChannelHost, public state: JoinState) {}

  /** The promise `client.subscribe()` returns: settles with the first join, or after `timeout` ms. */
  wait (timeout: number): Promise<void> {
    this.promise = new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => this.timedOut(timeout), timeout)
      this.caller = { resolve, reject, deadline }
    })
    return this.promise
  }

  /** Sends the subscribe frame on the current connection, unless one is already on it. */
  join (): void {
    if (this.inFlight !== undefined) return
    const id = this.host.nextId()
    if (!this.host.write(encodeFrame({ type: 'subscribe', channel: this.channel, id }))) return
    this.inFlight = id
    this.state = this.state === 'joined' || this.state === 'rejoining' ? 'rejoining' : 'joining'
    if (this.state === 'rejoining') {
      this.retry = setTimeout(() => {
        this.retry = undefined
        if (this.inFlight !== id) return
        this.host.forget(id)
        this.inFlight = undefined
        this.join() // a late answer to the old id is ignored; subscribing twice is harmless
      }, this.host.timeout)
    }
    this.host.expect(id, {
      answer: (frame) => this.answered(frame),
      dropped: (final) => {
        this.lost(final)
        return false
      }
    })
  }

  /** unsubscribe() was called: the client forgets this subscription now. */
  cancel (): void {
    this.host.remove(this)
    this.cancelled = true
    this.stopRetry()
    // A first join on the wire still settles its caller when answered; one never sent cannot.
    if (this.state === 'joining') return
    this.settle(new ChannelsClientError(ClientErrorCodes.CANCELLED,
      `unsubscribed from "${this.channel}" before the subscription was sent`, { channel: this.channel }))
  }

  /** The client closed for good. */
  close (): void {
    this.stopRetry()
    this.settle(disconnected(`the subscription to "${this.channel}"`, this.channel))
  }

  private answered (frame: ReplyFrame): void {
    this.landed()
    if (frame.type === 'error') {
      const error = errorFromFrame(frame, this.channel)
      this.host.remove(this)
      if (this.caller !== undefined) this.settle(error)
      else if (!this.cancelled) this.host.refused(error)
      return
    }
    if (!this.cancelled) this.state = 'joined'
    this.settle()
  }

  private lost (final: boolean): void {
    this.landed()
    if (final || this.state === 'joining') {
      // A first join cut off: whether it took is unknown, and the new session would not hold it.
      this.host.remove(this)
      this.settle(disconnected(`the subscription to "${this.channel}"`, this.channel))
    } else if (this.state === 'rejoining') {
      this.state = 'joined' // still wanted: retried after the next reconnect
    }
  }

  private timedOut (timeout: number): void {
    this.host.remove(this)
    if (this.inFlight !== undefined) {
      // Undo a join that may still be answered, so the server does not keep a channel we dropped.
      this.host.forget(this.inFlight)
      this.inFlight = undefined
      const id = this.host.nextId()
      if (this.host.write(encodeFrame({ type: 'unsubscribe', channel: this.channel, id }))) {
        this.host.expect(id, { answer: () => {}, dropped: () => false })
      }
    }
    this.settle(new ChannelsClientError(ClientErrorCodes.TIMEOUT,
      `the subscription to "${this.channel}" was not answered within ${timeout} ms`, { channel: this.channel }))
  }

  /** The frame on the wire was answered or lost. */
  private landed (): void {
    this.inFlight = undefined
    this.stopRetry()
  }

  private stopRetry (): void {
    if (this.retry !== undefined) clearTimeout(this.retry)
    this.retry = undefined
  }

  /** Settles the caller's promise, once. */
  private settle (error?: Error): void {
    const caller = this.caller
    if (caller === undefined) return
    this.caller = undefined
    clearTimeout(caller.deadline)
    if (error === undefined) caller.resolve()
    else caller.reject(error)
  }
}
