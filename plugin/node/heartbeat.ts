/**
 * One timer for every socket of a node (not one per socket): each tick terminates the peers
 * that missed the previous ping's pong and pings the others.
 *
 * The judgement runs in a `setImmediate` after the timer fires, not in the timer callback:
 * timers run before the event loop reads sockets, so after a stall (a long GC, a busy
 * handler) longer than the interval, pongs that already arrived would still be unread when
 * the timer fires, and every healthy peer would be cut off. Deferring to the check phase lets
 * the poll phase read them first.
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

/** Starts the heartbeat; returns the function that stops it. */
export function startHeartbeat (peers: ReadonlyMap<string, HeartbeatPeer>, intervalMs: number): () => void {
  let stopped = false
  const tick = (): void => {
    if (stopped) return
    for (const peer of peers.values()) checkPulse(peer)
  }
  const timer = setInterval(() => { setImmediate(tick) }, intervalMs)
  timer.unref()
  return () => {
    stopped = true
    clearInterval(timer)
  }
}
