/**
 * The public types of fastify-channels, including the augmentation of `FastifyInstance`.
 */
import type { FastifyRequest } from 'fastify'
import type { Static, TSchema } from '@sinclair/typebox'
import type { ChannelsClient } from '../client/index.js'
import type { AnyEvents, EventTypeMap } from '../schemas/events.js'
import type { InjectOptions } from './contract/inject.js'
import type { PresenceState } from '../schemas/protocol.js'
import type { NodeStats } from './node/notices.js'

export type { NodeStats, NodeEvent, BusyChannel } from './node/notices.js'

/**
 * The per-connection context: a plain object that lives as long as the connection. Augment it
 * to type your own fields:
 * `declare module 'fastify-channels' { interface ChannelContext { nick?: string } }`
 */
export interface ChannelContext {
  [key: string]: unknown
}

export interface SendOptions {
  /** the frame's event name ['message'] */
  event?: string
  /** the channel the frame names, if any */
  channel?: string
  /** skip the frame for a socket that still has outbound bytes queued, instead of queueing it (no history offset, never replayed) [false] */
  volatile?: boolean
}

export interface BroadcastOptions {
  /** the frame's event name ['message'] */
  event?: string
  /** skip the frame for a socket that still has outbound bytes queued, instead of queueing it (no history offset, never replayed) [false] */
  volatile?: boolean
}

export interface ChannelBroadcastOptions {
  /** the frame's event name ['message'] */
  event?: string
  /** the target channel; without it, every channel the sender holds */
  channel?: string
  /** skip the frame for a socket that still has outbound bytes queued, instead of queueing it (no history offset, never replayed) [false] */
  volatile?: boolean
}

/** The socket handed to handlers. */
export interface ChannelSocket {
  /** the session id: unguessable, unique per connection */
  readonly id: string
  /** the Fastify request of the upgrade */
  readonly request: FastifyRequest
  /** the connection's user id (the `user` option); undefined for an anonymous connection */
  readonly user?: string
  /** a plain object that lives as long as the connection */
  readonly context: ChannelContext
  /** the channels this socket is subscribed to, in subscription order */
  readonly channels: ReadonlySet<string>
  /** to this socket only */
  send (data: unknown, options?: SendOptions): void
  /** to every other socket, on every node */
  broadcast (data: unknown, options?: BroadcastOptions): Promise<void>
  /** to every other socket subscribed to `channel` (or to any channel this socket holds) */
  broadcastChannel (data: unknown, options?: ChannelBroadcastOptions): Promise<void>
  /** like `broadcast`, the sender included */
  sendAndBroadcast (data: unknown, options?: BroadcastOptions): Promise<void>
  /** like `broadcastChannel`, the sender included */
  sendAndBroadcastChannel (data: unknown, options?: ChannelBroadcastOptions): Promise<void>
  /** subscribes server-side (runs `subscribe` handlers; the client gets `subscribed`) */
  subscribe (channel: string): Promise<void>
  /** unsubscribes server-side (the client gets `unsubscribed`) */
  unsubscribe (channel: string): Promise<void>
  /** closes the connection [1000] */
  close (code?: number, reason?: string): void
  /**
   * presence: this socket, which must hold `channel` (else a ChannelError NOT_SUBSCRIBED), is
   * present in it under `key` with `meta` (JSON data, default {}); tracking again replaces the meta.
   * Without a key, under the connection's user (a ChannelError INVALID_PRESENCE when it has none).
   */
  track (channel: string, key?: string, meta?: unknown): Promise<void>
  /** presence: this socket is no longer present in `channel` (leaving or closing untracks too) */
  untrack (channel: string): Promise<void>
  /**
   * A server → client request: resolves with what the client's handler for `event` returned.
   * Rejects with FST_CHANNELS_REQUEST_TIMEOUT [timeout 5000 ms], FST_CHANNELS_CLIENT_ERROR (its
   * `clientCode`, e.g. NO_HANDLER, and `message` are the client's), FST_CHANNELS_DISCONNECTED.
   */
  ask (event: string, data?: unknown, options?: AskOptions): Promise<unknown>
}

/** The `user` option: the user id of a connection, from its upgrade request (may be async). */
export type UserLookup = (request: FastifyRequest) => string | undefined | Promise<string | undefined>

/** What `fastify.channels.user(userId)` returns. */
export interface UserHandle {
  /** to every open connection of the user, on every node (none is not an error) */
  send (data: unknown, options?: Omit<SendOptions, 'volatile'>): Promise<void>
  /** closes every connection of the user [1008: the bundled client does not reconnect] */
  disconnect (code?: number, reason?: string): Promise<void>
  /** the session ids of the user's open connections, over every node */
  sessions (): Promise<string[]>
}

/** `socket.ask()` and `fastify.channels.ask()` options. */
export interface AskOptions {
  /** ms to wait for the reply [5000] */
  timeout?: number
}

/** A channel filter: a string matches one channel exactly, a RegExp by pattern. */
export type ChannelFilter = string | RegExp

export interface MessageMeta {
  event: string
  channel?: string
  id?: number
}

export interface DisconnectInfo {
  code: number
  reason: string
}

export interface ChannelFilterOptions {
  channel?: ChannelFilter
}

export interface MessageHandlerOptions<S extends TSchema = TSchema> extends ChannelFilterOptions {
  /** runs only for messages with this exact event name */
  event?: string
  /** validates the payload; the handler's `data` is typed `Static<S>` */
  schema?: S
}

/** `fastify.channels.emits(event, options)`: a server → client event, for the contract document. */
export interface EmitsOptions<S extends TSchema = TSchema> {
  /** the channel (or channels, by pattern) the event is sent to; absent: sent to connections, not to a channel */
  channel?: ChannelFilter
  /** the event's data */
  schema: S
}

