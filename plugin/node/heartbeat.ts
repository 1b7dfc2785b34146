/**
 * One timer for every socket of a node (not one per socket), and its pings spread over the
 * interval: each socket is checked once per interval, but not all in the same tick. Pinging
 * 10,000 sockets in one tick stalls the event loop for every other socket (a latency spike
 * every interval); in slices of `heartbeatSliceMs`, a tick pings a few dozen.
 *
 * Each socket belongs to one slice, by its session id, for as long as it lives: it is checked
 * exactly one interval after its last check (a new socket is first checked one to two intervals
 * after it connected). A check terminates the peer if it missed the previous ping's pong, else
 * pings it.
 *
 * The checks run in a `setImmediate` after the timer fires, not in the timer callback: timers
 * run before the event loop reads sockets, so after a stall (a long GC, a busy handler) longer
 * than the interval, pongs that already arrived would still be unread when the timer fires,
 * and every healthy peer would be cut off. Deferring to the check phase lets the poll phase
 * read them first.
 */
import type { FastifyBaseLogger } from 'fastify'
import WebSocket from 'ws'
import { CloseCodes } from '../../schemas/protocol.js'
import type { DisconnectInfo } from '../types.js'

/** What the heartbeat needs of a socket. */
export interface HeartbeatPeer {
  readonly id: string
  readonly ws: Pick<WebSocket, 'readyState' | 'ping'>
  readonly log: Pick<FastifyBaseLogger, 'info'>
  /** false from a ping until the peer's pong (the connection sets it back on 'pong') */
  alive: boolean
  /** destroys the socket without a closing handshake; `why` is what disconnect handlers see */
  terminate (why: DisconnectInfo): void
}

/** ws can only report 1006 with no reason for a terminated socket: disconnect handlers get this. */
export const heartbeatTimeout: Readonly<DisconnectInfo> = Object.freeze({ code: CloseCodes.ABNORMAL_CLOSURE, reason: 'heartbeat timeout' })

/** The timer's period: one slice of the sockets is checked every this many ms. */
export const heartbeatSliceMs = 100
/** At most this many slices per interval (an interval over 100 s gets longer slices). */
export const maxHeartbeatSlices = 1000

/** One tick for one peer: terminate it if it missed the last pong, else ping it. */
export function checkPulse (peer: HeartbeatPeer): void {
  if (!peer.alive) {
    peer.log.info({ sessionId: peer.id }, 'channels: peer missed a pong, terminated')
    peer.terminate(heartbeatTimeout)
    return
  }
  peer.alive = false
  if (peer.ws.readyState === WebSocket.OPEN) peer.ws.ping()
}

/** How many slices an interval is cut into: one per `heartbeatSliceMs`, at least one. */
export function heartbeatSlices (intervalMs: number): number {
  return Math.max(1, Math.min(maxHeartbeatSlices, Math.floor(intervalMs / heartbeatSliceMs)))
}

/**
 * The slice a session id belongs to, in [0, slices): an FNV-1a hash of its first 8 characters
 * (ids are random: 48 bits fill the slices evenly), the same on every call.
 */
export function sliceOf (id: string, slices: number): number {
  let hash = 0x811c9dc5
  const end = Math.min(id.length, 8)
  for (let i = 0; i < end; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % slices
}

/** Starts the heartbeat; returns the function that stops it. */
export function startHeartbeat (peers: ReadonlyMap<string, HeartbeatPeer>, intervalMs: number): () => void {
  const slices = heartbeatSlices(intervalMs)
  const checkAll = (): void => {
    for (const peer of peers.values()) checkPulse(peer)
  }
  // Each round, the session ids of each slice; the next round's are sorted out a share per tick
  // during this one (not all in one tick: that would be a spike of its own), from a live
  // iterator over `peers`, which also visits the sockets that connect meanwhile. Ids, not
  // peers: a peer that leaves is not kept alive until its slice comes.
  const empty = (): string[][] => Array.from({ length: slices }, () => [])
  let current = empty()
  let next = empty()
  let sorting = peers.keys()
  let slice = 0
  const checkSlice = (): void => {
    const last = slice === slices - 1
    let share = last ? Infinity : Math.ceil(peers.size / slices)
    for (; share > 0; share--) {
      const step = sorting.next()
      if (step.done === true) break
      next[sliceOf(step.value, slices)].push(step.value)
    }
    for (const id of current[slice]) {
      const peer = peers.get(id)
      if (peer !== undefined) checkPulse(peer) // else it left since it was sorted
    }
    current[slice] = []
    if (last) {
      current = next
      next = empty()
      sorting = peers.keys()
    }
    slice = last ? 0 : slice + 1
  }
  // Under one slice (an interval under 200 ms): every socket in each tick.
  const tick = slices === 1 ? checkAll : checkSlice
  let stopped = false
  const timer = setInterval(() => { setImmediate(() => { if (!stopped) tick() }) }, intervalMs / slices)
  timer.unref()
  return () => {
    stopped = true
    clearInterval(timer)
  }
}
