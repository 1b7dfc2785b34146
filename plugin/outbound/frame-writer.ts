/**
 * The one way an outbound frame reaches a socket. Two costs dominate a fan-out: turning the
 * message into a WebSocket frame, and the write syscall. So:
 *
 * - a frame is built once per message (header + UTF-8 payload in one Buffer, with ws's own
 *   `Sender.frame`) and the same Buffer is written to every socket that gets it;
 * - writes to one socket are coalesced: its first frame corks the TCP socket, and what the same
 *   run of code (the synchronous code and its microtasks: a loop of broadcasts, the messages of
 *   one Redis reply) writes to it queues behind the cork; when the run ends, a microtask uncorks
 *   every such socket (one write or writev each) and corks it again for the rest of the event-
 *   loop turn, whose frames leave at its end (`setImmediate`). A burst of broadcasts started in
 *   one loop costs a socket one syscall, any turn at most two, not one per message (the "one
 *   frame, corked" limit of bench/wire.js's burst case, which corks until the turn ends). A lone
 *   message leaves as soon as the fan-out loop that sent it is over, not at the end of the turn.
 *   (An earlier design wrote each turn's first frame at once, uncorked: one more syscall per
 *   socket and burst, which on loopback also does the receiver's TCP work; a burst of 20
 *   broadcasts cost 1.5x the limit per delivery, now about 1.0x.)
 *
 * The frame goes straight to the TCP socket only while ws's Sender has nothing of its own in
 * flight (no permessage-deflate, no queued compression or blob read, no fragmented message):
 * then a direct write lands exactly where `ws.send` would have put it, and control frames
 * (ping, close) that ws writes to the same socket stay in order. Otherwise, and where the ws
 * internals this relies on are missing, the frame goes through `ws.send`. Those internals are
 * checked on the Sender of the first real socket (the ws copy that created the sockets, which
 * may not be the plugin's own), once per Sender class; package.json pins ws to the minor line
 * these checks were written against (`~8.23`).
 *
 * permessage-deflate: a socket whose negotiation says `server_no_context_takeover` gets the
 * message compressed once for every such socket (RFC 7692: DEFLATE of the payload alone, the
 * trailing 00 00 ff ff dropped, RSV1 set), built on first use and shared like the plain frame;
 * payloads under the threshold go plain (a valid frame for any peer). A socket that negotiated
 * deflate with context takeover (an app's own @fastify/websocket registration) must get frames
 * compressed in its own stream: those go through `ws.send`.
 *
 * `writeDelayMs` (socket-settings.ts): a socket's frames are gathered instead, corked from the
 * first one and handed to the kernel in one writev when the delay is over (gather.ts).
 *
 * Each frame built is published on the `fastify-channels:frame-built` diagnostics channel
 * (`node:diagnostics_channel`), for tests and profiling; unobserved it costs one flag check.
 * A compressed frame is published with `compressed: true`.
 */
import { channel } from 'node:diagnostics_channel'
import type { Socket } from 'node:net'
import { constants as zlibConstants, createDeflateRaw, deflateRawSync, type DeflateRaw } from 'node:zlib'
import type WebSocket from 'ws'
import { gather } from './gather.js'
import { wireSettingsOf, type PerMessageDeflateInternals } from './socket-settings.js'

/** The parts of ws 8's Sender this module reads (lib/sender.js, not public API). */
interface SenderInternals {
  _state: number
  _queue: unknown[]
  _firstFragment: boolean
}

/** The parts of a ws 8 WebSocket this module reads. */
interface WebSocketInternals {
  _sender: SenderInternals | null
  _socket: Socket | null
  _extensions: Record<string, PerMessageDeflateInternals | undefined>
}

export type FrameFn = (data: Buffer, options: FrameOptions) => Buffer[]
interface FrameOptions { fin: boolean, opcode: number, mask: boolean, readOnly: boolean, rsv1: boolean }

/** ws's Sender state when nothing is being compressed or read (`DEFAULT` in lib/sender.js). */
const senderIdle = 0
const textFrame: FrameOptions = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false }
const deflatedTextFrame: FrameOptions = { ...textFrame, rsv1: true }
const deflate = 'permessage-deflate'
/** zlib's and RFC 7692's window when the peer asked for no smaller one */
const defaultWindowBits = 15
/** ws's default threshold, for sockets of a registration that did not set ours */
const wsDefaultThreshold = 1024

