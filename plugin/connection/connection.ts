/**
 * One WebSocket connection: its one state (connection-state.ts), the socket API handed to
 * handlers, and the wiring from ws events to the inbox (inbox.ts), the dispatcher
 * (dispatch.ts), the join/leave path (membership.ts) and the end of life (lifecycle.ts).
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import WebSocket from 'ws'
import { decodeClientFrame, encodeFrame } from '../../schemas/codec.js'
import { CloseCodes, DEFAULT_EVENT, PROTOCOL_VERSION, type ErrorFrame, type ReplyFrame, type ServerFrame } from '../../schemas/protocol.js'
import { checkedChannel, volatileOption } from '../node/server.js'
import { sessionId } from '../node/session-id.js'
import { ConnectionStates, acceptsJoins, nextState, type ConnectionEvent, type ConnectionState } from './state.js'
import { dispatch, type DispatchTarget } from './dispatch.js'
import { ChannelError, isChannelError } from '../errors.js'
import { OutboundFrame, flushBeforeErrors, toOutbound } from '../outbound/frame-writer.js'
import type { HandlerRegistry } from '../handlers/registry.js'
import type { HeartbeatPeer } from '../node/heartbeat.js'
import { Inbox, type InboxOwner } from './inbox.js'
import { releaseAll, runDisconnectSequence } from './membership.js'
import { join, leave } from './membership.js'
import { closeReason, isWritable, slowConsumerClose, writeVolatile, writeWithinLimit } from '../outbound/slow-consumer.js'
import { RateWindow, RejoinAllowance } from './rate-limit.js'
import { reportError } from '../handlers/report.js'
import { events } from '../observability/events.js'
import { identify } from '../users/identify.js'
import { PendingRequests, replyProblem, type AskOptions } from '../requests/pending.js'
import type { ChannelServer, LocalSocket } from '../node/server.js'
import type {

  BroadcastOptions, ChannelBroadcastOptions, ChannelContext, DisconnectInfo, SendOptions
} from '../types.js'

/** The connection a ws belongs to: lets one shared listener per event serve every socket. */
const kConnection = Symbol('fastify-channels.connection')
type OwnedSocket = WebSocket & { [kConnection]: Connection }

/** `finished` of a connection that finished before anyone asked for it. */
const settled = Promise.resolve()

export class Connection implements DispatchTarget, InboxOwner, HeartbeatPeer, LocalSocket {
  readonly id = sessionId()
  deliveryStamp = 0
  alive = true
  pendingJoins = 0
  readonly subscriptions = new Set<string>()
  /** the connection's user id (the `user` option), undefined for an anonymous one */
  user: string | undefined

  private state: ConnectionState = ConnectionStates.CONNECTING
  /** how the socket closed, once it did: what `disconnect` handlers get */
  private closeInfo: DisconnectInfo | undefined
  /** why the server terminated the socket without a closing handshake (ws can only report 1006) */
  private terminatedFor: DisconnectInfo | undefined
  private contextObject: ChannelContext | undefined
  private channelsView: ReadonlySet<string> | undefined
  private readonly inbox = new Inbox(this)
  /** server → client requests waiting for their reply; created on the first `ask` */
  private requests: PendingRequests | undefined
  private readonly rate: RateWindow | undefined
  /** the rate limit's exemption for the first maxChannels subscribe frames (rejoining) */
  private readonly rejoin: RejoinAllowance | undefined
  /** `finished`, created when first asked for (by `fastify.close()`): most connections never are */
  private finishedPromise: Promise<void> | undefined
  private settleFinished: (() => void) | undefined

  constructor (
    readonly server: ChannelServer,
    readonly ws: WebSocket,
    readonly request: FastifyRequest
  ) {
    const { rateLimit } = server.options
    this.rate = rateLimit === false ? undefined : new RateWindow(rateLimit, performance.now())
    this.rejoin = rateLimit === false ? undefined : new RejoinAllowance(server.options.maxChannels)
  }

  get handlers (): HandlerRegistry { return this.server.handlers }
  get log (): FastifyBaseLogger { return this.request.log }
  get serving (): boolean { return this.state === ConnectionStates.OPEN }
  get acceptsJoins (): boolean { return acceptsJoins(this.state) }

  /** resolves once the disconnect sequence (or the cleanup of a refused socket) is over */
  get finished (): Promise<void> {
    this.finishedPromise ??= new Promise((resolve) => { this.settleFinished = resolve })
    return this.finishedPromise
  }

