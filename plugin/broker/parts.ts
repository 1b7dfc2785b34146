/**
 * What an engine implements: three parts (a transport, a history store, a presence store) and
 * the storage of the node registry, per node, sharing whatever connections the engine opens.
 * `composeBroker` (compose.ts) turns them into the `Broker` the plugin uses, and owns the rest:
 * the one envelope format, echoes, the dedupe of multi-channel publications, which node holds
 * which session, re-registering and re-subscribing after an outage, presence upkeep.
 *
 * Envelopes are opaque text to an engine: it carries them as they are, stores the entries it
 * is given as they are, and only writes the few values it assigns (an offset, an epoch, the
 * refs of a dead node's tracks) where the contract below says. docs/writing-a-broker.md
 * describes each part, the promises it keeps, and how to test one.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { HistoryLimits, HistoryQuery, PresenceChanges, PresenceTrack } from './types.js'

/**
 * Where an envelope goes: every node (`all`), one node (`node`: sends to a session it holds),
 * or the nodes with a local subscriber of an app channel (`channel`). The engine names them.
 */
export type Topic =
  | { readonly kind: 'all' }
  | { readonly kind: 'node', readonly nodeId: string }
  | { readonly kind: 'channel', readonly channel: string }

/** Pub/sub between nodes. */
export interface Transport {
  /**
   * Hands `envelope` to every node subscribed to any of `topics`. Publishes of one node reach
   * a subscriber of a topic in the order they were made. A node may get its own publication
   * back, and a node subscribed to several of the topics may get one copy per topic: the core
   * drops both. Rejects promptly when the engine cannot take it; never queues it for later.
   */
  publish (topics: readonly Topic[], envelope: string): Promise<void>
  /** Resolves once envelopes published on `topics` from anywhere reach this node. */
  subscribe (topics: readonly Topic[]): Promise<void>
  unsubscribe (topics: readonly Topic[]): Promise<void>
  /**
   * Optional, for a transport that batches publishes: sends what waits now. The core calls it
   * before a registry `route`, so a send never overtakes what was published before it.
   */
  flush? (): void
}

/**
 * The storage of the node registry: which node holds which session, and which nodes live. The
 * core keeps this node's own record (the source of every re-registration) and decides when to
 * write; the store makes each step atomic where the engine can fail between two writes.
 */
export interface RegistryStore {
  /**
   * ms this node's registration outlives its last write when the node stops refreshing it (it
   * died without closing); the core refreshes every third of it. Absent: it never expires.
   */
  readonly ttl?: number
  /** Writes this node's whole registration, alive with `sessions`, replacing whatever the store held. */
  register (sessions: readonly string[]): Promise<void>
  /**
   * Extends the registration where it still exists; `false` when it was lost (expired during a
   * stall, or pruned as dead), and the core then registers again.
   */
  refresh (holdsSessions: boolean): Promise<boolean>
  add (sessionId: string): Promise<void>
  remove (sessionId: string): Promise<void>
  /**
   * Publishes `envelope` on the node topic of the live node (not this one) holding `sessionId`,
   * in one step with the lookup; `false` when no live node holds it. Rejects when the store
   * cannot be asked or the holder no longer listens.
   */
  route (sessionId: string, envelope: string): Promise<boolean>
  /** For each of `nodeIds`, whether that node's registration is alive. */
  alive (nodeIds: readonly string[]): Promise<boolean[]>
  /** Removes this node's registration (a clean close). */
  unregister (): Promise<void>
}

/** Where a history channel's stream stands. */
export interface StreamPosition {
  /** the last offset assigned: 1 for the first publication, +1 for each */
  offset: number
  /** changes whenever the stream's stored state is lost */
  epoch: string
}

/** One publication to a history channel, as the core hands it to the store. */
export interface HistoryAppend {
  /** what to keep: opaque text, handed back by `read` as it is */
  entry: string
  /**
   * The start of the envelope that announces it. In the same atomic step as the append, the
   * store publishes on the channel's topic `head + offset + '\n' + epoch + '\n' + entry`
   * (`positionedEnvelope` in envelope.ts builds it).
   */
  head: string
}

