/**
 * One WebSocket connection: parse → validate → dispatch for inbound frames, the socket API
 * handed to handlers, and the ordered disconnect sequence. Inbound frames of one socket are
 * handled one at a time, in order, so a `message` that follows a `subscribe` always sees it.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import WebSocket from 'ws'
import { channelNameProblem } from '../schemas/channel.js'
import { decodeClientFrame, encodeFrame } from '../schemas/codec.js'
import {
  CloseCodes, DEFAULT_EVENT, PROTOCOL_VERSION,
  type ErrorFrame, type MessageFrame, type ServerFrame, type SubscribeFrame, type UnsubscribeFrame
} from '../schemas/protocol.js'
import { ChannelError, isChannelError } from './errors.js'
import type { HandlerEntry } from './handlers.js'
import type { Recipient } from './fanout.js'
import { flushBeforeErrors, flushNow, toOutbound, writeFrame, type OutboundFrame } from './frame-writer.js'
import { RateWindow } from './rate-limit.js'
import { checkedChannel, type ChannelServer } from './server.js'
import type {
  BroadcastOptions, ChannelBroadcastOptions, ChannelContext, ChannelSocket, DisconnectInfo, MessageMeta, SendOptions
} from './types.js'

/** Inbound frames queued behind a slow handler before the socket stops reading (TCP backpressure). */
const inboxHighWater = 64
const maxCloseReasonBytes = 123

type Phase = 'connecting' | 'open' | 'closed'

/** The connection a ws belongs to: lets one shared listener per event serve every socket. */
const kConnection = Symbol('fastify-channels.connection')
type OwnedSocket = WebSocket & { [kConnection]: Connection }

/** `finished` of a connection that finished before anyone asked for it. */
const settled = Promise.resolve()

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function'
}

/** A close reason fits in a control frame: at most 123 bytes of UTF-8. */
function closeReason (text: string): string {
  let reason = text
  while (Buffer.byteLength(reason) > maxCloseReasonBytes) reason = reason.slice(0, -1)
  return reason
}

/** A read-only view of a Set: what handlers see as `socket.channels`. */
class ReadonlySetView<T> implements ReadonlySet<T> {
  constructor (private readonly set: Set<T>) {}
  get size (): number { return this.set.size }
  has (value: T): boolean { return this.set.has(value) }
  forEach (fn: (value: T, key: T, set: ReadonlySet<T>) => void, thisArg?: unknown): void {
    for (const value of this.set) fn.call(thisArg, value, value, this)
  }

  entries (): SetIterator<[T, T]> { return this.set.entries() }
  keys (): SetIterator<T> { return this.set.keys() }
  values (): SetIterator<T> { return this.set.values() }
  [Symbol.iterator] (): SetIterator<T> { return this.set.values() }
}

export class Connection implements ChannelSocket, Recipient {
  readonly id = randomBytes(18).toString('base64url')
  deliveryStamp = 0
  /** false from a heartbeat ping until the peer's pong */
  alive = true

  private phase: Phase = 'connecting'
  /** true once every `connect` handler succeeded: only then do disconnect handlers run */
  private connected = false
  private contextObject: ChannelContext | undefined
  private readonly subscriptions = new Set<string>()
  private channelsView: ReadonlySet<string> | undefined
  /** subscriptions whose handlers are still running: they count against maxChannels */
  private pendingSubscriptions = 0
  /** frames waiting for a slow handler; created when the first one has to wait */
  private inbox: string[] | undefined
  private busy = true // until connect handlers are done
  private paused = false
  private readonly rate: RateWindow | undefined
  /** set when the socket closed while `connect` handlers were still running */
  private closedEarly: DisconnectInfo | undefined
  /** why the server cut the connection off without a closing handshake (ws can only report 1006) */
  private cutOff: DisconnectInfo | undefined
  /** `finished`, created when first asked for (by `fastify.close()`): most connections never are */
  private finishedPromise: Promise<void> | undefined
  private settleFinished: (() => void) | undefined

  constructor (
    private readonly server: ChannelServer,
    readonly ws: WebSocket,
    readonly request: FastifyRequest
  ) {
    const { rateLimit } = server.options
    this.rate = rateLimit === false ? undefined : new RateWindow(rateLimit, performance.now())
  }

  /** resolves once the disconnect sequence (or the cleanup of a refused socket) is over */
  get finished (): Promise<void> {
    this.finishedPromise ??= new Promise((resolve) => { this.settleFinished = resolve })
    return this.finishedPromise
  }

  private resolveFinished (): void {
    if (this.finishedPromise === undefined) this.finishedPromise = settled
    else this.settleFinished?.()
  }

