/**
 * The NATS engine's history store: one JetStream stream per prefix (`<S>-history`), one subject
 * per history channel in it (`<P>.h.<channel>`), read with subject filters: subscribing to
 * channels creates no stream and no consumer that stays. The stream republishes every message
 * it stores on the channel's `<P>.c.<channel>.h` subject, after storing it and in its order:
 * the store and the delivery are one step, and every node (the publisher included) receives
 * the publications in the order of their offsets.
 *
 * A message of a channel's subject is one entry:
 *
 *   headers  Fc-Epoch       the stream's epoch
 *            Fc-Offset      the entry's offset
 *            Fc-Deadline    ms on the server's clock: an entry stored later than this is void
 *            Fc-Head-Bytes  where the entry starts in the payload
 *   payload  the envelope the subscribers get: head, offset, epoch, entry (positionedEnvelope)
 *
 * Only a publication stores anything of a channel. A read of a channel never published (or whose
 * messages are gone) stores nothing and answers offset 0 and the epoch its first publication
 * would get now. That epoch is derived, not drawn: a hash of the prefix's random base, the
 * channel and the current period (the server's time divided by 24 hours, or `ttl` when longer:
 * how long a stream outlives its last publication). The base is one message of the stream, on
 * `<P>.h._` (no channel encodes to `_`), written once by the first node that needs it and
 * written again (the same value) when half of the stream's max age has passed, so it outlives
 * every channel's state; deleting or purging the stream loses it, and every epoch changes. A
 * stream lives at least one period, so two streams of one channel never start in one period
 * and never share an epoch. (Purging one channel's subject alone is not such a loss: within
 * the period its next stream gets the same epoch.)
 *
 * One atomic step without scripts: an append reads the subject's last message (a direct get),
 * computes the next offset from it, and publishes expecting that message to still be the last
 * of the subject (`Nats-Expected-Last-Subject-Sequence`). A node that appended meanwhile makes
 * the server refuse it, and the append reads again and retries, so two nodes appending at once
 * still produce one dense order. Appends of one node to one channel go one after another.
 *
 * A publication reported failed is never stored later: an append that got no answer in time
 * is reported failed, and should the server store it after all (it hung and woke up), it was
 * stored after its deadline, which makes it void: receivers drop it (its deadline passed),
 * reads skip it, and the next append takes its offset again (the void entry's predecessor is
 * the top: every entry's offset is one more than the top when it was written, and nothing was
 * written in between). An append answered after its deadline checks the time its entry was
 * stored and reports failure when it is void.
 *
 * Limits: the stream keeps at most `size` + 1 messages per subject (the one more: a void entry)
 * and drops each message 24 hours (or `ttl`, when longer) after it was stored, so the epoch and
 * the top offset, carried by the last message, outlive the entries by 24 hours after the last
 * publication; reads skip entries older than `ttl`. When a subject has no message left, its
 * state is gone: the next append begins a new epoch. (Streams written by earlier versions may
 * hold an epoch marker, `Fc-Kind: epoch`, at offset 0: read as such, never written.)
 */
import { createHash, randomBytes } from 'node:crypto'
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node'
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import { historyStateTtl, type HistoryLimits, type HistoryQuery } from '../types.js'
import type { HistoryAppend, HistoryStore, StoredEntry, StreamPosition, StreamRead } from '../parts.js'
import { positionedEnvelope } from '../envelope.js'
import type { NatsClock } from './clock.js'
import { isWrongSequence } from './client.js'
import type { NatsNames } from './names.js'
import { scan } from './scan.js'
import { deadlineHeader, epochHeader, kindHeader, offsetHeader } from './transport.js'

const headBytesHeader = 'Fc-Head-Bytes'
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const baseHeader = 'Fc-Base'
/** the longest a failed request waits to learn whether the stream was missing */
const missingCheckMs = 1000
/** how long a node uses the base it read before reading it again (another node may have renewed it) */
const baseReuseMs = 60_000

