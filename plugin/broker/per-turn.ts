/**
 * One run of some work at the end of an event-loop turn, shared by every caller of that turn.
 *
 * The registries write the sessions opened and closed in one turn together (Redis: one
 * transaction; NATS: one flush after all the SUB/UNSUB lines), so a storm of connects or a
 * shutdown closing thousands of sockets costs one round trip per turn, not one per socket.
 * Each caller still learns the outcome of the run that carries its change.
 */

/**
 * Returns a function that resolves (or rejects) with the next run of `work`, which starts once
 * the current turn's I/O callbacks are done (`setImmediate`). Calls of one turn share a run. A
 * call made while a run is under way waits for the next one: the run under way may already have
 * read what it writes, so it cannot carry that caller's change.
 */
export function perTurn (work: () => Promise<void>): () => Promise<void> {
  let next: Promise<void> | undefined
  return async function ofThisTurn (): Promise<void> {
    next ??= new Promise<void>((resolve) => { setImmediate(resolve) }).then(async () => {
      next = undefined
      await work()
    })
    await next
  }
}
