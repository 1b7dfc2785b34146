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
 * An envelope may begin with annotation lines, `+<letter>` and an optional ` <value>`:
 *
 *   +t <traceparent>   the publication's trace context (`a1`, `c1` only), when a tracer watches the publisher
 *   +v                 volatile: a socket with a backlog skips it (`a1`, `c1`, `s1` only)
 *
 * A decoder applies the annotations it knows and skips any other, so a release that adds one
 * does not make an older node drop the message during a rolling upgrade: the older node
 * delivers it as it would without the annotation. So an annotation may only carry what a node
 * can do without (a trace, a permission to skip); a change every node must understand takes a
 * new kind or a new version instead, which an older node drops. Without a trace or volatility
 * nothing is added on the wire.
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
  let annotations = publication.traceContext === undefined ? '' : traceAnnotation(publication.traceContext)
  if (publication.volatile === true) annotations += volatileAnnotation
  if (publication.kind === 'all') return `${annotations}a1\n${nodeId}\n${except}\n${publication.frame}`
  const { channels, frames } = publication
  const seqText = channels.length > 1 ? String(seq) : ''
  return `${annotations}c1\n${nodeId}\n${seqText}\n${except}\n${channels.length}\n${channels.join('\n')}\n${frames.join('\n')}`
}

/** A W3C traceparent: `version-traceid-parentid-flags`, lower-case hex. */
const traceparentPattern = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/

/** The trace annotation of a publication; nothing for a context that is not a traceparent (it could break the framing). */
function traceAnnotation (traceContext: string): string {
  return traceparentPattern.test(traceContext) ? `+t ${traceContext}\n` : ''
}

export function encodeSessionSend (sessionId: string, frame: string, volatile = false): string {
  return `${volatile ? volatileAnnotation : ''}s1\n${sessionId}\n${frame}`
}

const volatileAnnotation = '+v\n'
const annotationMark = 43 // '+'
/** the most annotation lines an envelope may have (more than any release writes): a text with more is not one */
const maxAnnotations = 16

/**
 * An envelope after its annotation lines: those this version knows applied, any other skipped
 * (see the header); `undefined` when one it knows is malformed, repeated, or on a kind that
 * cannot carry it.
 */
function decodeAnnotated (text: string): Envelope | undefined {
  let traceContext: string | undefined
  let volatile = false
  let start = 0
  for (let count = 0; text.charCodeAt(start) === annotationMark; count++) {
    const end = text.indexOf('\n', start)
    if (end === -1 || count === maxAnnotations) return undefined
    switch (text.charCodeAt(start + 1)) {
      case 116: // t
        if (traceContext !== undefined || text.charCodeAt(start + 2) !== 32) return undefined
        traceContext = text.slice(start + 3, end)
        if (!traceparentPattern.test(traceContext)) return undefined
        break
      case 118: // v
        if (volatile || end !== start + 2) return undefined
        volatile = true
        break
      // any other: another release's annotation, skipped
    }
    start = end + 1
  }
  const envelope = decodeBare(text.slice(start))
  if (envelope === undefined) return undefined
  if (traceContext !== undefined) {
    if (envelope.kind !== 'all' && envelope.kind !== 'channels') return undefined
    envelope.delivery.traceContext = traceContext
  }
  if (volatile) {
    if (envelope.kind !== 'all' && envelope.kind !== 'channels' && envelope.kind !== 'session') return undefined
    envelope.delivery.volatile = true
  }
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
  return text.charCodeAt(0) === annotationMark ? decodeAnnotated(text) : decodeBare(text)
}

/** An envelope without annotations. */
function decodeBare (text: string): Envelope | undefined {
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
    default:
      return undefined
  }
}
