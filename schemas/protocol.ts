/**
 * Wire protocol v1 of fastify-channels: every frame a client and a server exchange,
 * as TypeBox schemas with their static types. This file is the protocol's only
 * definition; the plugin and the client both encode and decode through `codec.ts`. The client's
 * bundle checks server frames with the hand-written guards of `server-frames.ts` instead of
 * TypeBox's compiler; `test/schemas/server-frames.test.ts` proves both agree.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

export { CloseCodes, DEFAULT_EVENT, ErrorCodes, PROTOCOL_VERSION, type ErrorCode } from './constants.js'

// A frame id is chosen by the client; bounded so that it survives a JSON round trip exactly.
const FrameId = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })
// Channel names are checked by `channelNameProblem` (its own error code), so the frame
// schema only asks for a string; an absurdly long one is still a BAD_FRAME.
const ChannelField = Type.String({ maxLength: 100_000 })
const EventName = Type.String({ minLength: 1, maxLength: 200 })

const optional = <T extends TSchema>(schema: T) => Type.Optional(schema)

// ---- client → server ----------------------------------------------------------------

// History channels (docs/history.md): offsets count publications
// of one channel from 1; an epoch names one unbroken stream of them.
const Offset = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })
const Epoch = Type.String({ minLength: 1, maxLength: 200 })

/** Where a client left a history channel: its stream's epoch, the last offset it got, its old session. */
export const SinceField = Type.Object({
  epoch: Epoch,
  offset: Offset,
  session: optional(Type.String({ minLength: 1, maxLength: 200 }))
})
export type SinceField = Static<typeof SinceField>

export const SubscribeFrame = Type.Object({
  type: Type.Literal('subscribe'),
  channel: ChannelField,
  id: optional(FrameId),
  /** history channels: replay the last n stored publications after `subscribed` */
  last: optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  /** history channels: replay what was missed since this point, if all of it is still kept */
  since: optional(SinceField),
  /** history channels with deltas: message frames may carry `delta` instead of `data` */
  delta: optional(Type.Boolean())
})
export type SubscribeFrame = Static<typeof SubscribeFrame>

export const UnsubscribeFrame = Type.Object({
  type: Type.Literal('unsubscribe'),
  channel: ChannelField,
  id: optional(FrameId)
})
export type UnsubscribeFrame = Static<typeof UnsubscribeFrame>

export const MessageFrame = Type.Object({
  type: Type.Literal('message'),
  event: optional(EventName),
  channel: optional(ChannelField),
  data: optional(Type.Unknown()),
  id: optional(FrameId)
})
export type MessageFrame = Static<typeof MessageFrame>

/** Liveness: answered by a `pong` carrying the same id. */
export const PingFrame = Type.Object({
  type: Type.Literal('ping'),
  id: optional(FrameId)
})
export type PingFrame = Static<typeof PingFrame>

// ---- server → client requests (docs/users-and-requests.md) ------------------------------

/** `rid`: the server's own numbering of its requests on one connection, apart from the client's ids. */
const RequestId = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })

/** What a client's request handler threw (or `NO_HANDLER`: it has none for the event). */
export const ReplyError = Type.Object({
  code: Type.String({ minLength: 1, maxLength: 200 }),
  message: Type.String({ maxLength: 10_000 })
})
export type ReplyError = Static<typeof ReplyError>

/**
 * The client's answer to a server `request`: `data` (what its handler returned; absent for
 * undefined) or `error`, never both (a reply with both is a BAD_FRAME).
 */
export const ReplyFrame = Type.Object({
  type: Type.Literal('reply'),
  rid: RequestId,
  data: optional(Type.Unknown()),
  error: optional(ReplyError)
})
export type ReplyFrame = Static<typeof ReplyFrame>

export const ClientFrame = Type.Union([SubscribeFrame, UnsubscribeFrame, MessageFrame, PingFrame, ReplyFrame])
export type ClientFrame = Static<typeof ClientFrame>

// ---- server → client ----------------------------------------------------------------

