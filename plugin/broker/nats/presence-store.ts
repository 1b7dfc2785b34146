/**
 * The NATS engine's presence store: one key-value bucket per prefix (`<S>-presence`), with
 *
 *   c.<channel>.<node>     the node's tracks in the channel: the whole set, written at once
 *   c.<channel>.<node>=i   page i (> 0) of that set, when it does not fit one message
 *   n.<node>               the node has (or had) tracks: written before any of them
 *
 * A write puts, per channel, the node's whole new set of tracks in that channel (or deletes the
 * key when none is left), and the same message carries the change's envelope: its payload is
 * the envelope (`Fc-Envelope-Bytes` long) followed by the set as JSON. The bucket republishes
 * every change of a `c.` key on `<P>.c.<channel>.p.<node>` once stored, so the store and the
 * diff every node sees are one message: they agree. Only the node itself writes its keys, so
 * writes never conflict; the node keeps the set it means to have (a write that failed is
 * repaired by the next one, which writes the whole set again, as the core's re-assertion does).
 *
 * A reaper finds a dead node's keys with a subject filter (`c.*.<node>`) and deletes each one
 * expecting its last revision, with the leaves envelope in the delete: two nodes reaping at
 * once, one delete wins and each leave goes out once. Then it deletes `n.<node>`.
 *
 * Entries do not expire (NATS 2.9 has no per-key TTL; the bucket has no max age): a dead node's
 * tracks are removed by the live nodes' reaping, within the registry's TTL and a tick.
 *
 * A node's set in a channel past 64 KiB (or past the server's `max_payload`, 1 MB by default,
 * when smaller) is spread over pages (2, 4, 8, ... by a hash of each ref), each a key
 * carrying its tracks and the part of the change's envelope about them, so store and diffs
 * still agree per message; once spread, a change writes only the pages it touches. The first
 * page (`c.<channel>.<node>`, with an `Fc-Pages` header) stays while any other holds tracks, so
 * a reaper finds the others through it; pages are written and deleted before it. A page whose
 * write failed is written again with the channel's next write (a re-assertion is one).
 */
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node'
import type { JetStreamClient } from '@nats-io/jetstream'
import type { KV } from '@nats-io/kv'
import { encodePresence } from '../envelope.js'
import type { PresenceChannelWrite, PresenceStore, PresenceWrite } from '../parts.js'
import type { PresenceTrack } from '../types.js'
import { isWrongSequence } from './client.js'
import { decodeToken, encodeToken, pageMark, type NatsNames } from './names.js'
import { scan, type ScannedMessage } from './scan.js'
import { envelopeBytesHeader } from './transport.js'

const operationHeader = 'KV-Operation'
/** on the first page of a set spread over several: how many */
const pagesHeader = 'Fc-Pages'
/** NATS' default, when the server has not said its own */
const defaultMaxPayload = 1024 * 1024
/**
 * The size past which a node's set in a channel is spread over pages, though the server takes
 * more: every change of the channel rewrites its page and the bucket republishes that page to
 * every node that relays the channel, so in a channel of thousands of members a change costs a
 * page, not the whole set (docs/presence.md, "NATS: a large channel": 0.39× the bytes).
 */
const pageBytes = 64 * 1024
/** room kept in a message for its headers */
const headerRoom = 2048
/** a set is spread over at most this many pages (a page then holds what it must, and a write too large fails) */
const maxPages = 1024

/** One message of a presence write: a page of the node's set in a channel, with its part of the envelope. */
interface Page {
  index: number
  envelope: string
  /** the page's tracks as JSON; `''` when it has none (the page is deleted) */
  set: string
  envelopeBytes: number
  /** the message's payload: the envelope and the set */
  bytes: number
  /** on the first page, when the set is spread over several */
  count?: number
}

