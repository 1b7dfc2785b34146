/**
 * The fastify-channels client, for browsers (served as `/channels/client.js`) and Node
 * (`import { connect } from 'fastify-channels/client'`, with `ws` passed as `WebSocket`).
 *
 * ```ts
 * const client = connect<ChatEvents>('/ws')
 * await client.subscribe('room-42')
 * client.on('chat', (line, { channel }) => render(line))
 * const reply = await client.request('chat', { text: 'hi' }, { channel: 'room-42' })
 * ```
 */
import type {
  AnswerData, AnyEvents, AskData, AskEvent, EventTypeMap, ReceiveData, ReceiveEvent, ReplyData, SendData, SendEvent
} from '../schemas/events.js'
import { Client, type ClientOptions, type MessageMeta, type SubscribedInfo } from './client.js'
import type { ChannelsClientError } from './errors.js'
import type { PresenceListener } from './presence.js'
import type { Status } from './socket.js'
import type { PresenceState } from '../schemas/protocol.js'

export interface SendOptions {
  /** the channel the message is for (the client must hold it, else NOT_SUBSCRIBED) */
  channel?: string
}

export interface RequestOptions extends SendOptions {
  /** ms to wait for the ack before rejecting with TIMEOUT [the client's `timeout`, 10000] */
  timeout?: number
}

/** A connected client, typed by the event map `E` (see `EventMap`). */
export interface ChannelsClient<E extends EventTypeMap<E> = AnyEvents> {
  /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
  readonly status: Status
  /** the session id of the current connection (a new one after every reconnect) */
  readonly sessionId: string | undefined
  /** the channels held, in subscription order (kept across reconnects) */
  readonly channels: string[]
  /** frames queued while offline */
  readonly queued: number

  /**
   * Resolves once subscribed; rejects with the error frame's code (FORBIDDEN, ...). On a
   * history channel, `last` asks for its last n stored publications (they follow `subscribed`
   * as ordinary messages); after a reconnect the client asks for what it missed instead.
   * `delta: true` asks for deltas on a channel with `history.delta` (listeners still get
   * whole data; elsewhere whole payloads come).
   */
  subscribe (channel: string, options?: { timeout?: number, last?: number, delta?: boolean }): Promise<void>
  /** Resolves once unsubscribed (at once when offline: the next session will not hold it). */
  unsubscribe (channel: string, options?: { timeout?: number }): Promise<void>

  /** Listens to a server event; returns the function that stops listening. */
  on<K extends ReceiveEvent<E>> (event: K, listener: (data: ReceiveData<E, K>, meta: MessageMeta<K>) => void): () => void
  /** Who is in a presence channel now: `{ [key]: [{ ref, meta }, ...] }`, `{}` when none is known. */
  presence (channel: string): PresenceState
  /**
   * Listens to a presence channel: the new state and what joined and left (after a reconnect,
   * the difference from the state before); returns the function that stops listening.
   */
  onPresence (channel: string, listener: PresenceListener): () => void
  /** Listens to status changes (not called for the status at the time of the call). */
  onStatus (listener: (status: Status) => void): () => void
  /** Listens to errors no promise receives: error frames without an id, refused rejoins. */
  onError (listener: (error: ChannelsClientError) => void): () => void
  /**
   * Runs on every `subscribed`: first subscriptions, resubscriptions after a reconnect, and a
   * history channel's stream restarting under a new epoch while it is held. On a history
   * channel it carries the stream's `epoch` and `offset`, and on a resubscription or a restart
   * `recovered`: when false, publications were missed and the app must reload what it shows.
   */
  onSubscribed (listener: (channel: string, info: SubscribedInfo) => void): () => void

  /**
   * Sends without waiting for an answer (at most once). Offline it is queued; returns false
   * when it was dropped instead (queue full, or client closed).
   */
  send<K extends SendEvent<E>> (event: K, data: SendData<E, K>, options?: SendOptions): boolean
  /** Sends with an id; resolves with the ack's data, rejects with the error frame's code. */
  request<K extends SendEvent<E>> (event: K, data: SendData<E, K>, options?: RequestOptions): Promise<ReplyData<E, K>>

  /**
   * Answers the server's requests for `event` (`socket.ask`): what `handler` returns (or
   * resolves) is the reply; what it throws reaches the server as the error's `code`
   * (`HANDLER_ERROR` without one) and message. Without a handler the client answers
   * `NO_HANDLER`. Returns the function that removes the handler.
   */
  handle<K extends AskEvent<E>> (event: K, handler: (data: AskData<E, K>) => AnswerData<E, K> | Promise<AnswerData<E, K>>): () => void

  /** Closes for good: no reconnect; everything pending rejects. */
  close (): void
}

/**
 * Opens a client. `url` may be relative in a browser (`'/ws'` → `ws(s)://<host>/ws`).
 * Pass an event map for end-to-end types: `connect<EventMap<typeof myEvents>>('/ws')`.
 */
export function connect<E extends EventTypeMap<E> = AnyEvents> (url: string, options?: ClientOptions): ChannelsClient<E> {
  return new Client(url, options) as unknown as ChannelsClient<E>
}

export type { ClientOptions, MessageMeta, SubscribedInfo } from './client.js'
export { defaultHeartbeat, defaultMaxQueue, defaultTimeout } from './client.js'
export { ChannelsClientError, ClientErrorCodes, type ClientErrorCode } from './errors.js'
export type { Status, WebSocketConstructor, WebSocketLike } from './socket.js'
export { exponentialBackoff, type Backoff, type BackoffOptions } from './timer.js'
export type {
  AnswerData, AnyEvents, AskData, AskEvent, EventMap, EventSchemas, EventTypeMap, EventTypes, ReceiveData, ReceiveEvent, ReplyData,
  SendData, SendEvent
} from '../schemas/events.js'
export type { ValidationIssue, PresenceState, PresenceEntry } from '../schemas/protocol.js'
export type { ErrorCode } from '../schemas/constants.js'
export type { PresenceDiff, PresenceListener } from './presence.js'