/** how long a stream outlives its last publication: also the length of an epoch period */
function stateTtl (limits: HistoryLimits): number {
  return Math.max(historyStateTtl, limits.ttl)
}

/** A message of a channel's subject, as far as positions go. */
interface Stored {
  seq: number
  /** ms, the server's clock */
  storedAt: number
  headers: MsgHdrs | undefined
}

function isMarker (stored: Stored): boolean {
  return stored.headers?.get(kindHeader) === 'epoch'
}

function offsetOf (stored: Stored): number {
  return Number(stored.headers?.get(offsetHeader) ?? 0)
}

/** an entry stored after its deadline is void (see the header) */
function isVoid (stored: Stored): boolean {
  const deadline = stored.headers?.get(deadlineHeader) ?? ''
  return deadline !== '' && stored.storedAt > Number(deadline)
}

/** The stream's position as its last message tells it. */
function positionOf (last: Stored): StreamPosition {
  const epoch = last.headers?.get(epochHeader) ?? ''
  if (isMarker(last)) return { epoch, offset: 0 }
  return { epoch, offset: isVoid(last) ? offsetOf(last) - 1 : offsetOf(last) }
}

export interface NatsHistorySettings {
  names: NatsNames
  clock: NatsClock
  headers: () => MsgHdrs
  timeoutMs: number
  budgetMs: number
}

export class NatsHistoryStore implements HistoryStore {
  /** the most messages per subject the stream is known to keep (0: not set up yet) */
  private perSubject = 0
  private setup: Promise<void> | undefined
  /** the prefix's epoch base as last read, and when (this node's clock) */
  private base: { value: string, readAt: number } | undefined
  private baseLoad: Promise<string> | undefined
  /** appends of this node per channel, one after another */
  private readonly chains = new Map<string, Promise<unknown>>()

  constructor (
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly settings: NatsHistorySettings
  ) {}

  /** The stream may be gone (a server restarted without its store): the next use sets it up again. */
  forget (): void {
    this.perSubject = 0
    this.base = undefined
  }

  /** The prefix's epoch base: read (at most once a minute), written when there is none, renewed at half its age. */
  private async epochBase (limits: HistoryLimits, fresh = false): Promise<string> {
    if (!fresh && this.base !== undefined && Date.now() - this.base.readAt < baseReuseMs) return this.base.value
    this.baseLoad ??= this.loadBase(limits).finally(() => { this.baseLoad = undefined })
    return await this.baseLoad
  }

  private async loadBase (limits: HistoryLimits): Promise<string> {
    const subject = this.settings.names.historyBase
    for (;;) {
      const last = await this.last(subject)
      const value = last?.headers?.get(baseHeader) ?? ''
      const old = last !== undefined && this.settings.clock.now() - last.storedAt > stateTtl(limits) / 2
      if (value !== '' && !old) {
        this.base = { value, readAt: Date.now() }
        return value
      }
      const written = value !== '' ? value : randomBytes(9).toString('base64url')
      const headers = this.settings.headers()
      headers.set(baseHeader, written)
      try {
        // stored only while `last` is still the subject's last message: then it is the base
        await this.js.publish(subject, '', { headers, expect: { lastSubjectSequence: last?.seq ?? 0 }, timeout: this.settings.timeoutMs })
        this.base = { value: written, readAt: Date.now() }
        return written
      } catch (err) {
        if (!isWrongSequence(err)) throw err // another node wrote it first: read again
      }
    }
  }

  /** The epoch a stream of `channel` that starts now gets (see the header). */
  private async startingEpoch (channel: string, limits: HistoryLimits, fresh = false): Promise<string> {
    const base = await this.epochBase(limits, fresh)
    const period = Math.floor(this.settings.clock.now() / stateTtl(limits))
    return createHash('sha1').update(`${base}\n${period}\n${channel}`).digest('base64url').slice(0, 16)
  }

