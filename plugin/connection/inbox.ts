/**
 * The inbound queue of one connection and its backpressure. Frames of one socket are handled
 * one at a time, in order, so a `message` that follows a `subscribe` always sees it. A frame
 * handled synchronously (the common case) needs no queue; while an async handler holds the
 * line, later frames wait here, and past `inboxHighWater` the socket stops reading, so TCP
 * slows the peer down instead of the server buffering without bound.
 */

/** Inbound frames queued behind a slow handler before the socket stops reading. */
export const inboxHighWater = 64

/**
 * idle: frames are handled as they come; busy: a handler holds the line and frames queue;
 * paused: the queue reached `inboxHighWater` and the socket stopped reading.
 */
export type InboxState = 'idle' | 'busy' | 'paused'

/** What the inbox needs of its connection. */
export interface InboxOwner {
  /** handles one frame; a promise holds the line until it settles */
  dispatch (text: string): Promise<void> | void
  /** a failure of `dispatch` that nobody can be answered about */
  reportError (err: unknown, channel: undefined): void
  /** false once queued frames must no longer be handled (the socket closed) */
  readonly serving: boolean
  readonly ws: { pause (): void, resume (): void }
}

export class Inbox {
  /** busy until the connection releases it (its `connect` handlers are done) */
  private state: InboxState = 'busy'
  /** created when the first frame has to wait: an idle connection holds no queue */
  private queue: string[] | undefined

  constructor (private readonly owner: InboxOwner) {}

  get current (): InboxState {
    return this.state
  }

  /** Handles `text` now, or queues it behind the frame being handled. */
  push (text: string): void {
    if (this.state !== 'idle') {
      this.queue ??= []
      this.queue.push(text)
      if (this.queue.length >= inboxHighWater && this.state === 'busy') {
        this.state = 'paused'
        this.owner.ws.pause()
      }
      return
    }
    let pending: Promise<void> | void
    try {
      pending = this.owner.dispatch(text)
    } catch (err) {
      this.owner.reportError(err, undefined)
      return
    }
    if (pending === undefined) return
    this.state = 'busy'
    pending.then(() => this.drain(), (err: unknown) => {
      this.owner.reportError(err, undefined)
      return this.drain()
    })
  }

  /** Handles queued frames in order, then lets new frames through directly. */
  async drain (): Promise<void> {
    while (this.queue !== undefined && this.queue.length > 0 && this.owner.serving) {
      const text = this.queue.shift() as string
      try {
        await this.owner.dispatch(text)
      } catch (err) {
        this.owner.reportError(err, undefined)
      }
      if (this.state === 'paused' && (this.queue?.length ?? 0) < inboxHighWater / 2) {
        this.state = 'busy'
        this.owner.ws.resume()
      }
    }
    this.queue = undefined
    this.state = 'idle'
  }

  /** Drops what is queued (the socket closed: nobody will read the answers). */
  clear (): void {
    this.queue = undefined
  }
}
