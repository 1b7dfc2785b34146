/**
 * The subscription to one channel (phoenix.js's Channel): its join state, the first join a
 * caller awaits, and the rejoin after every reconnect.
 *
 *   waiting ──send──▶ joining ──subscribed──▶ joined ──reconnect──▶ rejoining ──subscribed──▶ joined
 *   (offline)           │ error/drop: gone                           │ error: gone (reported)
 *                                                                    │ drop: joined, retried next time
 *
 * On a history channel it also keeps its position: the stream's epoch and the last offset it
 * got, and the session that got it. A rejoin asks for what it missed (`since`); a first join
 * may ask for a backlog (`last`). When the stream restarts under a new epoch while the channel
 * is held (its history was lost: a Redis restart, a flush, an expiry), the server pushes
 * `subscribed` without an id and with `recovered: false` before the first publication of the
 * new epoch: the position starts over, and the first publication that follows is taken
 * whatever its offset (nothing of the new epoch was seen yet, so nothing is a repeat).
 */
import { encodeFrame } from '../schemas/wire.js'
import { deltaText, parseDeltaText } from '../schemas/delta.js'
import type { ServerMessageFrame, SubscribedFrame, SubscribeFrame } from '../schemas/protocol.js'
import { applyDelta } from './delta.js'
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
  /** a `subscribed` arrived (first join or rejoin): the client tells its listeners */
  subscribed (channel: string, info: { recovered?: boolean, epoch?: string, offset?: number }): void
  /** the current session id */
  readonly sessionId: string | undefined
}

/** What the first join asks for. */
export interface JoinOptions {
  /** history channels: the last n stored publications after `subscribed` */
  last?: number
  /** history channels with deltas: ask for them (every join, rejoins too) */
  delta?: boolean
}

/** Where this subscription is in its history channel's stream. */
interface Position {
  epoch: string
  offset: number
  /** the session that got the publications up to `offset` */
  session: string | undefined
  /**
   * the stream restarted under `epoch` and no publication of it arrived yet: the next one is
   * taken whatever its offset, and the position goes on from it
   */
  restarted?: true
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

  /** history channels only: set by the first `subscribed` carrying an epoch */
  private position: Position | undefined
  /** the backlog the subscribe frame on the wire asked for */
  private askedLast = 0
  /** delta subscriptions: the delta text of the last publication, the base of the next delta */
  private base: { offset: number, text: string } | undefined

  constructor (
    readonly channel: string,
    private readonly host: ChannelHost,
    public state: JoinState,
    private readonly options: JoinOptions = {}
  ) {}

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
    if (!this.host.write(encodeFrame(this.subscribeFrame(id)))) return
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

  /** A rejoin asks for what was missed; a join without a position for the backlog asked for. */
  private subscribeFrame (id: number): SubscribeFrame {
    const frame: SubscribeFrame = { type: 'subscribe', channel: this.channel, id }
    const { position } = this
    if (position !== undefined) {
      frame.since = { epoch: position.epoch, offset: position.offset }
      if (position.session !== undefined) frame.since.session = position.session
    } else if (this.options.last !== undefined) {
      frame.last = this.options.last
    }
    this.askedLast = frame.last ?? 0
    if (this.options.delta === true) frame.delta = true
    return frame
  }

  /**
   * A `subscribed` frame: the stream's position now, and the listeners are told. `asked` is
   * the backlog the frame it answers asked for (0 for one the server pushed without an id).
   */
  confirmed (frame: SubscribedFrame, asked = 0): void {
    const { epoch, offset, recovered } = frame
    this.base = undefined // what follows a `subscribed` comes whole
    if (epoch !== undefined && offset !== undefined) {
      if (frame.id === undefined && recovered === false) {
        // The stream restarted under a new epoch while the channel was held.
        this.position = { epoch, offset, session: undefined, restarted: true }
      } else if (recovered !== true || this.position === undefined) {
        // Recovered: the replay that follows moves the offset on from where we were. A backlog
        // that follows has offsets above top - last.
        this.position = { epoch, offset: Math.max(0, offset - (recovered === undefined ? asked : 0)), session: undefined }
      }
      this.position.session = this.host.sessionId
    }
    const info: { recovered?: boolean, epoch?: string, offset?: number } = {}
    if (recovered !== undefined) info.recovered = recovered
    if (epoch !== undefined) info.epoch = epoch
    if (offset !== undefined) info.offset = offset
    this.host.subscribed(this.channel, info)
  }

  /**
   * A publication of this channel arrived: false when it is to be dropped (seen already, or a
   * delta that cannot be applied: then reported and resynced). A delta is replaced by the
   * `data` it rebuilds, so listeners get whole data.
   */
  publication (frame: ServerMessageFrame & { offset: number }): boolean {
    const { offset, delta } = frame
    const { position } = this
    if (position !== undefined && position.restarted !== true && offset <= position.offset) return false
    let text: string | undefined
    if (delta !== undefined) {
      const { base } = this
      try {
        if (base === undefined || base.offset !== offset - 1) throw new Error(`no base at offset ${offset - 1}`)
        text = applyDelta(base.text, delta)
        frame.data = parseDeltaText(text)
        delete frame.delta
      } catch (err) {
        this.resync(offset, err)
        return false
      }
    } else if (this.options.delta === true) {
      text = deltaText(frame.data)
    }
    this.base = text === undefined ? undefined : { offset, text }
    return this.seen(offset)
  }

  /**
   * A delta could not be applied (a buggy or hostile server): report it, and join again from
   * the last publication rebuilt (`since`), so what was missed comes whole.
   */
  private resync (offset: number, err: unknown): void {
    this.base = undefined
    this.host.refused(new ChannelsClientError('BAD_FRAME',
      `the delta of offset ${offset} on "${this.channel}" could not be applied (${(err as Error).message}); resubscribing`, { channel: this.channel }))
    if (this.state !== 'joined' || this.inFlight !== undefined) return // a join is on its way already
    const id = this.host.nextId()
    if (!this.host.write(encodeFrame({ type: 'unsubscribe', channel: this.channel, id }))) return
    this.host.expect(id, { answer: () => {}, dropped: () => false })
    this.join()
  }

  /** A publication with `offset` arrived: false when it was seen already (drop it). */
  seen (offset: number): boolean {
    const { position } = this
    if (position === undefined) return true
    if (position.restarted === true) delete position.restarted
    else if (offset <= position.offset) return false
    position.offset = offset
    return true
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
    if (frame.type === 'subscribed') this.confirmed(frame, this.askedLast)
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