  // ---- the socket API handed to handlers (ChannelSocket) ----------------------------------

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
    const volatile = volatileOption(options, 'send')
    const text = this.server.encodeMessage(options.event ?? DEFAULT_EVENT, options.channel, data)
    this.sendFrame(volatile ? new OutboundFrame(text, true) : text)
  }

  broadcast (data: unknown, options: BroadcastOptions = {}): Promise<void> {
    return this.server.broadcast(data, options, this.id)
  }

  sendAndBroadcast (data: unknown, options: BroadcastOptions = {}): Promise<void> {
    return this.server.broadcast(data, options)
  }

  async broadcastChannel (data: unknown, options: ChannelBroadcastOptions = {}): Promise<void> {
    await this.server.broadcastToChannels(this.targetChannels(options.channel), data, options, this.id)
  }

  async sendAndBroadcastChannel (data: unknown, options: ChannelBroadcastOptions = {}): Promise<void> {
    const channels = this.targetChannels(options.channel)
    // "The sender included" even when it holds none of the target channels.
    if (!channels.some((channel) => this.subscriptions.has(channel))) {
      this.send(data, { event: options.event, channel: options.channel, volatile: options.volatile })
    }
    await this.server.broadcastToChannels(channels, data, options)
  }

  async subscribe (channel: string): Promise<void> {
    await join(this, checkedChannel(channel))
  }

  async unsubscribe (channel: string): Promise<void> {
    await leave(this, checkedChannel(channel))
  }

  track (channel: string, key?: string, meta?: unknown): Promise<void> {
    // Without a key: the connection's user (see Users).
    const trackKey = key ?? this.user
    if (trackKey === undefined) {
      return Promise.reject(new ChannelError('INVALID_PRESENCE', 'track() without a key needs a connection with a user (the user option)'))
    }
    return this.server.presence.track(this, channel, trackKey, meta)
  }

  untrack (channel: string): Promise<void> {
    return this.server.presence.untrack(this, channel)
  }

  ask (event: string, data?: unknown, options?: AskOptions): Promise<unknown> {
    this.requests ??= new PendingRequests((frame) => {
      if (!isWritable(this.ws)) return false
      this.sendFrame(frame)
      return true
    })
    return this.requests.ask(event, data, options)
  }

  /** A client's `reply`: settles its request (an unknown or answered `rid` is ignored). */
  reply (frame: ReplyFrame): void {
    const problem = replyProblem(frame)
    if (problem !== undefined) return this.sendError('BAD_FRAME', problem)
    this.requests?.reply(frame)
  }

  close (code: number = CloseCodes.NORMAL, reason = ''): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, closeReason(reason))
    }
  }

  /** The channels a channel broadcast goes to: the named one, or all held, in order. */
  private targetChannels (channel: string | undefined): string[] {
    return channel === undefined ? [...this.subscriptions] : [checkedChannel(channel)]
  }

  // ---- outbound -----------------------------------------------------------------------------

  /**
   * The one way a frame leaves for this socket (acks, direct sends and broadcasts alike, so
   * they stay in order): checks state, logs, writes, cuts off a slow consumer (outbound.ts).
   */
  sendFrame (frame: string | OutboundFrame): void {
    if (!isWritable(this.ws)) return
    const outbound = toOutbound(frame)
    const { options } = this.server
    if (outbound.volatile) {
      // Skipped while bytes are still queued for this peer; never a slow-consumer close.
      if (!writeVolatile(this.ws, outbound, options.maxBufferedBytes)) return
      if (events.frameOut.hasSubscribers) events.frameOut.publish({ nodeId: this.server.nodeId, sessionId: this.id, socket: this, frame: outbound.text })
      return
    }
    if (events.frameOut.hasSubscribers) events.frameOut.publish({ nodeId: this.server.nodeId, sessionId: this.id, socket: this, frame: outbound.text })
    if (!writeWithinLimit(this.ws, outbound, options.maxBufferedBytes)) {
      this.log.warn({ sessionId: this.id, bufferedAmount: this.ws.bufferedAmount }, 'channels: slow consumer closed')
      if (events.slowConsumer.hasSubscribers) {
        events.slowConsumer.publish({ nodeId: this.server.nodeId, sessionId: this.id, socket: this, bufferedAmount: this.ws.bufferedAmount })
      }
      this.server.stats.note('slow-consumer', `closed with 1013: ${this.ws.bufferedAmount} bytes queued`, this.id)
      // The close frame is queued, then the socket destroyed at once: the peer may never read it.
      this.ws.close(slowConsumerClose.code, slowConsumerClose.reason)
      this.terminate(slowConsumerClose)
    }
  }

  sendControl (frame: ServerFrame): void {
    this.sendFrame(encodeFrame(frame))
  }

  sendError (code: string, message: string, id?: number, errors?: ErrorFrame['errors']): void {
    if (events.errorSent.hasSubscribers) events.errorSent.publish({ nodeId: this.server.nodeId, sessionId: this.id, code })
    this.sendControl({ type: 'error', id, code, message, errors })
  }

  /** Destroys the socket without a closing handshake; `why` is what disconnect handlers see. */
  terminate (why: DisconnectInfo): void {
    this.terminatedFor = why
    this.ws.terminate()
  }

  noteError (error: Error, channel: string | undefined): void {
    this.server.stats.note('error', `${error.name}: ${error.message}`, this.id, channel)
  }

  /** Logs a handler failure and hands it to the `error` handlers (report.ts). */
  reportError (err: unknown, channel: string | undefined): void {
    reportError(this, err, channel)
  }

  dispatch (text: string): Promise<void> | void {
    return dispatch(this, text)
  }

  // ---- life cycle ---------------------------------------------------------------------------

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
    if (this.server.options.user !== undefined) {
      // Who it is, before `welcome`: the app's hooks ran on the upgrade; then its user's list holds it.
      const refusal = await identify(this, this.server.options.user)
      if (refusal !== undefined) {
        await this.move('refused', refusal)
        return
      }
      await this.server.users.add(this)
    }
    if (events.connectionOpen.hasSubscribers) events.connectionOpen.publish({ nodeId: this.server.nodeId, sessionId: this.id, socket: this })
    this.sendControl({ type: 'welcome', sessionId: this.id, protocol: PROTOCOL_VERSION })
    try {
      for (const entry of this.handlers.list('connect')) await entry.fn(this)
    } catch (err) {
      if (!isChannelError(err)) this.reportError(err, undefined)
      else this.log.info({ sessionId: this.id, code: err.code }, 'channels: connection refused')
      await this.move('refused', isChannelError(err) ? err.message : 'connection refused')
      return
    }
    await this.move('connected')
  }

  /** The one place the state changes; each new state's entry action runs here. */
  private async move (event: ConnectionEvent, refusal = ''): Promise<void> {
    const from = this.state
    const to = nextState(from, event)
    if (to === undefined) return
    this.state = to
    switch (to) {
      case ConnectionStates.OPEN:
        await this.inbox.drain()
        break
      case ConnectionStates.REFUSED:
        this.close(CloseCodes.POLICY_VIOLATION, refusal)
        break
      case ConnectionStates.DISCONNECTING:
        try {
          await runDisconnectSequence(this, this.closeInfo as DisconnectInfo)
        } finally {
          await this.move('finished')
        }
        break
      case ConnectionStates.CLOSED:
        // Reached from `refused`/`closedWhileConnecting` (never connected) or `disconnecting`.
        if (from !== ConnectionStates.DISCONNECTING) await releaseAll(this)
        this.resolveFinished()
        break
    }
  }

  private resolveFinished (): void {
    if (this.finishedPromise === undefined) this.finishedPromise = settled
    else this.settleFinished?.()
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

  /** ws emits 'close' once. */
  private onClose (code: number, reason: string): void {
    this.inbox.clear()
    this.requests?.close()
    this.server.detach(this)
    this.closeInfo = this.terminatedFor ?? { code, reason }
    if (events.connectionClose.hasSubscribers) {
      events.connectionClose.publish({ nodeId: this.server.nodeId, sessionId: this.id, socket: this, ...this.closeInfo })
    }
    this.move('socketClosed').catch((err: unknown) => this.reportError(err, undefined))
  }

  // ---- inbound --------------------------------------------------------------------------------

  private receive (data: WebSocket.RawData, isBinary: boolean): void {
    // ws goes on emitting frames after a close frame went out (until the peer answers or the
    // close timeout ends it): a socket closed for abuse (1008, 1009, 1013) must not be served.
    if (!isWritable(this.ws)) return
    if (this.rate !== undefined && !this.rejoin?.take(data, isBinary) && !this.admit()) return
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
    if (events.frameIn.hasSubscribers) events.frameIn.publish({ nodeId: this.server.nodeId, sessionId: this.id, socket: this, frame: text })
    // A reply settles its request at once, past the inbox: a handler awaiting `ask()` holds the inbox.
    if (text.includes('"reply"') && this.takeReply(text)) return
    this.inbox.push(text)
  }

  /** True when `text` was a `reply` frame, now handled. */
  private takeReply (text: string): boolean {
    const decoded = decodeClientFrame(text)
    if (!decoded.ok || decoded.frame.type !== 'reply') return false
    this.reply(decoded.frame)
    return true
  }

  /** Applies the rate limit; false when the frame must be dropped unparsed. */
  private admit (): boolean {
    const verdict = (this.rate as RateWindow).take(performance.now())
    if (verdict === 'allow') return true
    if (verdict !== 'drop') {
      if (events.rateLimited.hasSubscribers) {
        events.rateLimited.publish({ nodeId: this.server.nodeId, sessionId: this.id, socket: this, closed: verdict === 'abuse' })
      }
      this.sendError('RATE_LIMITED', 'too many frames: slow down')
      if (verdict === 'abuse') this.close(CloseCodes.POLICY_VIOLATION, 'rate limit exceeded repeatedly')
    }
    return false
  }
}

/** A read-only view of a Set: what handlers see as `socket.channels` (no `add`, no `delete`). */
export class ReadonlySetView<T> implements ReadonlySet<T> {
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
