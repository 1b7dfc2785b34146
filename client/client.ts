/**
 * The client behind `connect()`: subscriptions, requests, listeners, glued to one Socket.
 * Untyped at run time; `index.ts` gives it its typed face (`ChannelsClient<Events>`).
 */
import { encodeFrame } from '../schemas/wire.js'
import type { MessageFrame, PresenceState, ServerFrame } from '../schemas/protocol.js'
import { Subscription, type ChannelHost, type JoinOptions } from './channel.js'
import { ChannelsClientError, ClientErrorCodes, usageError } from './errors.js'
import { PresenceBook, type PresenceListener } from './presence.js'
import { RequestHandlers, type RequestHandler } from './requests.js'
import { errorFromFrame, Push, type Pending } from './push.js'
import { Socket, type CloseInfo, type SocketOwner, type Status, type WebSocketConstructor } from './socket.js'
import { defaultHeartbeat, defaultMaxQueue, defaultReconnectJitter, defaultTimeout, type ClientOptions, type SubscribedInfo } from './options.js'
import { exponentialBackoff } from './timer.js'
import { channelNameProblem } from '../schemas/channel.js'

export { defaultHeartbeat, defaultMaxQueue, defaultTimeout, type ClientOptions, type SubscribedInfo } from './options.js'

export interface MessageMeta<E extends string = string> {
  event: E
  channel?: string
  /** history channels: the publication's offset in its channel */
  offset?: number
}

type Listener = (data: unknown, meta: MessageMeta) => void

export class Client implements SocketOwner, ChannelHost {
  private readonly socket: Socket
  private readonly subscriptions = new Map<string, Subscription>()
  /** frames on the wire (or queued) by id, waiting for their answer */
  private readonly pending = new Map<number, Pending>()
  private readonly listeners = new Map<string, Set<Listener>>()
  private readonly statusListeners = new Set<(status: Status) => void>()
  private readonly errorListeners = new Set<(error: ChannelsClientError) => void>()
  private readonly subscribedListeners = new Set<(channel: string, info: SubscribedInfo) => void>()
  private readonly presenceBook = new PresenceBook()
  /** server → client requests: `handle()`'s handlers and the replies */
  private readonly requestHandlers = new RequestHandlers((text) => this.socket.write(text))
  /** ms a request or subscription waits for its answer */
  readonly timeout: number
  private lastId = 0

  constructor (url: string, options: ClientOptions = {}) {
    const WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (typeof WebSocket !== 'function') {
      throw usageError(ClientErrorCodes.NO_WEBSOCKET, 'fastify-channels: no WebSocket here; pass one: connect(url, { WebSocket }) with `import WebSocket from \'ws\'`')
    }
    const { params } = options
    this.timeout = options.timeout ?? defaultTimeout
    this.socket = new Socket({
      url,
      WebSocket,
      params: typeof params === 'function' ? params : params === undefined ? undefined : () => params,
      reconnect: options.reconnect ?? true,
      backoff: options.backoff ?? exponentialBackoff(),
      reconnectJitter: options.reconnectJitter ?? defaultReconnectJitter,
      maxQueue: options.maxQueue ?? defaultMaxQueue,
      heartbeat: options.heartbeat === false ? false : options.heartbeat ?? defaultHeartbeat,
      connectTimeout: this.timeout
    }, this)
    this.socket.open()
  }

  get status (): Status {
    return this.socket.status
  }

  get sessionId (): string | undefined {
    return this.socket.sessionId
  }

  /** the channels held (or being rejoined after a reconnect), in subscription order */
  get channels (): string[] {
    return [...this.subscriptions.values()]
      .filter((subscription) => subscription.state === 'joined' || subscription.state === 'rejoining')
      .map((subscription) => subscription.channel)
  }

  /** frames waiting for a connection */
  get queued (): number {
    return this.socket.queued
  }

  subscribe (channel: string, options: { timeout?: number, last?: number, delta?: boolean } = {}): Promise<void> {
    if (this.status === 'closed') return Promise.reject(closedError())
    const invalid = invalidChannel(channel)
    if (invalid !== undefined) return Promise.reject(invalid)
    const existing = this.subscriptions.get(channel)
    if (existing !== undefined) return existing.promise ?? Promise.resolve()
    const join: JoinOptions = options.last === undefined ? {} : { last: options.last }
    if (options.delta === true) join.delta = true
    const subscription = new Subscription(channel, this, 'waiting', join)
    this.subscriptions.set(channel, subscription)
    const joined = subscription.wait(options.timeout ?? this.timeout)
    subscription.join()
    return joined
  }

