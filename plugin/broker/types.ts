/**
 * The broker seam as the node sees it: how one Fastify node hands channel traffic to the
 * others. A `Broker` is a factory: every Fastify instance that registers the plugin with it
 * calls `connect` once and gets its own `BrokerConnection` (one node). Local delivery never
 * waits for the broker: the plugin delivers to its own sockets first, then publishes, so a
 * plain publication never comes back to the node that made it. History publications do come
 * back to their publisher, in offset order, like to every other node.
 *
 * Frames travel pre-encoded (`frame` is the exact text sockets receive), so a message is
 * encoded once per publish and never once per socket.
 *
 * The memory and Redis brokers are built by `composeBroker` (compose.ts) from the parts an
 * engine implements (parts.ts); a Broker may also be written against this seam directly.
 */
import type { FastifyBaseLogger } from 'fastify'

/** To every socket on every node but `except` (a session id). */
export interface BroadcastDelivery {
  kind: 'all'
  frame: string
  except?: string
  /** skipped by a socket with outbound bytes still queued (`{ volatile: true }`); never stored in history */
  volatile?: boolean
  /** the publisher's trace context (a W3C `traceparent`), carried across the broker when a tracer gave it one */
  traceContext?: string
}

/**
 * To every socket subscribed to any of `channels`, once per socket: a socket subscribed to
 * several of them gets `frames[i]` for the first `channels[i]` it holds.
 */
export interface ChannelsDelivery {
  kind: 'channels'
  channels: string[]
  frames: string[]
  except?: string
  /** skipped by a socket with outbound bytes still queued (`{ volatile: true }`); never stored in history */
  volatile?: boolean
  /** the publisher's trace context (a W3C `traceparent`), carried across the broker when a tracer gave it one */
  traceContext?: string
}

/** To the one socket with `sessionId`. */
export interface SessionDelivery {
  kind: 'session'
  sessionId: string
  frame: string
  /** skipped by the socket if it has outbound bytes still queued (`{ volatile: true }`) */
  volatile?: boolean
}

export type Publication = BroadcastDelivery | ChannelsDelivery
export type Delivery = Publication | SessionDelivery

/** What the plugin gives a broker connection: the way in to this node's sockets. */
export interface BrokerNode {
  /** a stable random id of this node, unique per Fastify instance */
  readonly nodeId: string
  /** delivers a message another node published to this node's local sockets */
  deliver (delivery: Delivery): void
  /** whether this node holds the session right now (for brokers written against this seam; composed ones keep a registry) */
  hasSession (sessionId: string): boolean
  /** the Fastify instance's logger */
  readonly log: FastifyBaseLogger
  /** presence: tracks changed on another node (or a dead node's were removed); see PresenceBroker */
  presenceChanged? (channel: string, changes: PresenceChanges): void
  /** presence: changes may have been missed (an outage); the node reads its channels' state again */
  presenceReload? (): void
}

/** One node's link to the broker. Every method may reject when the engine is unreachable. */
export interface BrokerConnection {
  /** hands a message to every other node (never back to this one) */
  publish (publication: Publication): Promise<void>
  /** this node now has a local subscriber of `channel` (called once, on the first) */
  subscribe (channel: string): Promise<void>
  /** this node has no local subscriber of `channel` left */
  unsubscribe (channel: string): Promise<void>
  /** this node now holds `sessionId` */
  addSession (sessionId: string): Promise<void>
  /** this node no longer holds `sessionId` */
  removeSession (sessionId: string): Promise<void>
  /**
   * delivers `frame` to `sessionId` on whichever other node holds it; resolves `false` when
   * no node holds it, rejects when the engine cannot be asked; `volatile`: see SessionDelivery
   * (a broker that ignores it delivers the frame as a plain one)
   */
  sendToSession (sessionId: string, frame: string, volatile?: boolean): Promise<boolean>
  /** releases what `connect` opened; called once from `fastify.close()` */
  close (): Promise<void>
}