/** A page with its sizes counted once (the payload checked against the limit, the envelope for its header). */
function pageMessage (index: number, envelope: string, set: string): Page {
  const envelopeBytes = Buffer.byteLength(envelope)
  return { index, envelope, set, envelopeBytes, bytes: envelopeBytes + Buffer.byteLength(set) }
}

/** `items` grouped by the page of their ref, out of `count` pages. */
function byPage<T> (items: Iterable<T>, refOf: (item: T) => string, count: number): Map<number, T[]> {
  const pages = new Map<number, T[]>()
  for (const item of items) {
    const index = pageOf(refOf(item), count)
    const list = pages.get(index)
    if (list === undefined) pages.set(index, [item])
    else list.push(item)
  }
  return pages
}

function addTo (sets: Map<string, Set<number>>, channel: string, index: number): void {
  let set = sets.get(channel)
  if (set === undefined) sets.set(channel, set = new Set())
  set.add(index)
}

function removeFrom (sets: Map<string, Set<number>>, channel: string, index: number): void {
  const set = sets.get(channel)
  if (set === undefined) return
  set.delete(index)
  if (set.size === 0) sets.delete(channel)
}

/** The set of a page as stored: `[[ref, key, meta], ...]`. */
function setJson (tracks: Iterable<PresenceTrack>): string {
  return JSON.stringify(Array.from(tracks, ({ ref, key, meta }) => [ref, key, meta]))
}

/** Which of `count` pages (a power of two) a track is on: FNV-1a of its ref. */
export function pageOf (ref: string, count: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < ref.length; i++) hash = Math.imul(hash ^ ref.charCodeAt(i), 0x01000193)
  return (hash >>> 0) & (count - 1)
}
const decoder = new TextDecoder()

type StoredTrack = [ref: string, key: string, meta: string]

function isDeleted (msg: ScannedMessage): boolean {
  const operation = msg.headers?.get(operationHeader) ?? ''
  return operation === 'DEL' || operation === 'PURGE'
}

/** The set a `c.` key holds; empty when it is not one this version wrote. */
function tracksOf (msg: ScannedMessage): StoredTrack[] {
  const start = Number(msg.headers?.get(envelopeBytesHeader) ?? '')
  if (!Number.isInteger(start)) return []
  try {
    const parsed = JSON.parse(decoder.decode(msg.data.subarray(start))) as unknown
    if (!Array.isArray(parsed)) return []
    return parsed.filter((track): track is StoredTrack => Array.isArray(track) && track.length === 3 && track.every((part) => typeof part === 'string'))
  } catch {
    return []
  }
}

export interface NatsPresenceSettings {
  names: NatsNames
  headers: () => MsgHdrs
  nodeId: string
  timeoutMs: number
}

export class NatsPresenceStore implements PresenceStore {
  private readonly stream: string
  /** this node's tracks per channel, as it means them to be */
  private readonly own = new Map<string, Map<string, PresenceTrack>>()

  constructor (
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly kv: KV,
    private readonly settings: NatsPresenceSettings
  ) {
    this.stream = `KV_${settings.names.presenceBucket}`
  }

  private subject (key: string): string {
    return this.settings.names.kvSubject(this.settings.names.presenceBucket, key)
  }

  async write ({ channels, unregister = false }: PresenceWrite): Promise<void> {
    const { names, nodeId } = this.settings
    const joined = [...channels.values()].some((change) => change.joins.length > 0)
    if (joined) await this.kv.put(names.presenceNodeKey(nodeId), '1')
    const limit = this.payloadLimit()
    await Promise.all([...channels].map(async ([channel, change]) => {
      let tracks = this.own.get(channel)
      if (tracks === undefined) this.own.set(channel, tracks = new Map())
      for (const ref of change.leaves) tracks.delete(ref)
      for (const track of change.joins) tracks.set(track.ref, track)
      const pages = this.paged(channel, tracks, change, limit)
      if (tracks.size === 0) this.own.delete(channel)
      // Pages other than the first before it: the first is how a reaper finds the others, so
      // it is deleted last, and a crash in between leaves a track twice rather than nowhere.
      await Promise.all(pages.filter((page) => page.index !== 0).map(async (page) => { await this.publishPage(channel, page) }))
      const first = pages.find((page) => page.index === 0)
      if (first !== undefined) await this.publishPage(channel, first)
      // back to one page once every page is gone (a write that failed keeps the count, and is tried again)
      if (!this.own.has(channel) && !this.storedPages.has(channel) && !this.failedPages.has(channel)) this.pageCounts.delete(channel)
    }))
    if (unregister) await this.kv.delete(names.presenceNodeKey(nodeId))
  }