  /** Creates the stream on first use, and lets it keep more per subject when `size` grew. */
  private async ensure (limits: HistoryLimits): Promise<void> {
    const wanted = limits.size + 1
    if (this.perSubject >= wanted) return
    this.setup ??= this.prepare(wanted, limits).finally(() => { this.setup = undefined })
    await this.setup
    if (this.perSubject < wanted) await this.ensure(limits)
  }

  /** true when the last `prepare` found no stream and created it */
  private created = false

  /**
   * After a failed request: sets the stream up again, and tells whether it was missing (deleted,
   * or a server that lost its store). A request to a missing stream stored nothing, and the
   * stream that held what came before is gone: trying again in the new stream is safe.
   */
  private async wasMissing (limits: HistoryLimits): Promise<boolean> {
    this.forget()
    // a live server answers at once; one that is down or hung must not double the failure's time
    let timer: NodeJS.Timeout | undefined
    const cap = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), Math.min(this.settings.timeoutMs, missingCheckMs)) })
    const check = this.ensure(limits).then(() => this.created, () => false)
    try {
      return await Promise.race([check, cap])
    } finally {
      clearTimeout(timer)
    }
  }

  private async prepare (wanted: number, limits: HistoryLimits): Promise<void> {
    const { names } = this.settings
    this.created = false
    const maxAge = stateTtl(limits) * 1_000_000
    let info
    try {
      info = await this.jsm.streams.info(names.historyStream)
    } catch (err) {
      if (!/not found/i.test((err as Error).message)) throw err
      try {
        info = await this.jsm.streams.add({
          name: names.historyStream,
          subjects: [names.historySubjects],
          max_msgs_per_subject: wanted,
          max_age: maxAge,
          allow_direct: true,
          republish: names.historyRepublish
        } as Parameters<JetStreamManager['streams']['add']>[0])
        this.created = true
      } catch {
        info = await this.jsm.streams.info(names.historyStream) // another node created it meanwhile
      }
    }
    if (info.config.max_msgs_per_subject < wanted || info.config.max_age < maxAge) {
      info = await this.jsm.streams.update(names.historyStream, {
        ...info.config,
        max_msgs_per_subject: Math.max(info.config.max_msgs_per_subject, wanted),
        max_age: Math.max(info.config.max_age, maxAge)
      })
    }
    this.perSubject = info.config.max_msgs_per_subject
  }

  private async last (subject: string): Promise<Stored | undefined> {
    const msg = await this.jsm.direct.getMessage(this.settings.names.historyStream, { last_by_subj: subject })
    if (msg === null) return undefined
    return { seq: msg.seq, storedAt: msg.time.getTime(), headers: msg.header }
  }

  async append (channel: string, append: HistoryAppend, limits: HistoryLimits): Promise<StreamPosition> {
    await this.ensure(limits)
    const before = this.chains.get(channel) ?? Promise.resolve()
    const attempt = async (): Promise<StreamPosition> => {
      try {
        return await this.appendNow(channel, append, limits)
      } catch (err) {
        if (!await this.wasMissing(limits)) throw err
        return await this.appendNow(channel, append, limits) // the stream was lost: this begins its new one
      }
    }
    const run = before.then(attempt, attempt)
    this.chains.set(channel, run)
    try {
      return await run
    } catch (err) {
      this.forget() // the stream may be gone (deleted): the next use sets it up again
      throw err
    } finally {
      if (this.chains.get(channel) === run) this.chains.delete(channel)
    }
  }

  private async appendNow (channel: string, append: HistoryAppend, limits: HistoryLimits): Promise<StreamPosition> {
    const { settings } = this
    const subject = settings.names.history(channel)
    const started = Date.now()
    const deadline = settings.clock.deadline(settings.budgetMs)
    for (;;) {
      const remaining = settings.timeoutMs - (Date.now() - started)
      if (remaining <= 0) throw new Error(`nats: the history append to ${channel} took longer than ${settings.timeoutMs} ms`)
      const last = await this.last(subject)
      const position = last === undefined
        ? { epoch: await this.startingEpoch(channel, limits, true), offset: 1 }
        : { ...positionOf(last), offset: positionOf(last).offset + 1 }
      const headers = settings.headers()
      headers.set(epochHeader, position.epoch)
      headers.set(offsetHeader, String(position.offset))
      headers.set(deadlineHeader, String(deadline))
      headers.set(headBytesHeader, String(encoder.encode(append.head).length))
      let seq: number
      try {
        const ack = await this.js.publish(subject, positionedEnvelope(append, position), {
          headers, expect: { lastSubjectSequence: last?.seq ?? 0 }, timeout: remaining
        })
        seq = ack.seq
      } catch (err) {
        if (isWrongSequence(err)) continue // another node appended first: read again
        throw err
      }
      if (settings.clock.latest() > deadline) await this.checkInTime(subject, seq, deadline)
      return position
    }
  }

  /** An append answered after its deadline: it counts only when it was stored in time. */
  private async checkInTime (subject: string, seq: number, deadline: number): Promise<void> {
    const msg = await this.jsm.direct.getMessage(this.settings.names.historyStream, { seq })
    if (msg === null || msg.subject !== subject || msg.time.getTime() > deadline) {
      throw new Error('nats stored the history publication after its deadline: void, not delivered')
    }
  }

  async read (channel: string, query: HistoryQuery, limits: HistoryLimits): Promise<StreamRead> {
    try {
      return await this.readNow(channel, query, limits)
    } catch (err) {
      if (!await this.wasMissing(limits)) throw err
      return await this.readNow(channel, query, limits)
    }
  }

  private async readNow (channel: string, query: HistoryQuery, limits: HistoryLimits): Promise<StreamRead> {
    await this.ensure(limits)
    const { settings } = this
    const subject = settings.names.history(channel)
    const last = await this.last(subject)
    const position = last === undefined ? { epoch: await this.startingEpoch(channel, limits), offset: 0 } : positionOf(last)
    const answer = (entries: StoredEntry[], complete: boolean): StreamRead => ({ ...position, entries, complete })
    if ('after' in query) {
      if (query.after >= position.offset) return answer([], query.after === position.offset)
      if (position.offset - query.after > limits.size) return answer([], false)
    } else if (query.last === 0 || position.offset === 0) {
      return answer([], true)
    }
    const kept = await this.kept(subject, position, limits)
    if ('last' in query) return answer(kept.slice(-query.last), true)
    const wanted = kept.filter((entry) => entry.offset > query.after)
    const complete = wanted.length === position.offset - query.after && wanted[0]?.offset === query.after + 1
    return complete ? answer(wanted, true) : answer([], false)
  }

  /** The entries of the stream still kept: not void, of its epoch, at most `size`, none older than `ttl`; oldest first. */
  private async kept (subject: string, position: StreamPosition, limits: HistoryLimits): Promise<StoredEntry[]> {
    const oldest = this.settings.clock.now() - limits.ttl
    const entries: StoredEntry[] = []
    for (const msg of await scan(this.nc, this.settings.names.historyStream, subject, 'all', this.settings.timeoutMs)) {
      if (isMarker(msg) || isVoid(msg) || msg.storedAt < oldest) continue
      if (msg.headers?.get(epochHeader) !== position.epoch) continue
      const offset = offsetOf(msg)
      if (offset > position.offset) continue
      const skip = Number(msg.headers?.get(headBytesHeader) ?? 0) + String(offset).length + 1 + position.epoch.length + 1
      entries.push({ offset, entry: decoder.decode(msg.data.subarray(skip)) })
    }
    entries.sort((a, b) => a.offset - b.offset)
    return entries.slice(-limits.size)
  }
}