// ---- presence ----------------------------------------------------------------------------
// Optional for a broker connection: without these methods each node keeps the presence of its
// own sockets only. The memory and Redis brokers implement them.

/** One track: a socket present in a channel under `key`. `ref` is unguessable and never reused. */
export interface PresenceTrack {
  ref: string
  key: string
  /** the app's JSON data, as JSON text (encoded once, compared and relayed as it is) */
  meta: string
}

/** What changed in one channel's presence: `leaves` apply before `joins`. */
export interface PresenceChanges {
  joins: PresenceTrack[]
  /** the refs that left */
  leaves: string[]
}

export interface PresenceBroker {
  /**
   * records this node's own track changes in `channel` and hands them to every other node with
   * a subscriber of it (`BrokerNode.presenceChanged`), never back to this one
   */
  presenceUpdate (channel: string, changes: PresenceChanges): Promise<void>
  /** every track in `channel`, over every node */
  presenceState (channel: string): Promise<PresenceTrack[]>
}

/** Whether a broker connection shares presence (implements PresenceBroker). */
export function sharesPresence (connection: BrokerConnection): connection is BrokerConnection & PresenceBroker {
  const candidate = connection as Partial<PresenceBroker>
  return typeof candidate.presenceUpdate === 'function' && typeof candidate.presenceState === 'function'
}

export interface Broker {
  connect (node: BrokerNode): Promise<BrokerConnection>
}

// ---- history and recovery (docs/history.md) ---------------------------------------------
// Additive: a broker without these methods still works for every channel without history;
// the plugin refuses the `history` option with such a broker.

/** An epoch and a top offset outlive a channel's entries by at least this long: 24 hours. */
export const historyStateTtl = 24 * 60 * 60 * 1000

/** How much a history channel keeps: its last `size` publications, each for `ttl` ms. */
export interface HistoryLimits {
  size: number
  ttl: number
}

/** One stored publication; `frame` is the message frame with its `"offset"`. */
export interface HistoryEntry {
  offset: number
  frame: string
  /** the session the publication skipped (a `broadcastChannel` sender), if any */
  except?: string
}

/** A publication to a history channel, delivered to every node (the publisher's too) in offset order. */
export interface HistoryPublication extends HistoryEntry {
  channel: string
  /** the epoch of the stream the offset belongs to (absent from brokers that do not tell) */
  epoch?: string
}

/**
 * What to read: `{ after: n }` every stored publication after offset n (all or nothing);
 * `{ last: n }` the last n stored ones (n = 0 reads the stream's position only).
 */
export type HistoryQuery = { after: number } | { last: number }

export interface HistoryRead {
  /** the stream's epoch (created on first read or publication) */
  epoch: string
  /** the top offset: the last publication's, 0 before the first */
  offset: number
  /** oldest first; for `after`, empty unless `complete` */
  entries: HistoryEntry[]
  /** `after` queries: every publication after it is in `entries` */
  complete: boolean
}

export interface HistoryNode {
  /** delivers a history publication (from any node, this one included) to local sockets */
  deliverHistory? (publication: HistoryPublication): void
}

export interface HistoryConnection {
  /**
   * Assigns the next offset of `channel`, stores the entry and hands it to every node, this
   * one included, in one atomic step (so every node delivers one order); resolves the offset.
   * `frame` is the message frame without its offset.
   */
  publishHistory? (channel: string, frame: string, except: string | undefined, limits: HistoryLimits): Promise<number>
  /** reads `channel`'s stream: its epoch, top offset and the entries `query` asks for */
  readHistory? (channel: string, query: HistoryQuery, limits: HistoryLimits): Promise<HistoryRead>
}

// Merged into the interfaces above, so this block stays separate from the other additions.
export interface BrokerNode extends HistoryNode {}
export interface BrokerConnection extends HistoryConnection {}