/**
 * The zlib level of the shared compressed frame. Level 3 costs about half of the default (6)
 * for documents of a few KB and makes them about 8 % larger (bench/README.md, "Wire efficiency").
 */
export const deflateLevel = 3

/** The parts of Node's zlib stream `SharedDeflate` drives (lib/zlib.js, not public API). */
interface ZlibInternals {
  _handle: { writeSync: (flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number) => void } | null
  _writeState: Uint32Array
}

/**
 * Whether Node's zlib stream failed: its native handle reports an error synchronously, from
 * within `writeSync`, and Node destroys the stream right there (lib/zlib.js, `zlibOnError`).
 * (Node 20+ keeps no `_hadError` flag on a zlib stream; `destroyed` is public.) The write's
 * results in `_writeState` are then those of the write before: never read them.
 */
function failed (stream: DeflateRaw): boolean {
  return stream.destroyed
}

/**
 * One raw deflate stream per window size, kept for the node's lifetime: each message is
 * compressed in it and ended with a full flush (Z_FULL_FLUSH), which empties the stream's
 * history, so each message's bytes stand alone, exactly what a peer that negotiated
 * `server_no_context_takeover` inflates (and the same bytes for the same message every time).
 * `zlib.deflateRawSync` would set up (and allocate, about 256 KB) a new zlib stream per
 * publication, about a third of what a 2 KB document costs to compress. Node has no public
 * synchronous API on a stream: this drives the stream's native handle the way Node's own
 * `deflateRawSync` does, and falls back to `deflateRawSync` where those internals are missing
 * or the stream fails (checked once, on a round trip, when the stream is made). Exported for
 * tests only (test/outbound/shared-deflate.test.ts); the plugin's one user is `deflateAlone`.
 */
export class SharedDeflate {
  private readonly stream: DeflateRaw & ZlibInternals
  private out = Buffer.allocUnsafe(16 * 1024)

  private constructor (readonly windowBits: number) {
    this.stream = createDeflateRaw({ windowBits, level: deflateLevel }) as DeflateRaw & ZlibInternals
    this.stream.on('error', () => {}) // reported by `compress` as a failure: the fallback takes over
  }

  /** A stream for `windowBits` whose internals work, else undefined. */
  static open (windowBits: number): SharedDeflate | undefined {
    try {
      const shared = new SharedDeflate(windowBits)
      const probe = Buffer.from('{"probe":"probe probe probe"}')
      const first = shared.compress(probe)
      const second = shared.compress(probe)
      if (first === undefined || second === undefined || !first.equals(second)) return undefined
      const expected = deflateRawSync(probe, { windowBits, level: deflateLevel, finishFlush: zlibConstants.Z_SYNC_FLUSH })
      return first.equals(expected) ? shared : undefined
    } catch {
      return undefined
    }
  }

  /** The DEFLATE bytes of `input` alone, ending with the flush's 00 00 ff ff; undefined when the stream failed. */
  compress (input: Buffer): Buffer | undefined {
    const { stream } = this
    const handle = stream._handle
    const state = stream._writeState
    if (handle === null || handle === undefined || !(state instanceof Uint32Array) || failed(stream)) return undefined
    let chunks: Buffer[] | undefined
    let offset = 0
    let inOff = 0
    let availIn = input.length
    for (;;) {
      const out = this.out
      handle.writeSync(zlibConstants.Z_FULL_FLUSH, input, inOff, availIn, out, offset, out.length - offset)
      if (failed(stream)) return undefined
      const availOut = state[0]
      const used = out.length - offset - availOut
      inOff += availIn - state[1]
      availIn = state[1]
      offset += used
      if (availOut !== 0) break
      // the output buffer is full: keep what it holds and go on in a fresh one
      ;(chunks ??= []).push(out.subarray(0, offset))
      this.out = Buffer.allocUnsafe(out.length * 2)
      offset = 0
    }
    const last = Buffer.from(this.out.subarray(0, offset))
    return chunks === undefined ? last : Buffer.concat([...chunks, last])
  }
}

/** The shared streams by window size; `null` where the fallback is used. */
const sharedDeflates = new Map<number, SharedDeflate | null>()

/**
 * For tests, read-only: the shared stream `deflateAlone` uses for `windowBits`; `null` once it
 * fell back to `deflateRawSync` for good, undefined before that window's first message.
 */
export function sharedDeflateOf (windowBits: number): SharedDeflate | null | undefined {
  return sharedDeflates.get(windowBits)
}