  // ---- the socket API handed to handlers ---------------------------------------------

  get context (): ChannelContext {
    // Created on first use: an idle socket whose handlers never touch it costs nothing.
    this.contextObject ??= {}
    return this.contextObject
  }

  get channels (): ReadonlySet<string> {
    this.channelsView ??= new ReadonlySetView(this.subscriptions)
    return this.channelsView
  }

  send (data: unknown, options: SendOptions = {}): void {
    if (options.channel !== undefined) checkedChannel(options.channel)
    this.sendFrame(this.server.encodeMessage(options.event ?? DEFAULT_EVENT, options.channel, data))
  }

  broadcast (data: unknown, options: BroadcastOptions = {}): Promise<void> {
    return this.server.broadcast(data, options, this.id)
  }

  sendAndBroadcast (data: unknown, options: BroadcastOptions = {}): Promise<void> {
    return this.server.broadcast(data, options)
  }

  broadcastChannel (data: unknown, options: ChannelBroadcastOptions = {}): Promise<void> {
    return this.server.broadcastToChannels(this.targetChannels(options.channel), data, options, this.id)
  }

  sendAndBroadcastChannel (data: unknown, options: ChannelBroadcastOptions = {}): Promise<void> {
    const channels = this.targetChannels(options.channel)
    // "The sender included" even when it holds none of the target channels.
    if (!channels.some((channel) => this.subscriptions.has(channel))) {
      this.send(data, { event: options.event, channel: options.channel })
    }
    return this.server.broadcastToChannels(channels, data, options)
  }

  async subscribe (channel: string): Promise<void> {
    const problem = channelNameProblem(channel)
    if (problem !== undefined) throw new ChannelError('INVALID_CHANNEL', problem)
    await this.join(channel)
    this.sendControl({ type: 'subscribed', channel })
    this.server.presence.welcome(this, channel)
  }

  async unsubscribe (channel: string): Promise<void> {
    const problem = channelNameProblem(channel)
    if (problem !== undefined) throw new ChannelError('INVALID_CHANNEL', problem)
    await this.leave(channel)
    this.sendControl({ type: 'unsubscribed', channel })
  }

  track (channel: string, key: string, meta?: unknown): Promise<void> {
    return this.server.presence.track(this, channel, key, meta)
  }

  untrack (channel: string): Promise<void> {
    return this.server.presence.untrack(this, channel)
  }

