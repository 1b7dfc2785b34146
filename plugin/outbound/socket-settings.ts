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
  _decompress?: (data: Buffer, fin: boolean, callback: (err: Error | null, result?: Buffer) => void) => void
}

type Decompress = NonNullable<PerMessageDeflateInternals['_decompress']>

/**
 * ws's own `_decompress`, then the inflate stream closed at the end of each message. Installed
 * as an own property of the socket's PerMessageDeflate (one shared function, no closure kept
 * per socket), only where the client was told not to take its context over.
 */
function decompressAndRelease (this: PerMessageDeflateInternals, data: Buffer, fin: boolean, callback: Parameters<Decompress>[2]): void {
  const own = Object.getPrototypeOf(this) as { _decompress: Decompress }
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
  if (extension === undefined || extension.params?.client_no_context_takeover !== true) return
  const own = Object.getPrototypeOf(extension) as { _decompress?: unknown }
  if (typeof own._decompress === 'function' && '_inflate' in extension) extension._decompress = decompressAndRelease
}

/** The settings `prepareSocket` gave `ws`. */
export function wireSettingsOf (ws: WebSocket): WireSettings {
  return (ws as unknown as Record<symbol, WireSettings | undefined>)[kWire] ?? defaultWireSettings
}
