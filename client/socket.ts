/**
 * The connection: one WebSocket at a time, the welcome handshake, the status, the send
 * buffer that holds frames while offline, and reconnecting: after a random wait when the
 * server went away on purpose (1001, 1012, 1013), with backoff after a failure. It knows frames only
 * as text plus the welcome; everything else is handed to its owner (the client).
 */
import { decodeServerFrame } from '../schemas/server-frames.js'
import { CloseCodes } from '../schemas/constants.js'
import type { ServerFrame, WelcomeFrame } from '../schemas/protocol.js'
import { encodeFrame } from '../schemas/wire.js'
import { Liveness } from './liveness.js'
import { fullJitter, Timer, type Backoff } from './timer.js'
import { ClientErrorCodes, usageError } from './errors.js'

/**
 * An event handler as a WebSocket stores it. Written as a method's type (the "bivariance
 * hack"), so that `ws`'s handlers, typed with its own event classes, and the DOM's fit it:
 * under `strict` a plain function type would refuse both (TS2322).
 */
type Handler<E> = { handle (event: E): void }['handle']

/** What the client needs of a WebSocket: the browser's, or `ws` in Node. */
export interface WebSocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
  onopen: Handler<unknown> | null
  onmessage: Handler<{ data: unknown }> | null
  onclose: Handler<{ code: number, reason: string }> | null
  onerror: Handler<unknown> | null
}

export type WebSocketConstructor = new (url: string) => WebSocketLike

export type Status = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** `readyState` of an open WebSocket (the same in browsers and `ws`). */
const OPEN = 1
/** The close code of a connection that ended without a close frame (or never began). */
const abnormalClose = 1006
/** The close code the client sends when it gives up on a silent connection (4000–4999: private use). */
const closeTimedOut = 4000
/**
 * Closes that say the server went away or is busy, not that the connection failed: 1001 going
 * away (a server shutting down: `fastify.close()`), 1012 service restart (a proxy or server
 * restarting), 1013 try again later (overloaded; also a slow consumer cut off). After them the
 * first reconnect waits a random time (full jitter over `reconnectJitter`), not the backoff.
 */
const goingAwayCodes: ReadonlySet<number> = new Set([CloseCodes.GOING_AWAY, 1012, CloseCodes.TRY_AGAIN_LATER])

export interface CloseInfo {
  code: number
  reason: string
}

/** What the socket tells its owner. */
export interface SocketOwner {
  /** the status changed (to 'open' right after a welcome, before `opened`) */
  statusChanged (status: Status): void
  /** a welcome arrived: resend what the new session must know (subscriptions) */
  opened (welcome: WelcomeFrame): void
  /** a server frame other than the welcome */
  received (frame: ServerFrame): void
  /** a frame that could not be decoded */
  badFrame (message: string): void
  /** the connection was lost; `final` when no reconnect follows */
  dropped (info: CloseInfo, final: boolean): void
}

export interface SocketOptions {
  url: string
  WebSocket: WebSocketConstructor
  /** query parameters added to the URL on every (re)connect */
  params: (() => Record<string, string>) | undefined
  reconnect: boolean
  backoff: Backoff
  /** ms over which the first reconnect after a 1001, 1012 or 1013 is spread (full jitter) */
  reconnectJitter: number
  maxQueue: number
  /** ms of silence before a ping (and to wait for an answer), false for none */
  heartbeat: number | false
  /** ms a connection may take to send its welcome */
  connectTimeout: number
}

interface Queued {
  text: string
  onSent: (() => void) | undefined
}

/** Resolves a relative URL against the page and turns http(s) into ws(s). */
export function resolveUrl (url: string, params?: Record<string, string>): string {
  const base = (globalThis as { location?: { href: string } }).location?.href
  let parsed: URL
  try {
    parsed = new URL(url, base)
  } catch {
    throw usageError(ClientErrorCodes.INVALID_URL, `fastify-channels: cannot resolve the URL "${url}"` +
      (base === undefined ? ' (outside a browser, pass an absolute ws:// or wss:// URL)' : ''))
  }
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:'
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:'
  else if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw usageError(ClientErrorCodes.INVALID_URL, `fastify-channels: expected a ws:, wss:, http: or https: URL, got "${url}"`)
  }
  for (const [key, value] of Object.entries(params ?? {})) parsed.searchParams.set(key, value)
  return parsed.href
}

export class Socket {
  status: Status = 'connecting'
  sessionId: string | undefined
  private ws: WebSocketLike | undefined
  private readonly outbox: Queued[] = []
  private readonly timer: Timer
  private readonly liveness: Liveness

  constructor (private readonly options: SocketOptions, private readonly owner: SocketOwner) {
    this.timer = new Timer(() => this.open(), options.backoff)
    this.liveness = new Liveness({
      ping: () => { this.write(encodeFrame({ type: 'ping' })) },
      dead: (reason) => this.drop(reason)
    }, options.heartbeat, options.connectTimeout)
  }

