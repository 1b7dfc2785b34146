/**
 * The only place where frames become text and text becomes frames, for the plugin and
 * the client alike. Untrusted text goes through `secure-json-parse`, so prototype-poisoning
 * keys (`__proto__`, `constructor.prototype`) are refused rather than parsed.
 */
import sjson from 'secure-json-parse'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Check as checkValue } from '@sinclair/typebox/value'
import type { TSchema, Static } from '@sinclair/typebox'
import {
  SubscribeFrame, UnsubscribeFrame, MessageFrame,
  WelcomeFrame, SubscribedFrame, UnsubscribedFrame, ServerMessageFrame, AckFrame, ErrorFrame,
  PresenceFrame, PresenceDiffFrame,
  type ClientFrame, type ServerFrame
} from './protocol.js'

export type DecodeResult<F> =
  | { ok: true, frame: F }
  | { ok: false, code: 'BAD_FRAME', message: string, id?: number }

type Check = (value: unknown) => boolean

/**
 * A checker for `schema`: compiled once (fast on the hot path), or interpreted where the
 * page's Content-Security-Policy forbids generating code.
 */
function checker (schema: TSchema): Check {
  try {
    const compiled = TypeCompiler.Compile(schema)
    return (value) => compiled.Check(value)
  } catch {
    return (value) => checkValue(schema, value)
  }
}

const clientFrameChecks: Record<string, Check> = {
  subscribe: checker(SubscribeFrame),
  unsubscribe: checker(UnsubscribeFrame),
  message: checker(MessageFrame)
}

const serverFrameChecks: Record<string, Check> = {
  welcome: checker(WelcomeFrame),
  subscribed: checker(SubscribedFrame),
  unsubscribed: checker(UnsubscribedFrame),
  message: checker(ServerMessageFrame),
  ack: checker(AckFrame),
  error: checker(ErrorFrame),
  presence: checker(PresenceFrame),
  presence_diff: checker(PresenceDiffFrame)
}

const parseOptions = { protoAction: 'error', constructorAction: 'error' } as const

function badFrame (message: string, id?: unknown): DecodeResult<never> {
  return Number.isSafeInteger(id) && (id as number) >= 1
    ? { ok: false, code: 'BAD_FRAME', message, id: id as number }
    : { ok: false, code: 'BAD_FRAME', message }
}

function decodeWith<F> (text: string, checks: Record<string, Check>): DecodeResult<F> {
  let value: unknown
  try {
    value = sjson.parse(text, undefined, parseOptions)
  } catch (err) {
    // V8's own JSON errors quote the input ("prototype" is not valid JSON): match sjson's message exactly.
    return (err as Error).message === 'Object contains forbidden prototype property'
      ? badFrame('frame contains a forbidden key (__proto__ or constructor.prototype)')
      : badFrame('frame is not valid JSON')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return badFrame('frame must be a JSON object')
  }
  const { type, id } = value as { type?: unknown, id?: unknown }
  const check = typeof type === 'string' && Object.hasOwn(checks, type) ? checks[type] : undefined
  if (check === undefined) return badFrame('unknown frame type', id)
  if (!check(value)) return badFrame(`malformed ${type as string} frame: missing or wrong fields`, id)
  return { ok: true, frame: value as F }
}

/** Decodes a frame a client sent (used by the server). Never throws. */
export function decodeClientFrame (text: string): DecodeResult<ClientFrame> {
  return decodeWith<ClientFrame>(text, clientFrameChecks)
}

/** Decodes a frame a server sent (used by the client). Never throws. */
export function decodeServerFrame (text: string): DecodeResult<ServerFrame> {
  return decodeWith<ServerFrame>(text, serverFrameChecks)
}

/**
 * Encodes a frame. Throws a TypeError when the frame's data cannot be represented as JSON
 * (a BigInt, a cycle); callers decide what the peer sees instead.
 */
export function encodeFrame (frame: ClientFrame | ServerFrame): string {
  return JSON.stringify(frame)
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