  close (code: number = CloseCodes.NORMAL, reason = ''): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, closeReason(reason))
    }
  }

  // ---- outbound -------------------------------------------------------------------------

  /**
   * The one way a frame leaves for this socket (acks, direct sends and broadcasts alike, so
   * they stay in order): checks state, logs, writes (see frame-writer.ts), bounds the queue.
   */
  sendFrame (frame: string | OutboundFrame): void {
    const { ws } = this
    if (ws.readyState !== WebSocket.OPEN) return
    const outbound = toOutbound(frame)
    const { options } = this.server
    if (options.messageLog) this.request.log.info({ sessionId: this.id, frame: outbound.text }, 'channels: message out')
    writeFrame(ws, outbound)
    if (ws.bufferedAmount > options.maxBufferedBytes) {
      // Bytes held back only to coalesce this turn's writes do not make a peer slow: hand
      // them to the kernel first, and judge by what it would not take.
      flushNow(ws)
      if (ws.bufferedAmount > options.maxBufferedBytes) this.closeSlowConsumer()
    }
  }

  /**
   * Closes a socket whose peer does not read: the close frame is queued, then the socket is
   * destroyed at once, freeing its queue (the peer may never read the close frame).
   */
  private closeSlowConsumer (): void {
    this.request.log.warn({ sessionId: this.id, bufferedAmount: this.ws.bufferedAmount }, 'channels: slow consumer closed')
    this.cutOff = { code: CloseCodes.TRY_AGAIN_LATER, reason: 'slow consumer' }
    this.ws.close(this.cutOff.code, this.cutOff.reason)
    this.ws.terminate()
  }

  private sendControl (frame: ServerFrame): void {
    this.sendFrame(encodeFrame(frame))
  }

  private sendError (code: string, message: string, id?: number, errors?: ErrorFrame['errors']): void {
    const frame: ErrorFrame = { type: 'error', id, code, message, errors }
    this.sendControl(frame)
  }

  // ---- life cycle -----------------------------------------------------------------------

  /** Called once the upgrade is done: welcome, `connect` handlers, then inbound frames. */
  async start (): Promise<void> {
    const ws = this.ws as OwnedSocket
    // Shared listeners, not closures: an idle connection costs one property on its ws.
    ws[kConnection] = this
    ws.on('message', Connection.onMessage)
    ws.on('close', Connection.onSocketClose)
    if (this.server.options.heartbeat !== false) ws.on('pong', Connection.onPong)
    flushBeforeErrors(ws)

    this.server.attach(this)
    this.sendControl({ type: 'welcome', sessionId: this.id, protocol: PROTOCOL_VERSION })
    try {
      for (const entry of this.server.handlers.list('connect')) await entry.fn(this)
    } catch (err) {
      this.refuse(err)
      return
    }
    this.connected = true
    if (this.closedEarly !== undefined) {
      await this.runDisconnect(this.closedEarly)
      return
    }
    this.phase = 'open'
    await this.drain()
  }

  /** A `connect` handler threw: close with 1008; the socket was never connected. */
  private refuse (err: unknown): void {
    if (!isChannelError(err)) this.reportError(err, undefined)
    else this.request.log.info({ sessionId: this.id, code: err.code }, 'channels: connection refused')
    const reason = isChannelError(err) ? err.message : 'connection refused'
    this.busy = false
    if (this.phase === 'closed') {
      this.cleanUpSilently()
      return
    }
    this.close(CloseCodes.POLICY_VIOLATION, reason)
  }

  private static onMessage (this: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    (this as OwnedSocket)[kConnection].receive(data, isBinary)
  }

  private static onSocketClose (this: WebSocket, code: number, reason: Buffer): void {
    (this as OwnedSocket)[kConnection].onClose(code, reason.toString())
  }

  private static onPong (this: WebSocket): void {
    (this as OwnedSocket)[kConnection].alive = true
  }

  /** ws emits 'close' once; a second call would change nothing anyway. */
  private onClose (code: number, reason: string): void {
    if (this.phase === 'closed') return
    const wasConnecting = this.phase === 'connecting'
    this.phase = 'closed'
    this.inbox = undefined
    this.server.detach(this)
    const info = this.cutOff ?? { code, reason }
    if (this.connected) {
      this.runDisconnect(info).catch((err: unknown) => this.reportError(err, undefined))
    } else if (wasConnecting) {
      // `connect` handlers are still running (start() finishes the job) or they refused.
      this.closedEarly = info
      if (!this.busy) this.cleanUpSilently()
    }
  }

  /** Channels a refused socket may hold (a connect handler subscribed it) are freed silently. */
  private cleanUpSilently (): void {
    for (const channel of this.subscriptions) this.server.left(channel, this)
    this.subscriptions.clear()
    this.resolveFinished()
  }

  /** disconnect (channels still held) → unsubscribe for each channel → finish, once. */
  private async runDisconnect (info: DisconnectInfo): Promise<void> {
    for (const entry of this.server.handlers.forAnyChannel('disconnect', this.subscriptions)) {
      await this.runQuietly(entry, undefined, info)
    }
    try {
      for (const channel of [...this.subscriptions]) await this.leave(channel)
      for (const entry of this.server.handlers.list('finish')) await this.runQuietly(entry, undefined)
    } finally {
      this.resolveFinished()
    }
  }

  /** Runs a handler whose failure cannot be answered: it is logged and passed to `error` handlers. */
  private async runQuietly (entry: HandlerEntry, channel: string | undefined, ...args: unknown[]): Promise<void> {
    try {
      await entry.fn(this, ...args)
    } catch (err) {
      this.reportError(err, channel)
    }
  }

  /** Logs a handler error and hands it to the `error` handlers whose filter matches `channel`. */
  reportError (err: unknown, channel: string | undefined): void {
    const error = err instanceof Error ? err : new Error(String(err))
    this.request.log.error({ err: error, sessionId: this.id, channel }, 'channels: handler failed')
    for (const entry of this.server.handlers.forChannel('error', channel)) {
      try {
        const result = entry.fn(this, error)
        if (isThenable(result)) {
          Promise.resolve(result).catch((inner: unknown) =>
            this.request.log.error({ err: inner, sessionId: this.id }, 'channels: error handler failed'))
        }
      } catch (inner) {
        this.request.log.error({ err: inner, sessionId: this.id }, 'channels: error handler failed')
      }
    }
  }

  /** Heartbeat tick: terminate a peer that missed the last pong, else ping it. */
  heartbeat (): void {
    if (!this.alive) {
      this.request.log.info({ sessionId: this.id }, 'channels: peer missed a pong, terminated')
      // ws can only report 1006 with no reason: tell disconnect handlers why.
      this.cutOff = { code: CloseCodes.ABNORMAL_CLOSURE, reason: 'heartbeat timeout' }
      this.ws.terminate()
      return
    }
    this.alive = false
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping()
  }

  // ---- inbound --------------------------------------------------------------------------

  private receive (data: WebSocket.RawData, isBinary: boolean): void {
    // ws goes on emitting frames after a close frame went out (until the peer answers or the
    // close timeout ends it): a socket closed for abuse (1008, 1009, 1013) must not be served.
    if (this.phase === 'closed' || this.ws.readyState !== WebSocket.OPEN) return
    if (this.rate !== undefined && !this.admit()) return
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength
    // When the app registered @fastify/websocket itself, its maxPayload governs ws; ours still holds.
    if (size > this.server.options.maxPayload) {
      this.close(CloseCodes.MESSAGE_TOO_BIG, 'frame too large')
      return
    }
    if (isBinary) {
      this.sendError('BAD_FRAME', 'binary frames are not accepted: send JSON text frames')
      return
    }
    // ws hands a Buffer by default: decode it in place (Buffer.from would copy it first).
    const text = Buffer.isBuffer(data) ? data.toString() : Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data).toString()
    if (this.server.options.messageLog) this.request.log.info({ sessionId: this.id, frame: text }, 'channels: message in')
    if (this.busy) {
      this.inbox ??= []
      this.inbox.push(text)
      if (this.inbox.length >= inboxHighWater && !this.paused) {
        this.paused = true
        this.ws.pause()
      }
      return
    }
    let pending: Promise<void> | void
    try {
      pending = this.handle(text)
    } catch (err) {
      this.reportError(err, undefined)
      return
    }
    // Synchronous handling (the common case) needs no queue; async handling holds the line.
    if (pending === undefined) return
    this.busy = true
    pending.then(() => this.drain(), (err: unknown) => {
      this.reportError(err, undefined)
      return this.drain()
    })
  }

  /** Applies the rate limit; false when the frame must be dropped unparsed. */
  private admit (): boolean {
    const verdict = (this.rate as RateWindow).take(performance.now())
    if (verdict === 'allow') return true
    if (verdict !== 'drop') {
      this.sendError('RATE_LIMITED', 'too many frames: slow down')
      if (verdict === 'abuse') this.close(CloseCodes.POLICY_VIOLATION, 'rate limit exceeded repeatedly')
    }
    return false
  }

  /** Handles queued frames in order, then lets new frames through directly. */
  private async drain (): Promise<void> {
    while (this.inbox !== undefined && this.inbox.length > 0 && this.phase !== 'closed') {
      const text = this.inbox.shift() as string
      try {
        await this.handle(text)
      } catch (err) {
        this.reportError(err, undefined)
      }
      if (this.paused && (this.inbox?.length ?? 0) < inboxHighWater / 2) {
        this.paused = false
        this.ws.resume()
      }
    }
    this.inbox = undefined // drained: an idle connection holds no queue
    this.busy = false
  }

  private handle (text: string): Promise<void> | void {
    const decoded = decodeClientFrame(text)
    if (!decoded.ok) {
      this.sendError(decoded.code, decoded.message, decoded.id)
      return
    }
    const { frame } = decoded
    switch (frame.type) {
      case 'subscribe': return this.onSubscribeFrame(frame)
      case 'unsubscribe': return this.onUnsubscribeFrame(frame)
      case 'message': return this.onMessageFrame(frame)
    }
  }

  private async onSubscribeFrame ({ channel, id }: SubscribeFrame): Promise<void> {
    const problem = channelNameProblem(channel)
    if (problem !== undefined) return this.sendError('INVALID_CHANNEL', problem, id)
    try {
      await this.join(channel)
    } catch (err) {
      const refusal = err as ChannelError
      return this.sendError(refusal.code, refusal.message, id)
    }
    this.sendControl({ type: 'subscribed', channel, id })
    this.server.presence.welcome(this, channel)
  }

  private async onUnsubscribeFrame ({ channel, id }: UnsubscribeFrame): Promise<void> {
    const problem = channelNameProblem(channel)
    if (problem !== undefined) return this.sendError('INVALID_CHANNEL', problem, id)
    await this.leave(channel)
    this.sendControl({ type: 'unsubscribed', channel, id })
  }

  private onMessageFrame ({ event = DEFAULT_EVENT, channel, data, id }: MessageFrame): Promise<void> | void {
    if (channel !== undefined) {
      const problem = channelNameProblem(channel)
      if (problem !== undefined) return this.sendError('INVALID_CHANNEL', problem, id)
      if (!this.subscriptions.has(channel)) {
        return this.sendError('NOT_SUBSCRIBED', `not subscribed to channel "${channel}"`, id)
      }
    }
    const handlers = this.server.handlers.forMessage(event, channel)
    if (handlers.length === 0) return this.sendError('NO_HANDLER', `no handler for event "${event}"`, id)
    for (const entry of handlers) {
      if (entry.schema !== undefined && !entry.schema.check(data)) {
        return this.sendError('VALIDATION_FAILED', 'the message data does not match the schema', id, entry.schema.issues(data))
      }
    }
    const meta: MessageMeta = channel === undefined ? { event, id } : { event, channel, id }
    return this.runMessageHandlers(handlers, data, meta)
  }

  /**
   * Runs matching handlers in order; the ack carries the first value other than undefined.
   * Stays synchronous until a handler returns a promise, so sync handlers cost no microtask.
   */
  private runMessageHandlers (handlers: HandlerEntry[], data: unknown, meta: MessageMeta): Promise<void> | void {
    let reply: unknown
    for (let i = 0; i < handlers.length; i++) {
      let result: unknown
      try {
        result = handlers[i].fn(this, data, meta)
      } catch (err) {
        return this.messageFailed(err, meta)
      }
      if (isThenable(result)) return this.finishMessageHandlers(handlers, i, result, reply, data, meta)
      if (reply === undefined) reply = result
    }
    this.acknowledge(meta, reply)
  }

  private async finishMessageHandlers (
    handlers: HandlerEntry[], index: number, pending: PromiseLike<unknown>, reply: unknown, data: unknown, meta: MessageMeta
  ): Promise<void> {
    try {
      let result = await pending
      if (reply === undefined) reply = result
      for (let i = index + 1; i < handlers.length; i++) {
        result = handlers[i].fn(this, data, meta)
        if (isThenable(result)) result = await result
        if (reply === undefined) reply = result
      }
    } catch (err) {
      return this.messageFailed(err, meta)
    }
    this.acknowledge(meta, reply)
  }

  /** A ChannelError reaches the client as it is; anything else only as HANDLER_ERROR. */
  private messageFailed (err: unknown, meta: MessageMeta): void {
    if (isChannelError(err)) return this.sendError(err.code, err.message, meta.id)
    this.reportError(err, meta.channel)
    this.sendError('HANDLER_ERROR', 'the handler failed', meta.id)
  }

  private acknowledge (meta: MessageMeta, reply: unknown): void {
    if (meta.id === undefined) return
    let ack: string
    try {
      ack = encodeFrame({ type: 'ack', id: meta.id, data: reply })
    } catch (err) {
      this.reportError(err, meta.channel)
      return this.sendError('HANDLER_ERROR', 'the handler failed', meta.id)
    }
    this.sendFrame(ack)
  }

  // ---- subscriptions -------------------------------------------------------------------

  /**
   * Runs `subscribe` handlers and joins `channel`. Rejects with a ChannelError carrying the
   * code the client gets: a thrown ChannelError's own, else FORBIDDEN.
   */
  private async join (channel: string): Promise<void> {
    if (this.subscriptions.has(channel)) return
    const { maxChannels } = this.server.options
    if (this.subscriptions.size + this.pendingSubscriptions >= maxChannels) {
      throw new ChannelError('TOO_MANY_CHANNELS', `a socket may hold at most ${maxChannels} channels`)
    }
    this.pendingSubscriptions++
    try {
      for (const entry of this.server.handlers.forChannel('subscribe', channel)) await entry.fn(this, channel)
    } catch (err) {
      if (isChannelError(err)) throw err
      this.reportError(err, channel)
      throw new ChannelError('FORBIDDEN', 'subscription refused')
    } finally {
      this.pendingSubscriptions--
    }
    // A socket that closed while the handlers ran must not join: it would never leave.
    if (this.phase === 'closed' && this.connected) throw new ChannelError('FORBIDDEN', 'the socket is closed')
    if (this.subscriptions.has(channel)) return
    this.subscriptions.add(channel)
    await this.server.joined(channel, this)
    await this.server.presence.ready(channel)
  }

  /** Leaves `channel` (idempotent), then runs `unsubscribe` handlers. */
  private async leave (channel: string): Promise<void> {
    if (!this.subscriptions.delete(channel)) return
    this.server.left(channel, this)
    for (const entry of this.server.handlers.forChannel('unsubscribe', channel)) {
      await this.runQuietly(entry, channel, channel)
    }
  }

  /** The channels a channel broadcast goes to: the named one, or all held, in order. */
  private targetChannels (channel: string | undefined): string[] {
    if (channel === undefined) return [...this.subscriptions]
    checkedChannel(channel)
    return [channel]
  }
}