export type ChannelEvent = 'connect' | 'message' | 'subscribe' | 'subscribed' | 'unsubscribe' | 'error' | 'disconnect' | 'finish'

export type SocketHandler = (socket: ChannelSocket) => unknown
export type MessageHandler<Data = unknown> = (socket: ChannelSocket, data: Data, meta: MessageMeta) => unknown
export type SubscriptionHandler = (socket: ChannelSocket, channel: string) => unknown
export type ErrorHandler = (socket: ChannelSocket, error: Error) => unknown
export type DisconnectHandler = (socket: ChannelSocket, info: DisconnectInfo) => unknown

/** `fastify.channels`: the handler registry (the event system). */
export interface ChannelsRegistry {
  on (event: 'connect' | 'finish', handler: SocketHandler): ChannelsRegistry
  on<S extends TSchema>(event: 'message', options: MessageHandlerOptions<S> & { schema: S }, handler: MessageHandler<Static<S>>): ChannelsRegistry
  on (event: 'message', options: Omit<MessageHandlerOptions, 'schema'>, handler: MessageHandler<unknown>): ChannelsRegistry
  on (event: 'message', handler: MessageHandler<unknown>): ChannelsRegistry
  on (event: 'subscribe' | 'subscribed' | 'unsubscribe', options: ChannelFilterOptions, handler: SubscriptionHandler): ChannelsRegistry
  on (event: 'subscribe' | 'subscribed' | 'unsubscribe', handler: SubscriptionHandler): ChannelsRegistry
  on (event: 'error', options: ChannelFilterOptions, handler: ErrorHandler): ChannelsRegistry
  on (event: 'error', handler: ErrorHandler): ChannelsRegistry
  on (event: 'disconnect', options: ChannelFilterOptions, handler: DisconnectHandler): ChannelsRegistry
  on (event: 'disconnect', handler: DisconnectHandler): ChannelsRegistry
  /**
   * This node now: `{ node, connections, subscriptions, channels, publicationsPerSecond,
   * deliveriesPerSecond, busiest, events, ... }` (`sockets` is `connections`). See docs/admin.md.
   */
  stats (): NodeStats
  /**
   * The stats of every live node that shares the broker, this one first, each at most 2 s old.
   * The first call waits half a second for the other nodes' first answers; calls keep the nodes
   * publishing their stats (once a second) for 30 s after the last one.
   */
  nodes (): Promise<NodeStats[]>
  /**
   * A history channel's stream: its epoch, top offset and last `last` stored messages [the
   * `history` option's size], oldest first. Rejects with FST_CHANNELS_NO_HISTORY on a channel
   * without history.
   */
  history (channel: string, options?: { last?: number }): Promise<ChannelHistoryView>
  /** declares a server → client event for the contract document (changes nothing at run time) */
  emits<S extends TSchema> (event: string, options: EmitsOptions<S>): ChannelsRegistry
  /** the AsyncAPI 3.0.0 document of the channels API: handlers, `emits` declarations, protocol frames */
  asyncapi (options?: AsyncApiOptions): AsyncApiDocument
  /** a connected client over an in-memory connection (no port): the app's hooks run on its upgrade */
  inject<E extends EventTypeMap<E> = AnyEvents> (options?: InjectOptions): Promise<ChannelsClient<E>>
  /** presence: who is in `channel` over every node: `{ [key]: [{ ref, meta }, ...] }` */
  presence (channel: string): Promise<PresenceState>
  /** a user's connections over every node (the `user` option): send, disconnect, sessions */
  user (userId: string): UserHandle
  /** `socket.ask()` on whichever node holds `sessionId` (NoSocketError when none does) */
  ask (sessionId: string, event: string, data?: unknown, options?: AskOptions): Promise<unknown>
}

/** What `fastify.channels.history()` resolves. */
export interface ChannelHistoryView {
  /** the stream's epoch: changes whenever its stored history was lost */
  epoch: string
  /** the last publication's offset (0 before the first) */
  offset: number
  /** the stored messages, oldest first */
  messages: Array<{ offset: number, event: string, data: unknown }>
}

export type BroadcastFn = (data: unknown, options?: BroadcastOptions) => Promise<void>
export type BroadcastChannelFn = (channel: string, data: unknown, options?: BroadcastOptions) => Promise<void>
export type SendFn = (sessionId: string, data: unknown, options?: SendOptions) => Promise<void>

declare module 'fastify' {
  interface FastifyInstance {
    /** the handler registry of fastify-channels */
    channels: ChannelsRegistry
    /** to every connected socket, on every node */
    broadcast: BroadcastFn
    /** to every socket subscribed to `channel`, on every node */
    broadcastChannel: BroadcastChannelFn
    /** to the one socket with `sessionId`, on whichever node holds it */
    send: SendFn
  }
}

/**
 * The public types of the AsyncAPI document (a leaf module: plugin/types.ts names them).
 */
export interface AsyncApiOptions {
  /** the document's info [{ title: 'Channels API', version: '1.0.0' }] */
  info?: { title?: string, version?: string, description?: string }
  /** host (and port) of the server entry ['localhost'; the served route uses the request's Host] */
  host?: string
  /** 'ws' or 'wss' ['ws'; the served route: 'wss' when the request came over https] */
  protocol?: 'ws' | 'wss'
}

type JsonObject = Record<string, unknown>

/** An AsyncAPI 3.0.0 document (plain JSON). */
export interface AsyncApiDocument {
  asyncapi: '3.0.0'
  info: { title: string, version: string, description?: string }
  defaultContentType: string
  servers: Record<string, JsonObject>
  channels: Record<string, JsonObject>
  operations: Record<string, JsonObject>
  components: { messages: Record<string, JsonObject>, schemas: Record<string, JsonObject> }
}
