/**
 * The Redis engine's history store: offsets, epochs and entries live in Redis, so any node can
 * answer a recovery, also after the node a client left died without closing. Per history
 * channel, under the prefix, two keys sharing one hash tag with the channel's pub/sub name
 * (RedisKeys), so on a cluster a script's keys and the shard channel it publishes on are all
 * in the channel's one slot:
 *
 *   <prefix>:hist:{<channel>}:meta   hash: e = epoch, o = top offset   (expires 24 h after use)
 *   <prefix>:hist:{<channel>}:log    stream of entries, id <offset>-0, fields d (the entry) and
 *                                    t (ms, Redis' clock); at most `size` entries, the key
 *                                    expires `ttl` after the last
 *   <prefix>:hist-base:{<tag>}       per slot (not per channel): the random base of the
 *                                    epochs of the streams in the slot; `<tag>` is a short
 *                                    hash tag of that slot (expires 24 h after use)
 *
 * Only a publication creates a channel's two keys: a read of a channel never published (a
 * subscribe, a `history()`) answers offset 0 and the epoch the first publication would get,
 * derived from the slot's base (lua/prelude-stream.lua), so subscriptions alone add at most
 * one small key per slot (16384 in all), whatever the number of channels.
 *
 * An append is one script (lua/history-append.lua): assign the offset, store the entry, publish
 * its envelope on the channel, so two nodes publishing at once produce one dense order that
 * every subscriber receives alike, the publisher included. A read is another
 * (lua/history-read.lua). Calls go through the publisher's link: its deadline and its bound on
 * bytes in flight apply. An append carries a deadline on Redis' clock (RedisClock), as plain
 * publications do: one the node gave up on (and reported failed) is refused by Redis if it
 * arrives later, so it is never stored nor delivered.
 */
import { randomBytes } from 'node:crypto'
import type { RedisClock } from './clock.js'
import type { RedisKeys } from './keys.js'
import type { Link } from './link.js'
import type { PubSubMode } from './pubsub.js'
import { LateError } from './transport.js'
import { runScript } from './scripts.js'
import { keySlot, slotCount } from './slot.js'
import { historyStateTtl, type HistoryLimits, type HistoryQuery } from '../types.js'
import type { HistoryAppend, HistoryStore, StreamPosition, StreamRead } from '../parts.js'

function newBase (): string {
  return randomBytes(9).toString('base64url')
}

/** For each slot, a number whose decimal text, as a hash tag, lies in that slot (filled on first use). */
let slotTags: Uint32Array | undefined

/** A short hash tag in `slot`: the base key of a channel's slot lies beside its other keys. */
function tagOf (slot: number): string {
  if (slotTags === undefined) {
    const tags = new Uint32Array(slotCount)
    const found = new Uint8Array(slotCount)
    let left = slotCount
    for (let n = 0; left > 0; n++) {
      const at = keySlot(String(n))
      if (found[at] === 1) continue
      found[at] = 1
      tags[at] = n
      left--
    }
    slotTags = tags
  }
  return String(slotTags[slot])
}

/** How long an epoch and a top offset outlive the stream's last use. */
function stateTtl (limits: HistoryLimits): number {
  return Math.max(historyStateTtl, limits.ttl)
}

export class RedisHistoryStore implements HistoryStore {
  /**
   * @param clock Redis' clock, for the deadline of each append
   * @param budget ms after an append was made until which Redis may still run it
   */
  constructor (
    private readonly pub: Link,
    private readonly keys: RedisKeys,
    private readonly pubsub: PubSubMode,
    private readonly clock: RedisClock,
    private readonly budget: number
  ) {}

  /** A script's keys for `channel`: its meta, its log and its slot's base, all in one slot. */
  private keysOf (channel: string): [meta: string, log: string, base: string] {
    const { keys } = this
    const meta = keys.historyMeta(channel)
    return [meta, keys.historyLog(channel), keys.historyBase(tagOf(keySlot(meta)))]
  }

  async append (channel: string, { entry, head }: HistoryAppend, limits: HistoryLimits): Promise<StreamPosition> {
    const { keys } = this
    const deadline = this.clock.deadline(this.budget)
    const position = await this.pub.run((redis) => runScript(redis, 'historyAppend', this.keysOf(channel),
      [newBase(), stateTtl(limits), entry, limits.size, limits.ttl, keys.channel(channel), head, this.pubsub.publishCommand, deadline]), entry.length)
    if (position === 'late') throw new LateError()
    return position
  }

  async read (channel: string, query: HistoryQuery, limits: HistoryLimits): Promise<StreamRead> {
    const [mode, n] = 'after' in query ? ['after' as const, query.after] : ['last' as const, query.last]
    return await this.pub.run((redis) => runScript(redis, 'historyRead', this.keysOf(channel),
      [newBase(), stateTtl(limits), mode, n, limits.ttl]))
  }
}