export interface StoredEntry {
  offset: number
  entry: string
}

export interface StreamRead extends StreamPosition {
  /** oldest first; for `after`, empty unless `complete` */
  entries: StoredEntry[]
  /** `after` queries: every entry after it is in `entries` */
  complete: boolean
}

/**
 * A channel's stream: its epoch, its top offset, its last `size` entries, each kept `ttl` ms.
 * Only history channels have one, created by the first append.
 */
export interface HistoryStore {
  /**
   * Assigns the next offset (a new epoch when the stream's state is gone), keeps the entry and
   * publishes its envelope (see `HistoryAppend.head`), all in one atomic step: two nodes
   * appending at once produce one dense order that every subscriber receives alike. A node's
   * own appends come back to it. Rejects when it cannot, and then publishes nothing later.
   */
  append (channel: string, append: HistoryAppend, limits: HistoryLimits): Promise<StreamPosition>
  /**
   * The stream's position and the entries `query` asks for (`after`: all or nothing). A
   * channel without a stream answers offset 0 and the epoch its first append will get, and
   * keeps the state such reads create bounded (docs/writing-a-broker.md).
   */
  read (channel: string, query: HistoryQuery, limits: HistoryLimits): Promise<StreamRead>
}

/** One channel's part of a presence write. */
export interface PresenceChannelWrite extends PresenceChanges {
  /** published on the channel's topic in the same atomic step as the change */
  envelope: string
}

/** A change of this node's own tracks. */
export interface PresenceWrite {
  channels: Map<string, PresenceChannelWrite>
  /** channels where this node has no track any more */
  forget: string[]
  /** take this node off the store's list of nodes with tracks (a clean close) */
  unregister?: boolean
}

/** Every node's presence tracks, each remembered with the node that owns it. */
export interface PresenceStore {
  /**
   * Applies this node's change: per channel, leaves then joins, and publishes the channel's
   * envelope with it, atomically per channel, so every node sees the store and the diff agree.
   * The store must always be able to find a node's tracks again to reap them (after a write
   * failed halfway too).
   */
  write (change: PresenceWrite): Promise<void>
  /** every track in `channel`, over every node */
  list (channel: string): Promise<PresenceTrack[]>
  /** the nodes that have tracks (this one included) */
  nodes (): Promise<string[]>
  /**
   * Removes every track of `nodeId` (a dead node) and, per channel in the same atomic step,
   * publishes on the channel's topic `leavesHead(channel) + refs.join('\n')`; resolves with the
   * number of tracks removed. Two nodes reaping at once send each leave once.
   */
  reap (nodeId: string, leavesHead: (channel: string) => string): Promise<number>
}

/** What the core gives an engine for one node. */
export interface EngineNode {
  readonly nodeId: string
  readonly log: FastifyBaseLogger
  /** an envelope arrived on one of this node's topics */
  receive (envelope: string): void
  /**
   * The engine may have lost this node's subscriptions and registration (it reconnected, or an
   * outage ended): the core subscribes every topic again, registers again and has presence
   * re-asserted and reloaded. Resolves with what it restored; rejects when a step failed.
   */
  restore (): Promise<{ channels: number, sessions: number }>
}

/** One node's parts, sharing the engine's connections. */
export interface EngineParts {
  transport: Transport
  registry: RegistryStore
  /** without it, the plugin refuses the `history` option */
  history?: HistoryStore
  /** without it, each node shows the presence of its own sockets only */
  presence?: PresenceStore
  /** called once the node is set up (node topics subscribed, registration written) */
  start? (): void
  /** releases what `connect` opened (nothing the user passed in); called once */
  close (): Promise<void>
}

export interface BrokerEngine {
  /** the engine's name in log lines ('redis') */
  readonly name: string
  /** opens one node's parts; rejects (with a coded error) when the engine cannot be reached */
  connect (node: EngineNode): Promise<EngineParts>
}