/** `payload` compressed for a peer without server context takeover, ending with 00 00 ff ff. */
function deflateAlone (payload: Buffer, windowBits: number): Buffer {
  let shared = sharedDeflates.get(windowBits)
  if (shared === undefined) {
    shared = SharedDeflate.open(windowBits) ?? null
    sharedDeflates.set(windowBits, shared)
  }
  const compressed = shared?.compress(payload)
  if (compressed !== undefined) return compressed
  if (shared !== null) sharedDeflates.set(windowBits, null)
  return deflateRawSync(payload, { windowBits, level: deflateLevel, finishFlush: zlibConstants.Z_SYNC_FLUSH })
}

/** Published once per WebSocket frame built: `{ bytes }`, its size. */
export const frameBuiltChannel = channel('fastify-channels:frame-built')

/**
 * `Sender.frame` of the class that made `sender`, when that Sender has the fields this module
 * reads and frames a text message the standard way; undefined (use `ws.send`) otherwise.
 */
export function detectSenderFrame (sender: object): FrameFn | undefined {
  try {
    const Sender = sender.constructor as { frame?: unknown }
    if (typeof Sender.frame !== 'function') return undefined
    const { _state: state, _queue: queue, _firstFragment: firstFragment } = sender as Partial<SenderInternals>
    if (typeof state !== 'number' || !Array.isArray(queue) || typeof firstFragment !== 'boolean') return undefined
    const frame = Sender.frame.bind(Sender) as FrameFn
    const payload = Buffer.from('ok')
    const parts = frame(payload, textFrame)
    if (!Array.isArray(parts) || parts.length !== 2 || parts[1] !== payload) return undefined
    if (!Buffer.isBuffer(parts[0]) || parts[0].length !== 2 || parts[0][0] !== 0x81 || parts[0][1] !== 2) return undefined
    return frame
  } catch {
    return undefined
  }
}

/** The last Sender class probed and what it gave: sockets of one server share one class. */
let probedSender: unknown
let probedFrame: FrameFn | undefined

function senderFrameOf (sender: SenderInternals): FrameFn | undefined {
  if (sender.constructor !== probedSender) {
    probedSender = sender.constructor
    probedFrame = detectSenderFrame(sender)
  }
  return probedFrame
}

/** One outbound message: its text (for `ws.send` and the message log) and, once needed, its frames. */
export class OutboundFrame {
  private payload: Buffer | undefined
  private wire: Buffer | undefined
  /** the compressed frame for the default window; others (rare) in `deflatedByWindow` */
  private deflated: Buffer | undefined
  private deflatedByWindow: Map<number, Buffer> | undefined

  /** `volatile`: a socket with outbound bytes still queued skips it (see `hasBacklog`) */
  constructor (readonly text: string, readonly volatile = false) {}

  /** The UTF-8 payload, encoded once. */
  private utf8 (): Buffer {
    this.payload ??= Buffer.from(this.text)
    return this.payload
  }

  /** The payload's size in bytes. */
  size (): number {
    return this.utf8().length
  }

  /** The whole WebSocket frame, built on first use with `frame` and shared by every socket that gets it. */
  bytes (frame: FrameFn): Buffer {
    if (this.wire === undefined) {
      this.wire = join(frame(this.utf8(), textFrame))
      if (frameBuiltChannel.hasSubscribers) frameBuiltChannel.publish({ bytes: this.wire.length })
    }
    return this.wire
  }

  /**
   * The permessage-deflate frame (RSV1 set) for peers that negotiated no server context
   * takeover and a window of `windowBits`: compressed once, shared by every such socket.
   */
  deflatedBytes (frame: FrameFn, windowBits: number): Buffer {
    let wire = windowBits === defaultWindowBits ? this.deflated : this.deflatedByWindow?.get(windowBits)
    if (wire === undefined) {
      const compressed = deflateAlone(this.utf8(), windowBits)
      // RFC 7692 7.2.1: the flush ends with an empty stored block, 00 00 ff ff; drop it.
      wire = join(frame(compressed.subarray(0, compressed.length - 4), deflatedTextFrame))
      if (windowBits === defaultWindowBits) this.deflated = wire
      else (this.deflatedByWindow ??= new Map()).set(windowBits, wire)
      if (frameBuiltChannel.hasSubscribers) frameBuiltChannel.publish({ bytes: wire.length, compressed: true })
    }
    return wire
  }
}

