/**
 * What one plugin registration asks of its sockets' outbound path: the compression threshold
 * and the write delay. They are set once per socket, when it joins (`prepareSocket`), as one
 * shared frozen object: a socket of a registration with both options at their defaults gets
 * nothing at all, so its memory stays what it was.
 *
 * With `compression` on, the plugin's own @fastify/websocket registration negotiates
 * permessage-deflate without context takeover in either direction (`perMessageDeflateOptions`).
 * Outbound frames are then compressed once per message by frame-writer.ts, never by ws. Inbound
 * compressed messages are inflated by ws as usual, but ws keeps the zlib inflate stream of a
 * socket open once it has used it (it only resets it between messages); with no client context
 * takeover nothing needs to survive a message, so the stream is closed after each one: an idle
 * socket holds no zlib context.
 *
 * What else ws keeps per socket for the extension is the same for every socket of a server: a
 * copy of the server's deflate options (ws spreads them into a new object per socket) and the
 * negotiated parameters. Both are swapped for one shared object per distinct value (ws only
 * reads them after the handshake), and `_decompress` is set on a prototype shared by the
 * sockets instead of on each: with compression on, an idle socket costs little more than with
 * it off (bench/README.md, "Wire efficiency").
 */
import type WebSocket from 'ws'

export interface WireSettings {
  /** payloads of fewer bytes go uncompressed; `undefined` when compression is off (then ws's own threshold) */
  readonly threshold: number | undefined
  /** ms a socket's frames are gathered; 0 for none */
  readonly writeDelayMs: number
}

export const kWire = Symbol('fastify-channels.wire')

/** The settings of a socket that was never prepared, or prepared with the defaults. */
export const defaultWireSettings: WireSettings = Object.freeze({ threshold: undefined, writeDelayMs: 0 })

/** The ws `perMessageDeflate` server option for `compression: { threshold }`. */
export function perMessageDeflateOptions (threshold: number): Record<string, unknown> {
  return {
    threshold,
    // One compressed frame serves every socket only if no socket's peer expects a shared window.
    serverNoContextTakeover: true,
    // Nothing of an inbound message is needed for the next: its inflate stream can be closed.
    clientNoContextTakeover: true
  }
}

/** The parts of ws 8's PerMessageDeflate this module and frame-writer.ts read (lib/permessage-deflate.js). */
export interface PerMessageDeflateInternals {
  params: Record<string, unknown> | null
  _threshold?: number
  _inflate: { close: () => void } | null
  _options?: Record<string, unknown>
  _decompress?: (data: Buffer, fin: boolean, callback: (err: Error | null, result?: Buffer) => void) => void
}

type Decompress = NonNullable<PerMessageDeflateInternals['_decompress']>

/**
 * Whether `record` may be shared: a plain record whose values are all primitives. One holding
 * an object (an app's `zlibDeflateOptions`) is left to its socket, and is not kept either: it
 * could never be matched, and would only take the place of a value that can.
 */
function shareable (record: Record<string, unknown>): boolean {
  const prototype = Object.getPrototypeOf(record) as unknown
  if (prototype !== Object.prototype && prototype !== null) return false
  for (const key of Object.keys(record)) if (typeof record[key] === 'object') return false
  return true
}

/** Whether two shareable records hold the same keys with the same values. */
function sameRecord (a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const key of keys) if (a[key] !== b[key]) return false
  return true
}

/** At most this many distinct values are kept shared (a server sees two or three at most). */
const maxShared = 16

/** One shared object per distinct value of `record`, else `record` itself. */
function intern (shared: Array<Record<string, unknown>>, record: Record<string, unknown>): Record<string, unknown> {
  if (!shareable(record)) return record
  for (const candidate of shared) if (sameRecord(candidate, record)) return candidate
  if (shared.length < maxShared) shared.push(record)
  return record
}

const sharedOptions: Array<Record<string, unknown>> = []
const sharedParams: Array<Record<string, unknown>> = []

/** Per PerMessageDeflate class: a prototype inheriting from it with `_decompress` = `decompressAndRelease`. */
const releasingPrototypes = new WeakMap<object, object>()
/** The prototypes `releasingPrototypeOf` made (a socket already on one is left as it is). */
const releasing = new WeakSet<object>()

function releasingPrototypeOf (prototype: object): object {
  let made = releasingPrototypes.get(prototype)
  if (made === undefined) {
    made = Object.create(prototype, { _decompress: { value: decompressAndRelease, writable: true, configurable: true } }) as object
    releasingPrototypes.set(prototype, made)
    releasing.add(made)
  }
  return made
}

/**
 * ws's own `_decompress`, then the inflate stream closed at the end of each message. Set on a
 * prototype between the socket's PerMessageDeflate and ws's class (one per class, shared by
 * the sockets), only where the client was told not to take its context over.
 */
function decompressAndRelease (this: PerMessageDeflateInternals, data: Buffer, fin: boolean, callback: Parameters<Decompress>[2]): void {
  const own = Object.getPrototypeOf(Object.getPrototypeOf(this) as object) as { _decompress: Decompress }
  own._decompress.call(this, data, fin, (err, result) => {
    if (fin && this._inflate !== null) {
      this._inflate.close()
      this._inflate = null
    }
    callback(err, result)
  })
}

/** Call once per socket of a registration, before anything is written to it. */
export function prepareSocket (ws: WebSocket, settings: WireSettings): void {
  if (settings !== defaultWireSettings) (ws as unknown as Record<symbol, WireSettings>)[kWire] = settings
  const extension = (ws as unknown as { _extensions?: Record<string, PerMessageDeflateInternals | undefined> })._extensions?.['permessage-deflate']
  if (extension === undefined || extension.params === null) return
  extension.params = intern(sharedParams, extension.params)
  if (extension._options !== undefined) extension._options = intern(sharedOptions, extension._options)
  if (extension.params.client_no_context_takeover !== true) return
  const own = Object.getPrototypeOf(extension) as { _decompress?: unknown }
  if (typeof own._decompress === 'function' && '_inflate' in extension && !releasing.has(own)) {
    Object.setPrototypeOf(extension, releasingPrototypeOf(own))
  }
}

/** The settings `prepareSocket` gave `ws`. */
export function wireSettingsOf (ws: WebSocket): WireSettings {
  return (ws as unknown as Record<symbol, WireSettings | undefined>)[kWire] ?? defaultWireSettings
}
