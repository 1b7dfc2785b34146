/**
 * The subscription to one channel (phoenix.js's Channel): its join state, the first join a
 * caller awaits, and the rejoin after every reconnect.
 *
 *   waiting ──send──▶ joining ──subscribed──▶ joined ──reconnect──▶ rejoining ──subscribed──▶ joined
 *   (offline)           │ error/drop: gone                           │ error: gone (reported)
 *                                                                    │ drop: joined, retried next time
 */
import { encodeFrame } from '../schemas/codec.js'
import { ChannelsClientError, ClientErrorCodes } from './errors.js'
import { disconnected, errorFromFrame, type Pending, type ReplyFrame } from './push.js'

/** What a subscription needs of the client. */
export interface ChannelHost {
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
  private caller: Caller | undefined
  /** the first join's promise, shared by every `subscribe()` call made while it is pending */
  promise: Promise<void> | undefined
  /** unsubscribe() was called while the first join was on the wire */
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
    if (this.state === 'joining') {
      this.cancelled = true // its answer still settles the caller
      return
    }
    this.settle(new ChannelsClientError(ClientErrorCodes.CANCELLED,
      `unsubscribed from "${this.channel}" before the subscription was sent`, { channel: this.channel }))
  }

  /** The client closed for good. */
  close (): void {
    this.settle(disconnected(`the subscription to "${this.channel}"`, this.channel))
  }

  private answered (frame: ReplyFrame): void {
    this.inFlight = undefined
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
    this.inFlight = undefined
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