  unsubscribe (channel: string, options: { timeout?: number } = {}): Promise<void> {
    const invalid = invalidChannel(channel)
    if (invalid !== undefined) return Promise.reject(invalid)
    this.subscriptions.get(channel)?.cancel()
    this.presenceBook.forget(channel, callSafely)
    // Offline there is nothing to undo: the next session starts without the channel.
    if (!this.socket.isOpen) return Promise.resolve()
    const id = this.nextId()
    const push = new Push<void>(id, {
      timeout: options.timeout ?? this.timeout,
      value: () => undefined,
      what: `the unsubscription from "${channel}"`,
      done: () => this.forget(id),
      whenDropped: 'resolve', // the next session does not hold the channel: done either way
      channel
    })
    this.pending.set(id, push)
    push.sent = this.socket.write(encodeFrame({ type: 'unsubscribe', channel, id }))
    return push.promise
  }

  on (event: string, listener: Listener): () => void {
    let set = this.listeners.get(event)
    if (set === undefined) this.listeners.set(event, set = new Set())
    return subscribeTo(set, listener)
  }

  /** who is in `channel` now: `{}` when none is known (not subscribed, or not a presence channel) */
  presence (channel: string): PresenceState {
    return this.presenceBook.state(channel)
  }

  /** Listens to presence changes of `channel`: the new state and what joined and left. */
  onPresence (channel: string, listener: PresenceListener): () => void {
    return this.presenceBook.on(channel, listener)
  }

  onStatus (listener: (status: Status) => void): () => void {
    return subscribeTo(this.statusListeners, listener)
  }

  onError (listener: (error: ChannelsClientError) => void): () => void {
    return subscribeTo(this.errorListeners, listener)
  }

  onSubscribed (listener: (channel: string, info: SubscribedInfo) => void): () => void {
    return subscribeTo(this.subscribedListeners, listener)
  }

  send (event: string, data: unknown, options: { channel?: string } = {}): boolean {
    if (this.status === 'closed') return false
    const invalid = options.channel === undefined ? undefined : invalidChannel(options.channel)
    if (invalid !== undefined) throw invalid
    return this.socket.push(encodeData(messageFrame(event, options.channel, data)))
  }

  request (event: string, data: unknown, options: { channel?: string, timeout?: number } = {}): Promise<unknown> {
    if (this.status === 'closed') return Promise.reject(closedError())
    const { channel } = options
    const invalid = channel === undefined ? undefined : invalidChannel(channel)
    if (invalid !== undefined) return Promise.reject(invalid)
    const id = this.nextId()
    let text: string
    try {
      text = encodeData(messageFrame(event, channel, data, id))
    } catch (err) {
      return Promise.reject(err)
    }
    const push = new Push<unknown>(id, {
      timeout: options.timeout ?? this.timeout,
      value: (frame) => frame.type === 'ack' ? frame.data : undefined,
      what: `the request "${event}"`,
      whenDropped: 'reject', // the handler may or may not have run: the caller must know
      done: () => {
        this.forget(id)
        if (!push.sent) this.socket.unqueue(text)
      },
      channel
    })
    this.pending.set(id, push)
    if (!this.socket.push(text, () => { push.sent = true })) {
      push.fail(new ChannelsClientError(ClientErrorCodes.QUEUE_FULL, `offline and ${this.socket.queued} frames are queued already: "${event}" was not sent`))
    }
    return push.promise
  }

  /** Answers the server's requests for `event` (`socket.ask`); returns the function that stops. */
  handle (event: string, handler: RequestHandler): () => void {
    return this.requestHandlers.handle(event, handler)
  }

  close (): void {
    this.socket.close()
  }

  // ---- SocketOwner ----------------------------------------------------------------------

  statusChanged (status: Status): void {
    for (const listener of [...this.statusListeners]) callSafely(listener, status)
  }

  opened (): void {
    for (const subscription of [...this.subscriptions.values()]) subscription.join()
  }