/** [header, payload], or [header] alone for an empty payload, as one Buffer. */
function join (parts: Buffer[]): Buffer {
  return parts.length === 1 ? parts[0] : Buffer.concat(parts, parts[0].length + parts[1].length)
}

/** A frame as given (already an OutboundFrame) or wrapped from its text (volatile or not). */
export function toOutbound (frame: string | OutboundFrame, volatile = false): OutboundFrame {
  return typeof frame === 'string' ? new OutboundFrame(frame, volatile) : frame
}

/**
 * What the TCP socket still held, unsent, when this module last corked it: the kernel's refusal
 * before the turn's (or the gather's) own frames queued behind the cork.
 */
const kQueuedAtCork = Symbol('fastify-channels.queuedAtCork')
type MarkedSocket = Socket & { [kQueuedAtCork]?: number }

/** Corks `socket` (uncorked) and notes what it held unsent at that moment. */
function corkMarked (socket: Socket): void {
  (socket as MarkedSocket)[kQueuedAtCork] = socket.writableLength
  socket.cork()
}

/**
 * Whether `ws` has outbound bytes still queued: bytes the kernel would not take. Frames held
 * back on purpose (this turn's corked writes, a `writeDelayMs` gather) do not count: while this
 * module holds the socket corked, only what it held unsent when corked does. A volatile frame
 * is skipped when this is true (Connection.sendFrame).
 */
export function hasBacklog (ws: WebSocket): boolean {
  const socket = (ws as unknown as WebSocketInternals)._socket
  if (socket === null || socket === undefined) return ws.bufferedAmount > 0
  if (socket.writableCorked > 0) return ((socket as MarkedSocket)[kQueuedAtCork] ?? socket.writableLength) > 0
  return socket.writableLength > 0
}

/**
 * Sockets corked since the current run of code began (the synchronous run and its microtasks:
 * a loop of broadcasts, one Redis reply's messages), flushed when it ends; swapped with
 * `runSpare` while flushing.
 */
let runCorked: Socket[] = []
let runSpare: Socket[] = []
let runFlushScheduled = false
/** Sockets written to in this event-loop turn, held corked until its end (`setImmediate`). */
let turnCorked: Socket[] = []
let turnSpare: Socket[] = []
let turnFlushScheduled = false

/**
 * The end of a run of code: every socket it wrote to gets what it queued in one write (one
 * writev), then stays corked for the rest of the turn, so another run in the same turn (the next
 * I/O callback, the continuation after an `await`) queues behind it: at most two writes per
 * socket and turn.
 */
function flushRun (): void {
  const sockets = runCorked
  runCorked = runSpare
  runSpare = sockets
  runFlushScheduled = false
  for (let i = 0; i < sockets.length; i++) {
    const socket = sockets[i]
    socket.uncork()
    corkMarked(socket)
    turnCorked.push(socket)
  }
  sockets.length = 0
  if (!turnFlushScheduled) {
    turnFlushScheduled = true
    setImmediate(flushTurn)
  }
}

/** The end of the turn: what later runs queued leaves, and the sockets are uncorked. */
function flushTurn (): void {
  const sockets = turnCorked
  turnCorked = turnSpare
  turnSpare = sockets
  turnFlushScheduled = false
  for (let i = 0; i < sockets.length; i++) sockets[i].uncork()
  sockets.length = 0
}

/**
 * The bytes `ws` gets for `frame`: the plain frame, or the shared compressed one where the
 * socket negotiated deflate without server context takeover and the payload reaches the
 * threshold; undefined where ws must compress it itself (context takeover).
 */
function frameFor (ws: WebSocket, extension: PerMessageDeflateInternals | undefined, frame: OutboundFrame, build: FrameFn): Buffer | undefined {
  if (extension === undefined) return frame.bytes(build)
  const params = extension.params
  if (params === null || params.server_no_context_takeover !== true) return undefined
  const threshold = wireSettingsOf(ws).threshold ?? extension._threshold ?? wsDefaultThreshold
  if (frame.size() < threshold) return frame.bytes(build)
  const bits = params.server_max_window_bits
  return frame.deflatedBytes(build, typeof bits === 'number' ? bits : defaultWindowBits)
}

/**
 * Writes `frame` to `ws`, which the caller checked is OPEN. Direct while ws's Sender is idle
 * (the socket's later frames of this turn are coalesced, or gathered for `writeDelayMs`), else
 * through `ws.send`.
 */
