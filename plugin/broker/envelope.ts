/**
 * The one envelope format between nodes, for every kind, and its one codec. Engines carry
 * envelopes as opaque text. Frames are already JSON text, so an envelope is a few header lines
 * followed by the frames verbatim: JSON never contains a raw line feed, and node ids, session
 * ids and channel names (no white space allowed) never do either, so nothing is escaped twice.
 * The first line names the kind and the format's version:
 *
 *   a1 \n nodeId \n except \n frame                                  to every socket
 *   c1 \n nodeId \n seq \n except \n n \n channel1 … channelN \n frame1 … frameN
 *   s1 \n sessionId \n frame                                         to one session
 *   h1 \n channel \n offset \n epoch \n except \n frame              a history publication
 *   p1 \n nodeId \n channel \n J \n (ref \n key as JSON \n meta) × J \n leave refs …
 *
 * `seq` numbers a multi-channel publication (empty for one channel): it is published once to
 * each of its channels, and a node subscribed to several of them keeps the first copy (the
 * dedupe key `${nodeId}:${seq}`, see RecentIds). A history store writes `offset` and `epoch`
 * itself, between the head and the entry the core gives it (`positionedEnvelope`), and a
 * presence store reaping a dead node appends its refs to a head (`presenceLeavesHead`): the
 * only bytes an engine writes. A text of another kind or version decodes to `undefined`.
 *
 * A publication (`a1`, `c1`) that carries a trace context (a tracer is watching the publisher)
 * is prefixed with one more line, itself versioned: `t1 \n traceparent \n` then the envelope.
 * A decoder that predates it reads an unknown kind and drops the text, as it drops any kind it
 * cannot read; without a trace nothing changes on the wire.
 *
 * A volatile publication or session send (`{ volatile: true }`: a socket with a backlog skips
 * it) is prefixed likewise with `v1 \n`, after the trace line if any: `v1 \n a1 …`, `v1 \n c1 …`,
 * `v1 \n s1 …`. A decoder that predates it drops the text: a volatile message is one that may
 * be lost, never one delivered as a plain frame would be.
 */
import type { ChannelsDelivery, BroadcastDelivery, HistoryPublication, PresenceChanges, PresenceTrack, Publication, SessionDelivery } from './types.js'
import type { HistoryAppend, StreamPosition } from './parts.js'

export type Envelope =
  | { kind: 'all', nodeId: string, delivery: BroadcastDelivery }
  | { kind: 'channels', nodeId: string, dedupeKey?: string, delivery: ChannelsDelivery }
  | { kind: 'session', delivery: SessionDelivery }
  | { kind: 'history', publication: HistoryPublication }
  | { kind: 'presence', nodeId: string, channel: string, changes: PresenceChanges }

/** The format's version, the second character of every envelope. */
export const envelopeVersion = 1

const lineFeed = 10
const versionMark = 48 + envelopeVersion // '1'

/** `seq`: the publishing node's counter, read only for a publication to several channels. */
export function encodePublication (nodeId: string, publication: Publication, seq: number): string {
  const except = publication.except ?? ''
  let trace = publication.traceContext === undefined ? '' : tracePrefix(publication.traceContext)
  if (publication.volatile === true) trace += volatilePrefix
  if (publication.kind === 'all') return `${trace}a1\n${nodeId}\n${except}\n${publication.frame}`
  const { channels, frames } = publication
  const seqText = channels.length > 1 ? String(seq) : ''
  return `${trace}c1\n${nodeId}\n${seqText}\n${except}\n${channels.length}\n${channels.join('\n')}\n${frames.join('\n')}`
}

/** A W3C traceparent: `version-traceid-parentid-flags`, lower-case hex. */
const traceparentPattern = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/

/** The trace line before a publication; nothing for a context that is not a traceparent (it could break the framing). */
function tracePrefix (traceContext: string): string {
  return traceparentPattern.test(traceContext) ? `t1\n${traceContext}\n` : ''
}

/** A traced publication: its trace context, then the envelope as usual. */
function decodeTraced (text: string): Envelope | undefined {
  const end = text.indexOf('\n', 3)
  if (end === -1) return undefined
  const traceContext = text.slice(3, end)
  if (!traceparentPattern.test(traceContext) || text.charCodeAt(end + 1) === 116) return undefined
  const envelope = decodeEnvelope(text.slice(end + 1))
  if (envelope === undefined || (envelope.kind !== 'all' && envelope.kind !== 'channels')) return undefined
  envelope.delivery.traceContext = traceContext
  return envelope
}

export function encodeSessionSend (sessionId: string, frame: string, volatile = false): string {
  return `${volatile ? volatilePrefix : ''}s1\n${sessionId}\n${frame}`
}

const volatilePrefix = 'v1\n'

/** A volatile publication or session send: the envelope after the `v1` line, flagged. */
function decodeVolatile (text: string): Envelope | undefined {
  const kind = text.charCodeAt(3)
  if (kind !== 97 && kind !== 99 && kind !== 115) return undefined // a1, c1, s1 only (no second prefix)
  // one of those three letters decodes to its kind or to nothing
  const envelope = decodeEnvelope(text.slice(3)) as Extract<Envelope, { delivery: unknown }> | undefined
  if (envelope === undefined) return undefined
  envelope.delivery.volatile = true
  return envelope
}

