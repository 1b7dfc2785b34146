/**
 * One timer for every socket of a node (not one per socket): each tick terminates the peers
 * that missed the previous ping's pong and pings the others.
 */
export interface Beating {
  heartbeat (): void
}

/** Starts the heartbeat; returns the function that stops it. */
export function startHeartbeat (sockets: Map<string, Beating>, intervalMs: number): () => void {
  const timer = setInterval(() => {
    for (const socket of sockets.values()) socket.heartbeat()
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