export function writeFrame (ws: WebSocket, frame: OutboundFrame): void {
  const inner = ws as unknown as WebSocketInternals
  const sender = inner._sender
  const socket = inner._socket
  if (sender !== null && sender !== undefined && socket !== null && socket !== undefined) {
    const build = senderFrameOf(sender)
    if (build !== undefined && sender._state === senderIdle && sender._queue.length === 0 && sender._firstFragment) {
      const bytes = frameFor(ws, inner._extensions[deflate], frame, build)
      if (bytes !== undefined) {
        const delay = wireSettingsOf(ws).writeDelayMs
        if (delay > 0) {
          if (socket.writableCorked === 0) (socket as MarkedSocket)[kQueuedAtCork] = socket.writableLength
          gather(socket, delay)
          socket.write(bytes)
          return
        }
        if (socket.writableCorked === 0) {
          // The socket's first frame of this turn: it and the rest of this run of code queue
          // behind the cork and leave together when the run ends (one write).
          corkMarked(socket)
          runCorked.push(socket)
          if (!runFlushScheduled) {
            runFlushScheduled = true
            queueMicrotask(flushRun)
          }
        }
        socket.write(bytes)
        return
      }
    }
  }
  ws.send(frame.text)
}

/** Shared by every socket (no closure each): `this` is the WebSocket that emits 'error'. */
function flushBeforeError (this: WebSocket): void {
  flushNow(this)
}

/**
 * Call once per socket. ws answers a peer's protocol violation with its own close frame (1002,
 * 1007, 1009) and emits 'error' right after, and error handlers terminate the socket: what this
 * turn corked, that close frame included, must reach the kernel before the socket is destroyed.
 */
export function flushBeforeErrors (ws: WebSocket): void {
  ws.prependListener('error', flushBeforeError)
}

/**
 * Hands what this turn corked for `ws` to the kernel now. The slow-consumer check calls it
 * before deciding: bytes that sit corked only for this turn do not make a peer slow.
 */
export function flushNow (ws: WebSocket): void {
  const socket = (ws as unknown as WebSocketInternals)._socket
  if (socket !== null && socket !== undefined && socket.writableCorked > 0) socket.uncork()
}

// ---- fan-out ------------------------------------------------------------------------------
// Delivery of one pre-encoded frame to many local sockets. A message is encoded once by the
// caller and wrapped in one OutboundFrame, whose WebSocket frame is built once and shared by
// every recipient (see frame-writer.ts); this module only decides who gets which frame.
// Nothing here allocates per recipient.

/** What fan-out needs of a connection. */
export interface Recipient {
  readonly id: string
  /** the number of the last multi-channel delivery this recipient got (dedupe without a Set) */
  deliveryStamp: number
  sendFrame (frame: OutboundFrame): void
}

let lastStamp = 0

/**
 * Sends `frame` to every recipient but the one with id `except`; returns how many got it.
 * `volatile`: a text frame becomes a volatile one (a recipient with a backlog skips it).
 */
export function deliverToAll (recipients: Iterable<Recipient>, frame: string | OutboundFrame, except?: string, volatile = false): number {
  const outbound = toOutbound(frame, volatile)
  let count = 0
  for (const recipient of recipients) {
    if (recipient.id === except) continue
    recipient.sendFrame(outbound)
    count++
  }
  return count
}

/**
 * Sends `frames[i]` to the members of `channels[i]`, each recipient once: one in several of the
 * channels gets the frame of the first of them. Returns how many recipients got a frame.
 */
export function deliverToChannels (
  membersOf: (channel: string) => Iterable<Recipient> | undefined,
  channels: readonly string[],
  frames: ReadonlyArray<string | OutboundFrame>,
  except?: string,
  volatile = false
): number {
  if (channels.length === 1) {
    const members = membersOf(channels[0])
    return members === undefined ? 0 : deliverToAll(members, frames[0], except, volatile)
  }
  const stamp = ++lastStamp
  let count = 0
  for (let i = 0; i < channels.length; i++) {
    const members = membersOf(channels[i])
    if (members === undefined) continue
    let outbound: OutboundFrame | undefined
    for (const recipient of members) {
      if (recipient.deliveryStamp === stamp || recipient.id === except) continue
      recipient.deliveryStamp = stamp
      outbound ??= toOutbound(frames[i], volatile)
      recipient.sendFrame(outbound)
      count++
    }
  }
  return count
}
