/**
 * Notices between the nodes that share a broker: each node's stats (for `nodes()` and the admin
 * page), a node's goodbye, and an admin's "close this session" for whichever node holds it.
 *
 * They travel as publications of kind `all` on the topic every node already listens to (no
 * part method of their own: any engine carries them). Their frame starts with `noticeMark`, which
 * no frame the plugin makes for sockets can (those are JSON objects, `{...}`), so the node tells
 * a notice from a broadcast by its first character and no app or client can forge one.
 *
 * Every `all` frame that starts with '#' is for the nodes and never reaches a socket, whatever
 * follows: this version reads the notices of `noticeMark` and drops any other. So a later
 * release may change its notices (a new mark) without the nodes of this one handing them to
 * their sockets while both run side by side in a rolling upgrade.
 */
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import sjson from 'secure-json-parse'

/** The start of every notice frame of this version ('#' never starts a socket frame). */
export const noticeMark = '#channels-notice:1\n'
const markCode = noticeMark.charCodeAt(0)

/**
 * Whether the frame of an `all` publication is for the nodes, not their sockets: a notice of this
 * version or of another (see the header). One character compared on the hot path.
 */
export function isNotice (frame: string): boolean {
  return frame.charCodeAt(0) === markCode
}

const NodeEventSchema = Type.Object({
  at: Type.Number(),
  kind: Type.Union([Type.Literal('error'), Type.Literal('slow-consumer'), Type.Literal('publish-failed')]),
  message: Type.String(),
  sessionId: Type.Optional(Type.String()),
  channel: Type.Optional(Type.String())
})

const BusyChannelSchema = Type.Object({
  channel: Type.String(),
  /** publications this node made on it per second, over the last window */
  perSecond: Type.Number(),
  /** this node's sockets that hold it */
  subscribers: Type.Integer()
})

export const NodeStatsSchema = Type.Object({
  /** the node's id (random, per Fastify instance) */
  node: Type.String(),
  /** when the stats were taken (ms since the epoch, on that node's clock) */
  at: Type.Number(),
  host: Type.String(),
  pid: Type.Integer(),
  /** seconds since the node started */
  uptime: Type.Number(),
  /** resident set size of the node's process, bytes */
  memory: Type.Number(),
  /** the node is closing (fastify.close() began) */
  closing: Type.Boolean(),
  /** open connections (the same number as `sockets`) */
  connections: Type.Integer(),
  sockets: Type.Integer(),
  /** subscriptions held by this node's sockets (one socket in three channels: 3) */
  subscriptions: Type.Integer(),
  /** channels with at least one subscriber on this node */
  channels: Type.Integer(),
  /** publications made on this node since it started */
  publications: Type.Integer(),
  /** messages handed to this node's sockets since it started */
  deliveries: Type.Integer(),
  publicationsPerSecond: Type.Number(),
  deliveriesPerSecond: Type.Number(),
  busiest: Type.Array(BusyChannelSchema),
  /** recent handler errors, slow-consumer closes and failed publishes, oldest first */
  events: Type.Array(NodeEventSchema)
})

export type NodeStats = Static<typeof NodeStatsSchema>
export type NodeEvent = Static<typeof NodeEventSchema>
export type BusyChannel = Static<typeof BusyChannelSchema>

const NoticeSchema = Type.Union([
  Type.Object({ type: Type.Literal('stats'), want: Type.Boolean(), stats: NodeStatsSchema }),
  Type.Object({ type: Type.Literal('leave'), node: Type.String() }),
  // a code and reason ws accepts to send: 1000, 1008, or an application's 3000–4999; a reason that fits a close frame
  Type.Object({
    type: Type.Literal('close'),
    sessionId: Type.String(),
    code: Type.Union([Type.Literal(1000), Type.Literal(1008), Type.Integer({ minimum: 3000, maximum: 4999 })]),
    reason: Type.String({ maxLength: 123 })
  })
])

export type Notice = Static<typeof NoticeSchema>

const checkNotice = TypeCompiler.Compile(NoticeSchema)
const parseOptions = { protoAction: 'remove', constructorAction: 'remove' } as const

export function encodeNotice (notice: Notice): string {
  return noticeMark + JSON.stringify(notice)
}

/** The notice in `frame`, or `undefined` when it is not one this version reads. */
export function decodeNotice (frame: string): Notice | undefined {
  if (!frame.startsWith(noticeMark)) return undefined // not a notice, or one of another version
  let value: unknown
  try {
    value = sjson.parse(frame.slice(noticeMark.length), undefined, parseOptions)
  } catch {
    return undefined
  }
  return checkNotice.Check(value) ? value : undefined
}