export const WelcomeFrame = Type.Object({
  type: Type.Literal('welcome'),
  sessionId: Type.String({ minLength: 1 }),
  protocol: Type.Integer({ minimum: 1 })
})
export type WelcomeFrame = Static<typeof WelcomeFrame>

export const SubscribedFrame = Type.Object({
  type: Type.Literal('subscribed'),
  channel: Type.String(),
  id: optional(FrameId),
  /** history channels: the stream's epoch */
  epoch: optional(Type.String()),
  /** history channels: the top offset when the socket joined (0 before the first publication) */
  offset: optional(Offset),
  /** history channels subscribed with `since`: whether every missed publication follows */
  recovered: optional(Type.Boolean())
})
export type SubscribedFrame = Static<typeof SubscribedFrame>

export const UnsubscribedFrame = Type.Object({
  type: Type.Literal('unsubscribed'),
  channel: Type.String(),
  id: optional(FrameId)
})
export type UnsubscribedFrame = Static<typeof UnsubscribedFrame>

export const ServerMessageFrame = Type.Object({
  type: Type.Literal('message'),
  event: Type.String(),
  channel: optional(Type.String()),
  data: optional(Type.Unknown()),
  /** history channels: the publication's offset in its channel */
  offset: optional(Offset),
  /**
   * history channels subscribed with `delta: true`, in place of `data`: the fossil delta that
   * turns the delta text (`deltaText`, delta.ts) of the data at `offset - 1` into this one's
   */
  delta: optional(Type.String())
})
export type ServerMessageFrame = Static<typeof ServerMessageFrame>

export const AckFrame = Type.Object({
  type: Type.Literal('ack'),
  id: FrameId,
  data: optional(Type.Unknown())
})
export type AckFrame = Static<typeof AckFrame>

export const ValidationIssue = Type.Object({
  path: Type.String(),
  message: Type.String()
})
export type ValidationIssue = Static<typeof ValidationIssue>

export const ErrorFrame = Type.Object({
  type: Type.Literal('error'),
  id: optional(FrameId),
  // One of ErrorCodes, or an application's own code from a thrown ChannelError.
  code: Type.String({ minLength: 1 }),
  message: Type.String(),
  errors: optional(Type.Array(ValidationIssue))
})
export type ErrorFrame = Static<typeof ErrorFrame>

export const PongFrame = Type.Object({
  type: Type.Literal('pong'),
  id: optional(FrameId)
})
export type PongFrame = Static<typeof PongFrame>

// ---- presence (server → client) -------------------------------------------------------

/** One track of a key: `ref` names it (unguessable, never a session id), `meta` is the app's JSON. */
export const PresenceEntry = Type.Object({
  ref: Type.String({ minLength: 1 }),
  meta: Type.Unknown()
})
export type PresenceEntry = Static<typeof PresenceEntry>

/** key → its tracks (one per socket: two tabs of one user are two entries) */
export const PresenceState = Type.Record(Type.String(), Type.Array(PresenceEntry))
export type PresenceState = Static<typeof PresenceState>

export const PresenceFrame = Type.Object({
  type: Type.Literal('presence'),
  channel: Type.String(),
  state: PresenceState
})
export type PresenceFrame = Static<typeof PresenceFrame>

export const PresenceDiffFrame = Type.Object({
  type: Type.Literal('presence_diff'),
  channel: Type.String(),
  joins: PresenceState,
  leaves: PresenceState
})
export type PresenceDiffFrame = Static<typeof PresenceDiffFrame>

/** A server → client request (`socket.ask`): the client answers with a `reply` of the same `rid`. */
export const RequestFrame = Type.Object({
  type: Type.Literal('request'),
  rid: RequestId,
  event: Type.String({ minLength: 1 }),
  data: optional(Type.Unknown())
})
export type RequestFrame = Static<typeof RequestFrame>

export const ServerFrame = Type.Union([
  WelcomeFrame, SubscribedFrame, UnsubscribedFrame, ServerMessageFrame, AckFrame, ErrorFrame, PongFrame,
  PresenceFrame, PresenceDiffFrame, RequestFrame
])
export type ServerFrame = Static<typeof ServerFrame>
