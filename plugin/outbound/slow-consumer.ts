/**
 * Outbound writes for one socket and the slow-consumer policy: a peer whose unread bytes pass
 * `maxBufferedBytes` is cut off (1013), so one stalled reader cannot make the server hold an
 * unbounded queue for it.
 */
import WebSocket from 'ws'
import { CloseCodes } from '../../schemas/protocol.js'
import { flushNow, hasBacklog, writeFrame, type OutboundFrame } from './frame-writer.js'
import type { DisconnectInfo } from '../types.js'

const maxCloseReasonBytes = 123

/** Why a slow consumer was cut off: what its `disconnect` handlers see (ws itself only reports 1006). */
export const slowConsumerClose: Readonly<DisconnectInfo> = Object.freeze({ code: CloseCodes.TRY_AGAIN_LATER, reason: 'slow consumer' })

/** A close reason fits in a control frame: at most 123 bytes of UTF-8. */
export function closeReason (text: string): string {
  let reason = text
  while (Buffer.byteLength(reason) > maxCloseReasonBytes) reason = reason.slice(0, -1)
  return reason
}

/**
 * Writes `frame` to an OPEN `ws` (see frame-writer.ts) and returns false when the peer is now
 * a slow consumer: more than `maxBufferedBytes` that the kernel would not take.
 */
export function writeWithinLimit (ws: WebSocket, frame: OutboundFrame, maxBufferedBytes: number): boolean {
  writeFrame(ws, frame)
  if (ws.bufferedAmount <= maxBufferedBytes) return true
  // Bytes held back only to coalesce this turn's writes do not make a peer slow: hand them to
  // the kernel first, and judge by what it would not take.
  flushNow(ws)
  return ws.bufferedAmount <= maxBufferedBytes
}

/**
 * A volatile frame: written to an OPEN `ws` only when nothing is queued for it (see
 * `hasBacklog`) and this turn's own corked frames are within `maxBufferedBytes` (a burst in one
 * turn cannot grow the queue past the limit either), else skipped (false). A skipped frame
 * never closes a socket.
 */
export function writeVolatile (ws: WebSocket, frame: OutboundFrame, maxBufferedBytes: number): boolean {
  if (ws.bufferedAmount > maxBufferedBytes || hasBacklog(ws)) return false
  writeFrame(ws, frame)
  return true
}

/** Whether `ws` can still take frames. */
export function isWritable (ws: WebSocket): boolean {
  return ws.readyState === WebSocket.OPEN
}
