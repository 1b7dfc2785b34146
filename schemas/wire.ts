/**
 * Frames as text: the JSON step every decoder shares, and the encoder. Untrusted text goes
 * through `secure-json-parse`, so prototype-poisoning keys (`__proto__`,
 * `constructor.prototype`) are refused rather than parsed. Free of TypeBox at run time, so the
 * browser client can use it; `codec.ts` is the plugin's entry to the same functions.
 */
import sjson from 'secure-json-parse'
import type { ClientFrame, ServerFrame } from './protocol.js'

export type DecodeResult<F> =
  | { ok: true, frame: F }
  | { ok: false, code: 'BAD_FRAME', message: string, id?: number }

/** Whether a parsed JSON object is a well-formed frame of one type. */
export type FrameCheck = (value: unknown) => boolean

const parseOptions = { protoAction: 'error', constructorAction: 'error' } as const

function badFrame (message: string, id?: unknown): DecodeResult<never> {
  return Number.isSafeInteger(id) && (id as number) >= 1
    ? { ok: false, code: 'BAD_FRAME', message, id: id as number }
    : { ok: false, code: 'BAD_FRAME', message }
}

/**
 * Parses `text` and checks it with the check of its `type` in `checks` (frame type → check).
 * Never throws: anything wrong is a BAD_FRAME result, carrying the frame's `id` when it has a
 * usable one, so the peer can match the error to what it sent.
 */
export function decodeWith<F> (text: string, checks: Readonly<Record<string, FrameCheck>>): DecodeResult<F> {
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

/**
 * Encodes a frame. Throws a TypeError when the frame's data cannot be represented as JSON
 * (a BigInt, a cycle); callers decide what the peer sees instead.
 */
export function encodeFrame (frame: ClientFrame | ServerFrame): string {
  return JSON.stringify(frame)
}
