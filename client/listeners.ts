/**
 * The client's listener sets: adding one with its remover, and calling a user's listener so
 * that its exception cannot break the client.
 */

/** Calls a user's listener; its exception is rethrown later, so it cannot break the client. */
export function callSafely<A extends unknown[]> (fn: (...args: A) => void, ...args: A): void {
  try {
    fn(...args)
  } catch (err) {
    queueMicrotask(() => { throw err })
  }
}

/** Adds `item` to `set`; returns the function that removes it. */
export function subscribeTo<T> (set: Set<T>, item: T): () => void {
  set.add(item)
  return () => { set.delete(item) }
}