  /** this node's pages per channel, where its set did not fit one message (absent: one page) */
  private readonly pageCounts = new Map<string, number>()
  /** the pages of each channel this node has written and not deleted */
  private readonly storedPages = new Map<string, Set<number>>()
  /**
   * the pages of each channel whose last write did not go through: the channel's next write
   * writes them again, as they now are (a re-assertion writes every channel with tracks)
   */
  private readonly failedPages = new Map<string, Set<number>>()

  /**
   * How large a page may grow: `pageBytes`, or less where the server takes less
   * (`max_payload`, less room for the headers).
   */
  private payloadLimit (): number {
    return Math.min(pageBytes, (this.nc.info?.max_payload ?? defaultMaxPayload) - headerRoom)
  }

  /**
   * The pages a change of `channel` writes: each with the node's tracks on it and the part of
   * the change's envelope about them. One page (the usual case) carries the core's envelope
   * as it is. When a page would not fit one message, the node's set is spread over twice as
   * many pages (by a hash of each ref, so a track stays on its page until the next doubling),
   * and every page is written again; otherwise only the pages the change touched are.
   */
  private paged (channel: string, tracks: Map<string, PresenceTrack>, change: PresenceChannelWrite, limit: number): Page[] {
    let count = this.pageCounts.get(channel) ?? 1
    let everyPage = false
    for (;;) {
      const pages = this.pagesOf(channel, tracks, change, count, everyPage)
      if (count >= maxPages || pages.every((page) => page.bytes <= limit)) {
        if (count > 1) {
          this.pageCounts.set(channel, count)
          const first = pages.find((page) => page.index === 0)
          if (first !== undefined) first.count = count
        }
        return pages
      }
      count *= 2
      everyPage = true
    }
  }

  private pagesOf (channel: string, tracks: Map<string, PresenceTrack>, change: PresenceChannelWrite, count: number, everyPage: boolean): Page[] {
    if (count === 1) {
      return [pageMessage(0, change.envelope, tracks.size === 0 ? '' : setJson(tracks.values()))]
    }
    const joins = byPage(change.joins, (track) => track.ref, count)
    const leaves = byPage(change.leaves, (ref) => ref, count)
    const held = byPage(tracks.values(), (track) => track.ref, count)
    // the pages the change is about; the first page goes with the last track, wherever that was
    const touched = (index: number): boolean => joins.has(index) || leaves.has(index) || (index === 0 && tracks.size === 0)
    const stored = this.storedPages.get(channel)
    const failed = this.failedPages.get(channel)
    const pages: Page[] = []
    for (let index = 0; index < count; index++) {
      if (!everyPage && !touched(index) && failed?.has(index) !== true) continue
      const mine = held.get(index)
      // The first page stays (with an empty set) while any other holds tracks: a reaper finds the others through it.
      const keep = mine !== undefined || (index === 0 && tracks.size > 0)
      if (!keep && stored?.has(index) !== true && !touched(index)) continue // never written: nothing to delete
      const envelope = encodePresence(this.settings.nodeId, channel, { joins: joins.get(index) ?? [], leaves: leaves.get(index) ?? [] })
      pages.push(pageMessage(index, envelope, keep ? setJson(mine ?? []) : ''))
    }
    return pages
  }

