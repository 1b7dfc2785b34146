/** A read-only view of a Set: what handlers see as `socket.channels` (no `add`, no `delete`). */
export class ReadonlySetView<T> implements ReadonlySet<T> {
  constructor (private readonly set: Set<T>) {}
  get size (): number { return this.set.size }
  has (value: T): boolean { return this.set.has(value) }
  forEach (fn: (value: T, key: T, set: ReadonlySet<T>) => void, thisArg?: unknown): void {
    for (const value of this.set) fn.call(thisArg, value, value, this)
  }

  entries (): SetIterator<[T, T]> { return this.set.entries() }
  keys (): SetIterator<T> { return this.set.keys() }
  values (): SetIterator<T> { return this.set.values() }
  [Symbol.iterator] (): SetIterator<T> { return this.set.values() }
}
