/**
 * The memory engine's history store: per history channel a bounded ring of its last entries
 * (each kept `ttl` ms), its epoch and its top offset. Channels without history have no stream
 * here. A stream's epoch and top offset outlive its entries by 24 hours; after that (or a
 * restart of the process) the channel starts a new epoch. Entries are the core's opaque text.
 *
 * Only a publication creates a stream. Reading a channel never published (a subscribe, a
 * `history()`) stores nothing: it answers offset 0 and the epoch the channel's first
 * publication would get now, so subscriptions alone cost no memory here, however many
 * channels they name. That epoch is derived, not drawn: a hash of the store's random base
 * (a new one per process), the channel and the current *period* (time divided by how long a
 * stream outlives its last use, `stateTtl`). A stream lives at least one period after it
 * starts, so two streams of one channel never start in the same period: they never share an
 * epoch, and a client's position in a lost stream never matches a later one. A client that
 * joined a never-published channel keeps its position when the first publication comes in
 * the same period (the usual case); across a period's end it gets `recovered: false` once.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { StoredEntry, StreamPosition, StreamRead } from '../parts.js'
import type { HistoryLimits, HistoryQuery } from '../types.js'
import { historyStateTtl } from '../types.js'

/** How long a stream outlives its last use: also the length of an epoch period. */
function stateTtl (ttl: number): number {
  return Math.max(historyStateTtl, ttl)
}

interface TimedEntry extends StoredEntry {
  /** ms timestamp of the publication */
  at: number
}

/** One channel's stream: a ring holding at most `capacity` entries, oldest at `head`. */
class Stream {
  top = 0
  lastUsed: number
  private ring: Array<TimedEntry | undefined>
  private head = 0
  private count = 0

  constructor (readonly epoch: string, capacity: number, now: number) {
    this.ring = new Array<TimedEntry | undefined>(capacity)
    this.lastUsed = now
  }

  append (entry: TimedEntry, capacity: number): void {
    if (capacity !== this.ring.length) this.resize(capacity)
    const size = this.ring.length
    if (this.count < size) {
      this.ring[(this.head + this.count) % size] = entry
      this.count++
    } else {
      this.ring[this.head] = entry
      this.head = (this.head + 1) % size
    }
  }

  /** Drops entries published before `oldestKept`; they are not kept any more. */
  expire (oldestKept: number): void {
    while (this.count > 0 && (this.ring[this.head] as TimedEntry).at < oldestKept) {
      this.ring[this.head] = undefined
      this.head = (this.head + 1) % this.ring.length
      this.count--
    }
  }

  /** the kept entries, oldest first, from the newest `n` */
  newest (n: number): TimedEntry[] {
    const take = Math.min(n, this.count)
    const entries: TimedEntry[] = []
    for (let i = this.count - take; i < this.count; i++) entries.push(this.ring[(this.head + i) % this.ring.length] as TimedEntry)
    return entries
  }

  /** offset of the oldest kept entry; top + 1 when none is kept */
  get oldest (): number {
    return this.count === 0 ? this.top + 1 : (this.ring[this.head] as TimedEntry).offset
  }

  private resize (capacity: number): void {
    const kept = this.newest(capacity)
    this.ring = new Array<TimedEntry | undefined>(capacity)
    for (let i = 0; i < kept.length; i++) this.ring[i] = kept[i]
    this.head = 0
    this.count = kept.length
  }
}

function stored ({ offset, entry }: TimedEntry): StoredEntry {
  return { offset, entry }
}

export class MemoryHistory {
  private readonly streams = new Map<string, Stream>()
  /** the random part of every epoch this store gives: a new one per store (per process) */
  private readonly base = randomBytes(9).toString('base64url')

  constructor (private readonly clock: () => number = Date.now) {}

  /** The epoch a stream of `channel` that starts at `now` gets (see above). */
  private startingEpoch (channel: string, now: number, limits: HistoryLimits): string {
    const period = Math.floor(now / stateTtl(limits.ttl))
    return createHash('sha1').update(`${this.base}\n${period}\n${channel}`).digest('base64url').slice(0, 16)
  }

  /** Assigns the next offset and keeps `entry` under it; returns the stream's new position. */
  append (channel: string, entry: string, limits: HistoryLimits): StreamPosition {
    const now = this.clock()
    let stream = this.streams.get(channel)
    if (stream === undefined) this.streams.set(channel, stream = new Stream(this.startingEpoch(channel, now, limits), limits.size, now))
    stream.lastUsed = now
    const offset = ++stream.top
    stream.append({ offset, entry, at: now }, limits.size)
    return { offset, epoch: stream.epoch }
  }

  /** A read of a channel without a stream stores nothing: offset 0, the epoch it would start with. */
  read (channel: string, query: HistoryQuery, limits: HistoryLimits): StreamRead {
    const now = this.clock()
    const stream = this.streams.get(channel)
    if (stream === undefined) {
      return { epoch: this.startingEpoch(channel, now, limits), offset: 0, entries: [], complete: 'last' in query || query.after === 0 }
    }
    stream.lastUsed = now
    stream.expire(now - limits.ttl)
    const { epoch, top } = stream
    if ('last' in query) return { epoch, offset: top, entries: stream.newest(query.last).map(stored), complete: true }
    const { after } = query
    const complete = after <= top && (after === top || stream.oldest <= after + 1)
    return { epoch, offset: top, entries: complete ? stream.newest(top - after).map(stored) : [], complete }
  }

  /** Frees expired entries, and streams unused for 24 hours (or longer than their ttl). */
  sweep (ttl: number): void {
    const now = this.clock()
    const idle = stateTtl(ttl)
    for (const [channel, stream] of this.streams) {
      if (now - stream.lastUsed > idle) this.streams.delete(channel)
      else stream.expire(now - ttl)
    }
  }

  get size (): number {
    return this.streams.size
  }
}
