/**
 * Draining a node on `fastify.close()`: its sockets are closed in batches spread evenly over
 * `drainMs` instead of in one loop. Clients told 1001 at the same instant all come back at the
 * same instant (each resubscribing, with history and presence) to whichever nodes are left; a
 * drain spreads that wave over `drainMs`, and the client's own jitter spreads it further.
 *
 * Batches are at least `drainStepMs` apart: 10,000 sockets over 1 s are 100 batches of 100, a
 * few hundred sockets over 1 s are 100 batches of two or three, 5 sockets are 5 batches.
 * `drainMs: 0` is one batch: every socket at once, at once.
 */

/** The shortest time between two batches (a timer finer than this buys nothing). */
export const drainStepMs = 10

/**
 * Resolves after `ms`, or as soon as `early` settles (the timer is then cleared). Not
 * unref'd: `fastify.close()` must not be cut short by an event loop that empties.
 */
async function sleep (ms: number, early: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([new Promise((resolve) => { timer = setTimeout(resolve, Math.max(0, ms)) }), early])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * How many batches `count` sockets are closed in over `drainMs`: one per `drainStepMs`, never
 * more than one per socket, at least one.
 */
export function drainBatches (count: number, drainMs: number): number {
  return Math.max(1, Math.min(count, Math.floor(drainMs / drainStepMs)))
}

/**
 * Calls `close` on each of `items`, in order, in batches spread evenly over `drainMs`: batch i
 * of n is due `i * drainMs / n` ms after the start (the first runs synchronously), so the last
 * is due one step before `drainMs`. A wake-up that comes late (a busy event loop: the node is
 * closing sockets and running their disconnect sequences) closes every batch due by then, so
 * the drain still ends at `drainMs`, not one loop turn per batch later. Stops as soon as `gone`
 * settles (every item already left on its own). Resolves after the last batch.
 */
export async function drain<T> (items: readonly T[], drainMs: number, close: (item: T) => void, gone: Promise<unknown>): Promise<void> {
  const batches = drainBatches(items.length, drainMs)
  const step = drainMs / batches
  let left = false
  const stop = gone.then(() => { left = true })
  const start = performance.now()
  let closed = 0
  for (;;) {
    const due = step === 0 ? batches : Math.min(batches, Math.floor((performance.now() - start) / step) + 1)
    const upTo = Math.floor((due * items.length) / batches)
    for (; closed < upTo; closed++) close(items[closed])
    if (closed >= items.length) return
    await sleep(start + due * step - performance.now(), stop)
    if (left) return
  }
}