/** A history publication as the core hands it to a history store. */
export function historyAppend (channel: string, frame: string, except: string | undefined): HistoryAppend {
  return { head: `h1\n${channel}\n`, entry: `${except ?? ''}\n${frame}` }
}

/** What a history store publishes for `append` at `position` (a JavaScript engine calls this; a script concatenates alike). */
export function positionedEnvelope ({ head, entry }: HistoryAppend, { offset, epoch }: StreamPosition): string {
  return `${head}${offset}\n${epoch}\n${entry}`
}

/** A stored history entry back to its frame (with its offset) and the session it skipped. */
export function decodeHistoryEntry (offset: number, entry: string): { offset: number, frame: string, except?: string } | undefined {
  const end = entry.indexOf('\n')
  if (end === -1) return undefined
  const frame = withOffset(entry.slice(end + 1), offset)
  return end === 0 ? { offset, frame } : { offset, frame, except: entry.slice(0, end) }
}

/**
 * The one place a message frame gets its offset. Frames are encoded once as JSON objects
 * (`{"type":"message",...}`), so the offset is appended as a last key without a re-encode.
 */
export function withOffset (frame: string, offset: number): string {
  return `${frame.slice(0, -1)},"offset":${offset}}`
}

export function encodePresence (nodeId: string, channel: string, { joins, leaves }: PresenceChanges): string {
  const lines = ['p1', nodeId, channel, String(joins.length)]
  for (const { ref, key, meta } of joins) lines.push(ref, JSON.stringify(key), meta)
  for (const ref of leaves) lines.push(ref)
  return lines.join('\n')
}

/** The head of the leaves a presence store publishes for a dead node's tracks in `channel`: `head + refs.join('\n')`. */
export function presenceLeavesHead (nodeId: string, channel: string): string {
  return `p1\n${nodeId}\n${channel}\n0\n`
}

/** Splits off `count` lines after the kind line; the rest of the text is the body. */
function header (text: string, count: number): { fields: string[], body: string } | undefined {
  const fields: string[] = []
  let start = 3
  for (let i = 0; i < count; i++) {
    const end = text.indexOf('\n', start)
    if (end === -1) return undefined
    fields.push(text.slice(start, end))
    start = end + 1
  }
  return { fields, body: text.slice(start) }
}

function decodeChannels (text: string): Envelope | undefined {
  const parsed = header(text, 4)
  if (parsed === undefined) return undefined
  const [nodeId, seq, except, countText] = parsed.fields
  const count = Number(countText)
  const lines = parsed.body.split('\n')
  if (!Number.isSafeInteger(count) || count < 1 || lines.length !== count * 2) return undefined
  return {
    kind: 'channels',
    nodeId,
    dedupeKey: seq === '' ? undefined : `${nodeId}:${seq}`,
    delivery: { kind: 'channels', channels: lines.slice(0, count), frames: lines.slice(count), except: except === '' ? undefined : except }
  }
}

function decodeHistory (text: string): Envelope | undefined {
  const parsed = header(text, 4)
  if (parsed === undefined) return undefined
  const [channel, offsetText, epoch, except] = parsed.fields
  const offset = Number(offsetText)
  if (!Number.isSafeInteger(offset) || offset < 1) return undefined
  const publication: HistoryPublication = { channel, offset, epoch, frame: withOffset(parsed.body, offset) }
  if (except !== '') publication.except = except
  return { kind: 'history', publication }
}

function decodePresence (text: string): Envelope | undefined {
  const lines = text.split('\n')
  const count = Number(lines[3])
  if (lines.length < 4 || !Number.isSafeInteger(count) || count < 0 || 4 + count * 3 > lines.length) return undefined
  const joins: PresenceTrack[] = []
  try {
    for (let i = 4; i < 4 + count * 3; i += 3) joins.push({ ref: lines[i], key: JSON.parse(lines[i + 1]) as string, meta: lines[i + 2] })
  } catch {
    return undefined
  }
  return { kind: 'presence', nodeId: lines[1], channel: lines[2], changes: { joins, leaves: lines.slice(4 + count * 3) } }
}

/** Decodes an envelope; `undefined` for text of another kind or version, or malformed. */
export function decodeEnvelope (text: string): Envelope | undefined {
  if (text.charCodeAt(1) !== versionMark || text.charCodeAt(2) !== lineFeed) return undefined
  switch (text.charCodeAt(0)) {
    case 97: { // a
      const parsed = header(text, 2)
      if (parsed === undefined) return undefined
      const [nodeId, except] = parsed.fields
      return { kind: 'all', nodeId, delivery: { kind: 'all', frame: parsed.body, except: except === '' ? undefined : except } }
    }
    case 99: // c
      return decodeChannels(text)
    case 115: { // s
      const parsed = header(text, 1)
      if (parsed === undefined) return undefined
      return { kind: 'session', delivery: { kind: 'session', sessionId: parsed.fields[0], frame: parsed.body } }
    }
    case 104: // h
      return decodeHistory(text)
    case 112: // p
      return decodePresence(text)
    case 116: // t
      return decodeTraced(text)
    case 118: // v
      return decodeVolatile(text)
    default:
      return undefined
  }
}
