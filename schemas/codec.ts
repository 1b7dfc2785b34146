/**
 * The only place where frames become text and text becomes frames, for the plugin and the
 * client alike. The JSON step is `wire.ts`; client frames (read by the server) are checked
 * with the TypeBox schemas, compiled once; server frames (read by the client) with the small
 * guards of `server-frames.ts`, so the browser bundle carries no schema compiler.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Check as checkValue } from '@sinclair/typebox/value'
import type { TSchema, Static } from '@sinclair/typebox'
import { SubscribeFrame, UnsubscribeFrame, MessageFrame, PingFrame, ReplyFrame, ServerMessageFrame, type ClientFrame } from './protocol.js'
import { decodeWith, type DecodeResult, type FrameCheck } from './wire.js'

export { decodeWith, encodeFrame, type DecodeResult, type FrameCheck } from './wire.js'
export { decodeServerFrame } from './server-frames.js'

/**
 * A checker for `schema`: compiled once (fast on the hot path), or interpreted where
 * generating code is forbidden (a Content-Security-Policy, a locked-down runtime).
 */
function checker (schema: TSchema): FrameCheck {
  try {
    const compiled = TypeCompiler.Compile(schema)
    return (value) => compiled.Check(value)
  } catch {
    return (value) => checkValue(schema, value)
  }
}

const clientFrameChecks: Record<ClientFrame['type'], FrameCheck> = {
  subscribe: checker(SubscribeFrame),
  unsubscribe: checker(UnsubscribeFrame),
  message: checker(MessageFrame),
  ping: checker(PingFrame),
  reply: checker(ReplyFrame)
}

/** Decodes a frame a client sent (used by the server). Never throws. */
export function decodeClientFrame (text: string): DecodeResult<ClientFrame> {
  return decodeWith<ClientFrame>(text, clientFrameChecks)
}

/** Encodes the server's `message` frame; `channel` and `data` are left out when undefined. */
export function encodeMessage (event: string, channel: string | undefined, data: unknown): string {
  const frame: Static<typeof ServerMessageFrame> = { type: 'message', event, channel, data }
  return JSON.stringify(frame)
}

// ---- presence ------------------------------------------------------------------------------

/** A track as a server keeps it: its meta already JSON text (encoded once, when it was tracked). */
export interface EncodedTrack {
  key: string
  meta: string
}

/** `{"key":[{"ref":…,"meta":…}],…}` from tracks by ref; metas go in verbatim. */
function encodePresenceState (tracks: Iterable<[string, EncodedTrack]>): string {
  const byKey = new Map<string, string[]>()
  for (const [ref, { key, meta }] of tracks) {
    const entry = `{"ref":${JSON.stringify(ref)},"meta":${meta}}`
    const list = byKey.get(key)
    if (list === undefined) byKey.set(key, [entry])
    else list.push(entry)
  }
  const parts: string[] = []
  for (const [key, entries] of byKey) parts.push(`${JSON.stringify(key)}:[${entries.join(',')}]`)
  return `{${parts.join(',')}}`
}

/** Encodes the server's `presence` frame (PresenceFrame). */
export function encodePresence (channel: string, state: Iterable<[string, EncodedTrack]>): string {
  return `{"type":"presence","channel":${JSON.stringify(channel)},"state":${encodePresenceState(state)}}`
}

/** Encodes the server's `presence_diff` frame (PresenceDiffFrame). */
export function encodePresenceDiff (
  channel: string, joins: Iterable<[string, EncodedTrack]>, leaves: Iterable<[string, EncodedTrack]>
): string {
  return `{"type":"presence_diff","channel":${JSON.stringify(channel)},"joins":${encodePresenceState(joins)},"leaves":${encodePresenceState(leaves)}}`
}
