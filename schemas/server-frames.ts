/**
 * How the client checks what a server sends: one entry per server frame type, one guard per
 * field, mirroring the TypeBox schemas of `protocol.ts` (the source of the types) without
 * TypeBox's compiler in the browser bundle. `test/schemas/server-frames.test.ts` feeds the same
 * valid and broken frames to these guards and to the schemas and asserts they agree.
 *
 * Adding a server frame (or a field): add its schema to `ServerFrame` in `protocol.ts`, then its
 * entry here; the compiler refuses a frame type or a field without its guard.
 */
import { anything, arrayOf, boolean, exactly, fields, integer, optional, recordOf, text, type Guard } from './guards.js'
import type { ServerFrame } from './protocol.js'
import { decodeWith, type DecodeResult, type FrameCheck } from './wire.js'

const frameId = integer(1, Number.MAX_SAFE_INTEGER)
const offset = integer(0, Number.MAX_SAFE_INTEGER)
const validationIssue = fields({ path: text(), message: text() })
/** a required field of any value (TypeBox's `Unknown` without `Optional`) */
const present: Guard = (value) => value !== undefined
/** key → [{ ref, meta }] (PresenceState) */
const presenceState = recordOf(arrayOf(fields({ ref: text(1), meta: present })))

/** For each server frame type, a guard for each of its fields but `type`. */
type FieldGuards = {
  [T in ServerFrame['type']]: { [K in Exclude<keyof Extract<ServerFrame, { type: T }>, 'type'>]-?: Guard }
}

export const serverFrameFields: FieldGuards = {
  welcome: { sessionId: text(1), protocol: integer(1) },
  subscribed: { channel: text(), id: optional(frameId), epoch: optional(text()), offset: optional(offset), recovered: optional(boolean) },
  unsubscribed: { channel: text(), id: optional(frameId) },
  message: { event: text(), channel: optional(text()), data: anything, offset: optional(offset), delta: optional(text()) },
  ack: { id: frameId, data: anything },
  error: { id: optional(frameId), code: text(1), message: text(), errors: optional(arrayOf(validationIssue)) },
  pong: { id: optional(frameId) },
  presence: { channel: text(), state: presenceState },
  presence_diff: { channel: text(), joins: presenceState, leaves: presenceState },
  request: { rid: frameId, event: text(1), data: anything }
}

/** Frame type → the check of a whole frame of that type (its `type` included, so each check stands alone). */
export const serverFrameChecks: Readonly<Record<string, FrameCheck>> = Object.fromEntries(
  Object.entries(serverFrameFields).map(([type, guards]) => [type, fields({ ...guards as Record<string, Guard>, type: exactly(type) })])
)

/** Decodes a frame a server sent (used by the client). Never throws. */
export function decodeServerFrame (text: string): DecodeResult<ServerFrame> {
  return decodeWith<ServerFrame>(text, serverFrameChecks)
}