  /** true once welcomed and while the WebSocket can take frames */
  get isOpen (): boolean {
    return this.status === 'open' && this.ws !== undefined && this.ws.readyState === OPEN
  }

  /**
   * Opens a WebSocket. The first time, a bad URL (or a throwing `params`) throws to the caller
   * of `connect()`; on a reconnect it counts as one more failed try.
   */
  open (): void {
    if (this.status === 'closed') return
    let ws: WebSocketLike
    try {
      ws = new this.options.WebSocket(resolveUrl(this.options.url, this.options.params?.()))
    } catch (err) {
      if (this.status === 'connecting') throw err
      this.onClose(abnormalClose, err instanceof Error ? err.message : String(err))
      return
    }
    this.ws = ws
    this.liveness.connecting()
    // Every handler checks that its WebSocket is still the current one: a replaced socket's
    // late events are ignored (its handlers stay set: `ws` throws on an unheard 'error').
    ws.onmessage = (event) => { if (ws === this.ws) this.onText(event.data) }
    ws.onclose = (event) => { if (ws === this.ws) this.onClose(event.code, event.reason) }
    ws.onerror = () => {} // a close event always follows; it carries what we need
  }

  /** Writes now if open; returns false (nothing written) otherwise. */
  write (text: string): boolean {
    if (!this.isOpen) return false
    ;(this.ws as WebSocketLike).send(text)
    return true
  }

  /**
   * Writes now if open, else queues for the next connection. False when the queue is full
   * (`maxQueue` frames) or the socket is closed: then the frame is dropped.
   */
  push (text: string, onSent?: () => void): boolean {
    if (this.write(text)) {
      onSent?.()
      return true
    }
    if (this.status === 'closed' || this.outbox.length >= this.options.maxQueue) return false
    this.outbox.push({ text, onSent })
    return true
  }

  /** Takes a queued frame back out (a request that timed out before it was sent). */
  unqueue (text: string): void {
    const index = this.outbox.findIndex((queued) => queued.text === text)
    if (index !== -1) this.outbox.splice(index, 1)
  }

  get queued (): number {
    return this.outbox.length
  }

  /** Closes for good: no reconnect. */
  close (code = CloseCodes.NORMAL, reason = ''): void {
    if (this.status === 'closed') return
    this.timer.cancel()
    this.liveness.stop()
    const ws = this.ws
    this.ws = undefined
    try {
      ws?.close(code, reason)
    } catch {
      // a socket still connecting may refuse to close politely; it is forgotten anyway
    }
    this.finish({ code, reason })
  }

  /**
   * Gives up on a connection that went silent (or never sent its welcome): it is forgotten at
   * once, its late events ignored, and a reconnect follows as after any abnormal close.
   */
  private drop (reason: string): void {
    const ws = this.ws
    if (ws === undefined) return
    this.ws = undefined
    try {
      ws.close(closeTimedOut, reason)
    } catch {
      // a socket still connecting may refuse to close politely; it is forgotten anyway
    }
    this.onClose(abnormalClose, reason)
  }

  private onText (data: unknown): void {
    this.liveness.heard()
    if (typeof data !== 'string') return this.owner.badFrame('binary frames are not part of the protocol')
    const decoded = decodeServerFrame(data)
    if (!decoded.ok) return this.owner.badFrame(decoded.message)
    const { frame } = decoded
    if (frame.type !== 'welcome') return this.owner.received(frame)
    if (this.status === 'open') return // a second welcome on one connection means nothing
    this.sessionId = frame.sessionId
    this.timer.reset()
    this.liveness.welcomed()
    this.setStatus('open')
    // Listeners ran first (their frames, e.g. re-authentication, go out first); then the
    // owner resubscribes; then what was queued offline follows, in order.
    if (!this.isOpen) return
    this.owner.opened(frame)
    this.flush()
  }

  private flush (): void {
    while (this.outbox.length > 0 && this.isOpen) {
      const { text, onSent } = this.outbox.shift() as Queued
      ;(this.ws as WebSocketLike).send(text)
      onSent?.()
    }
  }

  private onClose (code: number, reason: string): void {
    this.ws = undefined
    this.liveness.stop()
    this.sessionId = undefined
    // 1008: the server refused this client on purpose (a connect handler, or abuse); retrying
    // would only be refused again.
    if (!this.options.reconnect || code === CloseCodes.POLICY_VIOLATION) {
      this.finish({ code, reason })
      return
    }
    this.owner.dropped({ code, reason }, false)
    this.setStatus('reconnecting')
    if (this.status !== 'reconnecting') return // a listener closed the client
    if (goingAwayCodes.has(code)) this.timer.scheduleIn(fullJitter(this.options.reconnectJitter))
    else this.timer.schedule()
  }

  private finish (info: CloseInfo): void {
    this.sessionId = undefined
    this.outbox.length = 0
    this.setStatus('closed')
    this.owner.dropped(info, true)
  }

  private setStatus (status: Status): void {
    if (this.status === status) return
    this.status = status
    this.owner.statusChanged(status)
  }
}
