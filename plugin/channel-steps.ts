/**
 * The hooks that channel state (history, presence) plugs into a socket's join/leave path, and
 * what that path knows of a socket and of the node. A neutral module: the connection's join
 * path (connection/membership.ts) calls these steps, the node (node/server.ts) holds them, and
 * history/ and presence/ implement them, without either side importing the other.
 *
 * May import: schemas/, handlers/, outbound/, options.ts. Nothing of connection/, node/,
 * history/ or presence/.
 */
import type { ServerFrame, SubscribeFrame } from '../schemas/protocol.js'
import type { Recipient } from './outbound/frame-writer.js'
import type { ReportingSocket } from './handlers/report.js'
import type { ResolvedOptions } from './options.js'

/** A per-channel step run on every join and leave (history, presence). */
export interface ChannelStep {
  /**
   * Answers a new join itself when it returns true: channel history sends `subscribed` with
   * its epoch and offset, then the replay, in one step (so no live publication slips between).
   * The first step that answers wins; with none, the join is answered a plain `subscribed`.
   */
  answerJoin? (socket: Member, channel: string, frame: SubscribeFrame | undefined): Promise<boolean> | boolean
  /**
   * After the socket newly joined `channel` and got `subscribed`. `frame` is the client's
   * subscribe frame (its options, e.g. `last`/`since`), undefined for `socket.subscribe()`.
   * A failure is reported (logs, `error` handlers); the subscription stands.
   */
  afterJoin? (socket: Member, channel: string, frame: SubscribeFrame | undefined): Promise<void> | void
  /** After the socket left `channel`: by request, by `socket.unsubscribe()`, or on disconnect. */
  onLeave? (socket: Member, channel: string): Promise<void> | void
}

/** What the join/leave path needs of the server. */
export interface MembershipServer {
  readonly options: Pick<ResolvedOptions, 'maxChannels'>
  readonly channelSteps: readonly ChannelStep[]
  /** `socket` now holds `channel`; resolves once the broker relays it too */
  addToChannel (channel: string, socket: Member): Promise<void>
  removeFromChannel (channel: string, socket: Member): void
}

/** What the join/leave path needs of a socket. */
export interface Member extends ReportingSocket, Recipient {
  readonly server: MembershipServer
  /** the channels held, in subscription order */
  readonly subscriptions: Set<string>
  /** joins whose handlers are still running: they count against maxChannels */
  pendingJoins: number
  /** false once a join would never be undone (the socket closed after connecting) */
  readonly acceptsJoins: boolean
  sendControl (frame: ServerFrame): void
}
