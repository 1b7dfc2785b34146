/**
 * The text that travels through Redis pub/sub: one envelope per publish, decoded once per
 * receiving node. Frames are already JSON text, so the envelope is a few header lines
 * followed by the frames verbatim, one per line: JSON never contains a raw line feed, and
 * node ids, session ids and channel names (no white space allowed) never do either, so
 * nothing is escaped twice.
 *
 *   all:       a \n nodeId \n except \n frame
 *   channels:  c \n nodeId \n seq \n except \n n \n channel1 … channelN \n frame1 … frameN
 *   session:   s \n sessionId \n frame
 *
 * `seq` numbers a multi-channel publication (empty for one channel): it is published once to
 * each of its channels, and a node subscribed to several of them delivers it on the first
 * copy and drops the others (see `RecentIds`).
 */
import type { Delivery, Publication } from '../types.js'

export interface Envelope {
  /** the publishing node; absent for direct session sends, which are never echoed */
  nodeId?: string
  /** set on a multi-channel publication: `${nodeId}:${seq}`, the same on every copy */
  dedupeKey?: string
  delivery: Delivery
}

export function encodePublication (nodeId: string, publication: Publication, seq: number): string {
  const except = publication.except ?? ''
  if (publication.kind === 'all') return `a\n${nodeId}\n${except}\n${publication.frame}`
  const { channels, frames } = publication
  const seqText = channels.length > 1 ? String(seq) : ''
  return `c\n${nodeId}\n${seqText}\n${except}\n${channels.length}\n${channels.join('\n')}\n${frames.join('\n')}`
}

export function encodeSessionSend (sessionId: string, frame: string): string {
  return `s\n${sessionId}\n${frame}`
}

/** Splits off `count` header lines; the rest of the text is the body. */
function header (text: string, count: number): { fields: string[], body: string } | undefined {
  const fields: string[] = []
  let start = 0
  for (let i = 0; i < count; i++) {
    const end = text.indexOf('\n', start)
    if (end === -1) return undefined
    fields.push(text.slice(start, end))
    start = end + 1
  }
  return { fields, body: text.slice(start) }
}

/** Decodes an envelope; `undefined` for text this version does not understand. */
export function decodeEnvelope (text: string): Envelope | undefined {
  switch (text.charCodeAt(0)) {
    case 97: { // a
      const parsed = header(text, 3)
      if (parsed === undefined) return undefined
      const [, nodeId, except] = parsed.fields
      return { nodeId, delivery: { kind: 'all', frame: parsed.body, except: except === '' ? undefined : except } }
    }
    case 99: { // c
      const parsed = header(text, 5)
      if (parsed === undefined) return undefined
      const [, nodeId, seq, except, countText] = parsed.fields
      const count = Number(countText)
      const lines = parsed.body.split('\n')
      if (!Number.isSafeInteger(count) || count < 1 || lines.length !== count * 2) return undefined
      return {
        nodeId,
        dedupeKey: seq === '' ? undefined : `${nodeId}:${seq}`,
        delivery: {
          kind: 'channels',
          channels: lines.slice(0, count),
          frames: lines.slice(count),
          except: except === '' ? undefined : except
        }
      }
    }
    case 115: { // s
      const parsed = header(text, 2)
      if (parsed === undefined) return undefined
      return { delivery: { kind: 'session', sessionId: parsed.fields[1], frame: parsed.body } }
    }
    default:
      return undefined
  }
}

/**
 * The keys of the multi-channel publications a node delivered lately. On one Redis the copies
 * of one publication reach a subscriber back to back (one script call); on a cluster they come
 * from different shards, in any interleaving with other traffic, as late as a shard is slow.
 * So a key is remembered for `windowMs` (far longer than a copy can trail another: a slower
 * shard makes the publisher's call time out and fail), and at most `capacity` keys are kept, so
 * a flood costs bounded memory.
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
