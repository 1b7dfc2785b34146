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
export interface Beating {
  heartbeat (): void
}

/** Starts the heartbeat; returns the function that stops it. */
export function startHeartbeat (sockets: Map<string, Beating>, intervalMs: number): () => void {
  let stopped = false
  const tick = (): void => {
    if (stopped) return
    for (const socket of sockets.values()) socket.heartbeat()
  }
  const timer = setInterval(() => { setImmediate(tick) }, intervalMs)
  timer.unref()
  return () => {
    stopped = true
    clearInterval(timer)
  }
}