  received (frame: ServerFrame): void {
    switch (frame.type) {
      case 'message': {
        // A history channel's publication seen already (a replay overlapping live traffic after
        // a resync) is dropped; a newer one moves the channel's position on.
        // A delta is rebuilt into whole data here.
        if (frame.offset !== undefined && frame.channel !== undefined &&
          this.subscriptions.get(frame.channel)?.publication(frame as typeof frame & { offset: number }) === false) return
        if (frame.delta !== undefined) return // a delta no subscription rebuilt (the channel was left)
        const set = this.listeners.get(frame.event)
        if (set === undefined) return
        const meta: MessageMeta = frame.channel === undefined ? { event: frame.event } : { event: frame.event, channel: frame.channel }
        if (frame.offset !== undefined) meta.offset = frame.offset
        for (const listener of [...set]) callSafely(listener, frame.data, meta)
        return
      }
      case 'welcome':
      case 'pong': return // liveness only: any frame proves the path works
      case 'presence':
      case 'presence_diff':
        // A frame already on its way when the client unsubscribed is not news any more.
        if (this.subscriptions.has(frame.channel)) this.presenceBook.received(frame, callSafely)
        return
      case 'request':
        this.requestHandlers.received(frame).catch((err: unknown) => queueMicrotask(() => { throw err }))
        return
    }
    if (frame.id !== undefined) {
      const pending = this.pending.get(frame.id)
      this.pending.delete(frame.id)
      pending?.answer(frame) // no one waits for a late answer to a timed-out frame
      return
    }
    // Frames without an id: the server acted on its own.
    switch (frame.type) {
      case 'subscribed': {
        let subscription = this.subscriptions.get(frame.channel)
        if (subscription === undefined) {
          // A stream restart (it carries `recovered`) of a channel this client left: not a join.
          if (frame.recovered !== undefined) return
          this.subscriptions.set(frame.channel, subscription = new Subscription(frame.channel, this, 'joined'))
        }
        subscription.confirmed(frame)
        return
      }
      case 'unsubscribed':
        if (this.subscriptions.get(frame.channel)?.state === 'joined') this.subscriptions.delete(frame.channel)
        this.presenceBook.forget(frame.channel, callSafely)
        return
      case 'error':
        this.refused(errorFromFrame(frame))
    }
  }

  badFrame (message: string): void {
    this.refused(new ChannelsClientError('BAD_FRAME', `the server sent a frame the client cannot read: ${message}`))
  }

  dropped (info: CloseInfo, final: boolean): void {
    for (const [id, pending] of [...this.pending]) {
      if (!pending.dropped(final)) this.pending.delete(id)
    }
    if (!final) return
    for (const subscription of this.subscriptions.values()) subscription.close()
    this.subscriptions.clear()
    this.presenceBook.forgetAll(callSafely)
  }

  // ---- ChannelHost ----------------------------------------------------------------------

  nextId (): number {
    this.lastId = this.lastId >= Number.MAX_SAFE_INTEGER ? 1 : this.lastId + 1
    return this.lastId
  }

  write (text: string): boolean {
    return this.socket.write(text)
  }

  expect (id: number, pending: Pending): void {
    this.pending.set(id, pending)
  }

  forget (id: number): void {
    this.pending.delete(id)
  }

  remove (subscription: Subscription): void {
    if (this.subscriptions.get(subscription.channel) === subscription) this.subscriptions.delete(subscription.channel)
  }

  refused (error: ChannelsClientError): void {
    for (const listener of [...this.errorListeners]) callSafely(listener, error)
  }

  subscribed (channel: string, info: SubscribedInfo): void {
    for (const listener of [...this.subscribedListeners]) callSafely(listener, channel, info)
  }
}

function messageFrame (event: string, channel: string | undefined, data: unknown, id?: number): MessageFrame {
  const frame: MessageFrame = { type: 'message', event, data }
  if (channel !== undefined) frame.channel = channel
  if (id !== undefined) frame.id = id
  return frame
}

/** Small helpers of the client: safe listener calls, listener sets, the errors it builds. */
/** Calls a user's listener; its exception is rethrown later, so it cannot break the client. */
export function callSafely<A extends unknown[]> (fn: (...args: A) => void, ...args: A): void {
  try {
    fn(...args)
  } catch (err) {
    queueMicrotask(() => { throw err })
  }
}

export function subscribeTo<T> (set: Set<T>, item: T): () => void {
  set.add(item)
  return () => { set.delete(item) }
}

export function invalidChannel (channel: string): ChannelsClientError | undefined {
  const problem = channelNameProblem(channel)
  return problem === undefined ? undefined : new ChannelsClientError('INVALID_CHANNEL', problem, { channel })
}

export function closedError (): ChannelsClientError {
  return new ChannelsClientError(ClientErrorCodes.CLOSED, 'the client is closed')
}

/** A message frame as text; data JSON cannot carry (a BigInt, a cycle) is a TypeError coded UNSERIALIZABLE. */
function encodeData (frame: Parameters<typeof encodeFrame>[0]): string {
  try {
    return encodeFrame(frame)
  } catch (err) {
    throw usageError(ClientErrorCodes.UNSERIALIZABLE, `fastify-channels: data JSON cannot carry: ${(err as Error).message}`)
  }
}