  /** Puts a page (its set after its envelope), or deletes it when its set is empty (`''`). */
  private async publishPage (channel: string, { index, envelope, set, envelopeBytes, count }: Page): Promise<void> {
    const { names, nodeId } = this.settings
    const headers = this.settings.headers()
    headers.set(envelopeBytesHeader, String(envelopeBytes))
    if (count !== undefined) headers.set(pagesHeader, String(count))
    if (set === '') headers.set(operationHeader, 'DEL')
    // A page counts as stored from before its put until its delete went through, and as failed
    // until a write of it went through.
    if (set !== '') addTo(this.storedPages, channel, index)
    addTo(this.failedPages, channel, index)
    await this.js.publish(this.subject(names.presencePageKey(channel, nodeId, index)), envelope + set, { headers, timeout: this.settings.timeoutMs })
    removeFrom(this.failedPages, channel, index)
    if (set === '') removeFrom(this.storedPages, channel, index)
  }

  private async latest (filter: string): Promise<ScannedMessage[]> {
    return (await scan(this.nc, this.stream, this.subject(filter), 'last_per_subject', this.settings.timeoutMs)).filter((msg) => !isDeleted(msg))
  }

  async list (channel: string): Promise<PresenceTrack[]> {
    const tracks: PresenceTrack[] = []
    for (const msg of await this.latest(`c.${encodeToken(channel)}.*`)) {
      for (const [ref, key, meta] of tracksOf(msg)) tracks.push({ ref, key, meta })
    }
    return tracks
  }

  async nodes (): Promise<string[]> {
    const nodes: string[] = []
    for (const msg of await this.latest('n.*')) {
      const nodeId = decodeToken(msg.subject.slice(msg.subject.lastIndexOf('.') + 1))
      if (nodeId !== undefined) nodes.push(nodeId)
    }
    return nodes
  }

  async reap (nodeId: string, leavesHead: (channel: string) => string): Promise<number> {
    let removed = 0
    const node = encodeToken(nodeId)
    for (const first of await this.latest(`c.*.${node}`)) {
      const tokens = first.subject.split('.')
      const channelToken = tokens[tokens.length - 2]
      const channel = decodeToken(channelToken)
      if (channel === undefined) continue
      // the node's other pages of the channel first, the first page (which leads to them) last
      const paged = Number(first.headers?.get(pagesHeader) ?? '') > 1
      const pages = paged
        ? (await this.latest(`c.${channelToken}.*`)).filter((msg) => msg.subject.slice(msg.subject.lastIndexOf('.') + 1).startsWith(`${node}${pageMark}`))
        : []
      for (const msg of [...pages, first]) removed += await this.reapPage(msg, nodeId, channel, leavesHead(channel))
    }
    await this.kv.delete(this.settings.names.presenceNodeKey(nodeId))
    return removed
  }

  /** Deletes one page of a dead node's, expecting its last revision, with its leaves; the tracks removed. */
  private async reapPage (msg: ScannedMessage, nodeId: string, channel: string, leavesHead: string): Promise<number> {
    const refs = tracksOf(msg).map(([ref]) => ref)
    // a first page kept empty for the others' sake has no leave to send: an empty change, not a leave of ''
    const envelope = refs.length === 0 ? encodePresence(nodeId, channel, { joins: [], leaves: [] }) : leavesHead + refs.join('\n')
    const headers = this.settings.headers()
    headers.set(operationHeader, 'DEL')
    headers.set(envelopeBytesHeader, String(Buffer.byteLength(envelope)))
    try {
      await this.js.publish(msg.subject, envelope, { headers, expect: { lastSubjectSequence: msg.seq }, timeout: this.settings.timeoutMs })
      return refs.length
    } catch (err) {
      if (!isWrongSequence(err)) throw err // else another node reaped it first (or it wrote again)
      return 0
    }
  }
}
