/**
 * The plugin's events, one `node:diagnostics_channel` channel each, named `fastify-channels:*`.
 * Everything that watches the plugin subscribes to them: the message log, the Prometheus
 * metrics, the OpenTelemetry traces, and any app (`diagnostics_channel.subscribe(name, fn)`).
 *
 * Publishing costs one flag check when nobody subscribes: every publisher reads
 * `channel.hasSubscribers` before it builds a message object. Every message names the node
 * (`nodeId`) it comes from, so a process that runs several apps can tell them apart.
 * docs/observability.md lists every event and its fields.
 */
import { channel } from 'node:diagnostics_channel'
import type { ChannelSocket } from '../types.js'

/** What the refused upgrade ran into: the `origins` check, `maxConnections`, a closing node, or an app hook (any other non-101 answer). */
export type RefusalReason = 'origin' | 'cap' | 'closing' | 'hook'

export interface ConnectionOpenEvent { nodeId: string, sessionId: string, socket: ChannelSocket }
export interface ConnectionRefusedEvent { nodeId: string, reason: RefusalReason, statusCode: number }
export interface ConnectionCloseEvent { nodeId: string, sessionId: string, socket: ChannelSocket, code: number, reason: string }
/** One inbound or outbound text frame of one socket, as it is on the wire. */
export interface FrameEvent { nodeId: string, sessionId: string, socket: ChannelSocket, frame: string }
/** A `message` frame that passed the channel check; `handled` is false when no handler matched its event (NO_HANDLER). */
export interface MessageReceivedEvent { nodeId: string, sessionId: string, event: string, channel: string | undefined, handled: boolean }
export interface ErrorSentEvent { nodeId: string, sessionId: string, code: string }
/**
 * The run of the message handlers that matched one message, published at its start and, the
 * same object completed, at its end (`durationMs`, `failed`: a handler threw or rejected).
 */
export interface HandlerRunEvent {
  nodeId: string
  sessionId: string
  event: string
  channel: string | undefined
  /** `performance.now()` at the start */
  startTime: number
  durationMs?: number
  failed?: boolean
}
export type PublicationKind = 'all' | 'channels' | 'history'
/**
 * One publication handed to the broker (`channels`: how many channels it goes to), at its start
 * and, the same object completed, once the broker took it or failed (`durationMs`, `failed`).
 * A subscriber may set `traceContext` at the start (a W3C `traceparent`): it crosses the
 * broker with the publication and comes back on the `delivery` event of the other nodes.
 */
export interface PublicationEvent {
  nodeId: string
  kind: PublicationKind
  channels: number
  traceContext?: string
  /** `performance.now()` at the start */
  startTime: number
  durationMs?: number
  failed?: boolean
}
/**
 * Local sockets that got one publication: `remote` when it came from another node through the
 * broker (then `traceContext` is the publisher's, when it sent one). `count` for a history
 * channel is its members at delivery time (a joiner still catching up gets it later).
 */
export interface DeliveryEvent {
  nodeId: string
  kind: PublicationKind | 'session'
  count: number
  remote: boolean
  traceContext?: string
}
export interface SlowConsumerEvent { nodeId: string, sessionId: string, socket: ChannelSocket, bufferedAmount: number }
/** A frame refused by the rate limit: `closed` when the socket was closed for it (1008). */
export interface RateLimitedEvent { nodeId: string, sessionId: string, socket: ChannelSocket, closed: boolean }
/**
 * The node lost a part of its broker (`error`) or has it back (`outageMs`, `dropped`: publications
 * lost meanwhile). `shard` names the part (one Redis or NATS server: its address; a Redis Cluster
 * master: its address and slots); `outages` is how many shards are still down after this
 * transition, so the broker as a whole is up when it is 0.
 */
export interface BrokerDownEvent { nodeId: string, engine: string, shard: string, outages: number, error: unknown }
export interface BrokerUpEvent { nodeId: string, engine: string, shard: string, outages: number, outageMs: number, dropped: number }
/** A subscribe with `since` on a history channel: whether the missed publications were replayed. */
export interface RecoveryEvent { sessionId: string, channel: string, recovered: boolean }

/** A typed diagnostics channel: what `publish` accepts and subscribers receive. */
export interface EventChannel<Message> {
  readonly name: string | symbol
  readonly hasSubscribers: boolean
  publish (message: Message): void
  subscribe (listener: (message: Message, name: string | symbol) => void): void
  unsubscribe (listener: (message: Message, name: string | symbol) => void): boolean
}

function eventChannel<Message> (name: string): EventChannel<Message> {
  return channel(`fastify-channels:${name}`) as unknown as EventChannel<Message>
}

/** Every event channel, by the short name used in the docs (`fastify-channels:<name>`). */
export const events = Object.freeze({
  connectionOpen: eventChannel<ConnectionOpenEvent>('connection-open'),
  connectionRefused: eventChannel<ConnectionRefusedEvent>('connection-refused'),
  connectionClose: eventChannel<ConnectionCloseEvent>('connection-close'),
  frameIn: eventChannel<FrameEvent>('frame-in'),
  frameOut: eventChannel<FrameEvent>('frame-out'),
  messageReceived: eventChannel<MessageReceivedEvent>('message-received'),
  errorSent: eventChannel<ErrorSentEvent>('error-sent'),
  handlerStart: eventChannel<HandlerRunEvent>('handler-start'),
  handlerEnd: eventChannel<HandlerRunEvent>('handler-end'),
  publicationStart: eventChannel<PublicationEvent>('publication-start'),
  publicationEnd: eventChannel<PublicationEvent>('publication-end'),
  delivery: eventChannel<DeliveryEvent>('delivery'),
  slowConsumer: eventChannel<SlowConsumerEvent>('slow-consumer'),
  rateLimited: eventChannel<RateLimitedEvent>('rate-limited'),
  brokerDown: eventChannel<BrokerDownEvent>('broker-down'),
  brokerUp: eventChannel<BrokerUpEvent>('broker-up'),
  recovery: eventChannel<RecoveryEvent>('recovery')
})

export type ChannelsEvents = typeof events

/** Starts a handler run: the message, or undefined (and nothing built) when nobody listens. */
export function handlerRunStart (nodeId: string, sessionId: string, event: string, channel: string | undefined): HandlerRunEvent | undefined {
  if (!events.handlerStart.hasSubscribers && !events.handlerEnd.hasSubscribers) return undefined
  const run: HandlerRunEvent = { nodeId, sessionId, event, channel, startTime: performance.now() }
  if (events.handlerStart.hasSubscribers) events.handlerStart.publish(run)
  return run
}

/** Ends a run begun by `handlerRunStart`. */
export function handlerRunEnd (run: HandlerRunEvent, failed: boolean): void {
  run.durationMs = performance.now() - run.startTime
  run.failed = failed
  if (events.handlerEnd.hasSubscribers) events.handlerEnd.publish(run)
}

/** Starts a publication: the message, or undefined when nobody listens. */
export function publicationStart (nodeId: string, kind: PublicationKind, channels: number): PublicationEvent | undefined {
  if (!events.publicationStart.hasSubscribers && !events.publicationEnd.hasSubscribers) return undefined
  const publication: PublicationEvent = { nodeId, kind, channels, startTime: performance.now() }
  if (events.publicationStart.hasSubscribers) events.publicationStart.publish(publication)
  return publication
}

export function publicationEnd (publication: PublicationEvent, failed: boolean): void {
  publication.durationMs = performance.now() - publication.startTime
  publication.failed = failed
  if (events.publicationEnd.hasSubscribers) events.publicationEnd.publish(publication)
}
