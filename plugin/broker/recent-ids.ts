/**
 * The dedupe keys of the multi-channel publications a node delivered lately. A publication to
 * several channels is published once per channel, and a node subscribed to several of them
 * keeps the first copy. On one Redis the copies reach a subscriber back to back (one script
 * call); on a cluster they come from different shards, in any interleaving with other traffic,
 * as late as a shard is slow. So a key is remembered for `windowMs` (far longer than a copy can
 * trail another: a slower shard makes the publisher's call time out and fail), and at most
 * `capacity` keys are kept, so a flood costs bounded memory.
 */
export class RecentIds {
  /** key → when it was first seen; in insertion order, so the oldest are at the front */
  private readonly seen = new Map<string, number>()

  constructor (
    private readonly capacity = 100_000,
    private readonly windowMs = 30_000,
    private readonly now: () => number = Date.now
  ) {}

  /** true the first time `key` is offered (within the window), false for a repeat */
  firstTime (key: string): boolean {
    const now = this.now()
    for (const [oldest, at] of this.seen) {
      if (now - at < this.windowMs) break
      this.seen.delete(oldest)
    }
    if (this.seen.has(key)) return false
    if (this.seen.size >= this.capacity) this.seen.delete(this.seen.keys().next().value as string)
    this.seen.set(key, now)
    return true
  }
}
