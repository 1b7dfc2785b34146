/**
 * The node's side of history channels: publishing through the broker (which assigns offsets
 * and hands each publication to every node in offset order), delivering them to local
 * sockets, and joining a socket without a gap or a duplicate.
 *
 * A join is a catch-up: the socket is in the channel at once (so the broker relays the
 * channel to this node), but publications for it are held back while the stream is read.
 * Then, in one synchronous step, it gets `subscribed` (epoch, top offset), the replay it asked
 * for, the held-back publications above the top offset, and from then on live ones.
 *
 * A stream can restart under a new epoch while sockets hold its channel (its stored state was
 * lost: a Redis restarted empty, a flushed or expired key, a memory stream swept while idle).
 * Each publication carries its epoch, and the node knows the epoch each socket of the channel
 * is in; a socket that gets a publication of another epoch first gets `subscribed` without an
 * id (the new epoch, the offset before that publication, `recovered: false`), so its client
 * starts its position over instead of dropping the new epoch's low offsets as seen.
 */
import type { FastifyBaseLogger } from 'fastify'
import { createDelta } from 'fossil-delta'
import { encodeFrame } from '../../schemas/codec.js'
import { deltaText } from '../../schemas/delta.js'
import type { ServerMessageFrame, SinceField, SubscribedFrame } from '../../schemas/protocol.js'
import type { BrokerConnection, HistoryEntry, HistoryPublication, HistoryQuery, HistoryRead } from '../broker/types.js'
import type { Recipient } from '../outbound/frame-writer.js'
import { toOutbound, type OutboundFrame } from '../outbound/frame-writer.js'
import type { ChannelStep } from '../channel-steps.js'
import { PublishFailureLog, historyPublishWording, publishFailureSummaryMs } from '../broker/publish-failures.js'
import type { HistoryPolicy } from '../options.js'
import { events } from '../observability/events.js'

/** What the history needs of a socket. */
export type HistoryMember = Recipient

/** What a subscribe frame asks of a history channel (absent for a server-side `socket.subscribe()`). */
export interface JoinRequest {
  id?: number
  last?: number
  since?: SinceField
  /** deltas asked for (honoured only when the policy allows them) */
  delta?: boolean
}

/**
 * A delta channel on this node: the previous publication it delivered (offset and delta text)
 * and, for each socket that asked for deltas, the last offset it was sent.
 */
interface DeltaChannel {
  offset: number
  text: string | undefined
  sent: WeakMap<HistoryMember, number>
}

/** A publication held back from a joining socket, with its stream's epoch. */
interface HeldEntry extends HistoryEntry {
  epoch?: string
}

/** A socket joining a history channel: the publications held back until it is caught up. */
interface CatchUp {
  held: HeldEntry[]
}

/**
 * The epoch the caught-up sockets of a channel are in on this node: the epoch of the last
 * publication delivered, else of the first join. `ahead` lists the sockets that joined since
 * in another epoch (their read saw a newer stream than the last publication did).
 */
interface ChannelEpoch {
  epoch: string | undefined
  ahead: Map<HistoryMember, string> | undefined
}

export interface HistoryMessage {
  offset: number
  event: string
  data: unknown
}

export interface HistoryView {
  epoch: string
  offset: number
  messages: HistoryMessage[]
}

export class ChannelHistory implements ChannelStep {
  private readonly catching = new Map<string, Map<HistoryMember, CatchUp>>()
  /** the channels of this node with at least one socket that asked for deltas */
  private readonly deltas = new Map<string, DeltaChannel>()
  /**
   * Each channel's epoch on this node, keyed by the channel's set of local members: the set
   * is dropped when the last member leaves, and its entry with it.
   */
  private readonly epochs = new WeakMap<object, ChannelEpoch>()
  /** one warn line per run of failed publishes, not one per publish (closed with the broker) */
  readonly publishFailures: PublishFailureLog

  constructor (
    readonly policy: HistoryPolicy,
    private readonly broker: () => BrokerConnection | undefined,
    private readonly membersOf: (channel: string) => Iterable<HistoryMember> | undefined,
    private readonly log: FastifyBaseLogger
  ) {
    this.publishFailures = new PublishFailureLog(log, publishFailureSummaryMs, Date.now, historyPublishWording)
  }

  covers (channel: string): boolean {
    return this.policy.covers(channel)
  }

  // ---- publishing ----------------------------------------------------------------------

  /**
   * Publishes `frame` (without offset) to history channel `channel`. The broker delivers it
   * to this node too. When the broker fails, `fallback` delivers it to local sockets only,
   * without an offset: it is not part of the stream.
   */
  async publish (channel: string, frame: string, except: string | undefined, fallback: () => void): Promise<void> {
    const broker = this.broker()
    try {
      if (broker?.publishHistory === undefined) throw new Error('the broker is closed')
      await broker.publishHistory(channel, frame, except, this.policy)
    } catch (err) {
      this.publishFailures.failed(err, { channel })
      fallback()
      return
    }
    this.publishFailures.succeeded()
  }

  /**
   * A publication from the broker (any node's, this one's included), in offset order. Returns
   * the members it is for: every one but the publisher's own socket, those still catching up
   * included (they get it from their backlog).
   */
  deliver ({ channel, offset, frame, except, epoch }: HistoryPublication): number {
    const members = this.membersOf(channel)
    if (members === undefined) {
      this.deltas.delete(channel)
      return 0
    }
    const catching = this.catching.get(channel)
    const deltas = this.deltas.get(channel)
    if (epoch !== undefined) this.enterEpoch(channel, members, catching, deltas, epoch, offset)
    const step = deltas === undefined ? undefined : new DeltaStep(deltas, offset, frame)
    let outbound: OutboundFrame | undefined
    let count = 0
    for (const member of members) {
      if (member.id === except) continue
      count++
      const catchUp = catching?.get(member)
      if (catchUp !== undefined) {
        catchUp.held.push({ offset, frame, epoch })
        continue
      }
      const delta = step?.frameFor(member)
      if (delta !== undefined) {
        member.sendFrame(delta)
        continue
      }
      outbound ??= toOutbound(frame)
      member.sendFrame(outbound)
    }
    step?.done()
    return count
  }

  /**
   * A publication of `epoch` at `offset` is about to go to `members`: each caught-up one in
   * another epoch first gets `subscribed` without an id, at the offset before it (the joining
   * ones get theirs when they are caught up, from their held-back publications).
   */
  private enterEpoch (
    channel: string, members: Iterable<HistoryMember>, catching: Map<HistoryMember, CatchUp> | undefined,
    deltas: DeltaChannel | undefined, epoch: string, offset: number
  ): void {
    const known = this.epochs.get(members)
    if (known === undefined) {
      this.epochs.set(members, { epoch, ahead: undefined })
      return
    }
    if (known.epoch === epoch && known.ahead === undefined) return
    let restart: OutboundFrame | undefined
    for (const member of members) {
      if (catching?.has(member) === true) continue
      if ((known.ahead?.get(member) ?? known.epoch) === epoch) continue
      restart ??= restartFrame(channel, epoch, offset - 1)
      member.sendFrame(restart)
      if (deltas?.sent.has(member) === true) deltas.sent.set(member, -1) // the next one goes whole
    }
    if (restart !== undefined && deltas !== undefined) {
      deltas.offset = -1
      deltas.text = undefined
    }
    known.epoch = epoch
    known.ahead = undefined
  }

  /** `member`, caught up on `channel`, is in `epoch` now. */
  private joinedEpoch (channel: string, member: HistoryMember, epoch: string): void {
    const members = this.membersOf(channel)
    if (members === undefined) return
    const known = this.epochs.get(members)
    if (known === undefined) {
      this.epochs.set(members, { epoch, ahead: undefined })
    } else if (known.epoch === undefined) {
      known.epoch = epoch
    } else if (known.epoch !== epoch) {
      (known.ahead ??= new Map()).set(member, epoch)
    } else {
      known.ahead?.delete(member)
    }
  }

  // ---- joining -------------------------------------------------------------------------

  /** `member` is joining `channel`: hold its publications back until `confirm`. */
  begin (channel: string, member: HistoryMember): void {
    let catching = this.catching.get(channel)
    if (catching === undefined) this.catching.set(channel, catching = new Map())
    catching.set(member, { held: [] })
    this.deltas.get(channel)?.sent.delete(member)
  }

  /** `member` left `channel` (or closed) before it was caught up. */
  abandon (channel: string, member: HistoryMember): void {
    const members = this.membersOf(channel)
    if (members !== undefined) this.epochs.get(members)?.ahead?.delete(member)
    const catching = this.catching.get(channel)
    if (catching === undefined || !catching.delete(member)) return
    if (catching.size === 0) this.catching.delete(channel)
  }

  /**
   * The join step (membership.ts): when `member` is catching up on `channel`, reads the stream
   * and sends `subscribed` with epoch and offset, the replay, the held-back publications, all
   * in one step, and returns true; false (a plain `subscribed`) on any other join.
   */
  async answerJoin (member: HistoryMember, channel: string, request: JoinRequest = {}): Promise<boolean> {
    const catchUp = this.catching.get(channel)?.get(member)
    if (catchUp === undefined) return false
    const { since } = request
    const last = Math.min(request.last ?? 0, this.policy.size)
    let read: HistoryRead | undefined
    try {
      read = await this.read(channel, since === undefined ? { last } : { after: since.offset })
    } catch (err) {
      this.log.warn({ err, channel }, 'channels: history read failed; joined without history')
    }
    // Left or closed meanwhile: nothing to answer.
    if (this.catching.get(channel)?.get(member) !== catchUp) return true
    this.abandon(channel, member)
    const subscribed: SubscribedFrame = { type: 'subscribed', channel, id: request.id }
    let replay: HistoryEntry[] = []
    let top = 0
    if (read !== undefined) {
      subscribed.epoch = read.epoch
      subscribed.offset = top = read.offset
      if (since !== undefined) {
        subscribed.recovered = since.epoch === read.epoch && read.complete
        // What the old session would have received live: not its own broadcastChannel ones.
        if (subscribed.recovered) replay = read.entries.filter((entry) => entry.except === undefined || entry.except !== since.session)
      } else {
        replay = read.entries
      }
    } else if (since !== undefined) {
      subscribed.recovered = false
    }
    if (subscribed.recovered !== undefined && events.recovery.hasSubscribers) events.recovery.publish({ sessionId: member.id, channel, recovered: subscribed.recovered })
    member.sendFrame(toOutbound(encodeFrame(subscribed)))
    // Replayed and held-back publications go whole; the last one sent is a delta subscriber's base.
    let sent: HistoryEntry | undefined
    for (const entry of replay) {
      if (entry.offset > top) continue
      member.sendFrame(toOutbound(entry.frame))
      sent = entry
    }
    let epoch = read?.epoch
    for (const entry of catchUp.held) {
      if (entry.epoch !== undefined && entry.epoch !== epoch) {
        // The stream restarted while the socket was joining (or its read came first): it
        // starts over in the held publication's epoch.
        if (epoch !== undefined) member.sendFrame(restartFrame(channel, entry.epoch, entry.offset - 1))
        epoch = entry.epoch
        top = entry.offset - 1
      }
      if (entry.offset <= top) continue
      member.sendFrame(toOutbound(entry.frame))
      sent = entry
    }
    if (epoch !== undefined) this.joinedEpoch(channel, member, epoch)
    if (this.policy.delta && request.delta === true) this.trackDeltas(channel, member, sent)
    return true
  }

  /** `member` asked for deltas on `channel` and was last sent `sent` (if anything). */
  private trackDeltas (channel: string, member: HistoryMember, sent: HistoryEntry | undefined): void {
    let deltas = this.deltas.get(channel)
    if (deltas === undefined) this.deltas.set(channel, deltas = { offset: 0, text: undefined, sent: new WeakMap() })
    deltas.sent.set(member, sent?.offset ?? 0) // 0: nothing yet, the next publication goes whole
    // A newer publication than the node's base (the first delta subscriber's backlog): the next base.
    if (sent !== undefined && sent.offset > deltas.offset) {
      deltas.offset = sent.offset
      deltas.text = deltaText((JSON.parse(sent.frame) as ServerMessageFrame).data)
    }
  }

  // ---- reading -------------------------------------------------------------------------

  async read (channel: string, query: HistoryQuery): Promise<HistoryRead> {
    const broker = this.broker()
    if (broker?.readHistory === undefined) throw new Error('the broker is closed')
    return await broker.readHistory(channel, query, this.policy)
  }

  /** `fastify.channels.history(channel, { last })`: the stream's position and its last messages. */
  async view (channel: string, last = this.policy.size): Promise<HistoryView> {
    const read = await this.read(channel, { last: Math.max(0, Math.min(last, this.policy.size)) })
    return {
      epoch: read.epoch,
      offset: read.offset,
      messages: read.entries.map(({ offset, frame }) => {
        const { event, data } = JSON.parse(frame) as { event: string, data?: unknown }
        return { offset, event, data }
      })
    }
  }
}

/** `subscribed` without an id: the channel's stream restarted under `epoch`, its top at `offset`. */
function restartFrame (channel: string, epoch: string, offset: number): OutboundFrame {
  const frame: SubscribedFrame = { type: 'subscribed', channel, epoch, offset: Math.max(offset, 0), recovered: false }
  return toOutbound(encodeFrame(frame))
}

/**
 * One publication on a delta channel: its delta against the previous one, made at most once
 * (when a socket's last offset is exactly the previous one) and shared by every such socket.
 */
class DeltaStep {
  private text: string | undefined
  private parsed: ServerMessageFrame | undefined
  private made: OutboundFrame | null | undefined

  constructor (private readonly channel: DeltaChannel, private readonly offset: number, private readonly frame: string) {}

  /** the delta frame for `member`, or undefined when it gets the whole payload */
  frameFor (member: HistoryMember): OutboundFrame | undefined {
    const { sent } = this.channel
    // Only a socket that asked for deltas has an entry (from its join on).
    const last = sent.get(member)
    if (last === undefined) return undefined
    sent.set(member, this.offset)
    if (last !== this.offset - 1 || this.channel.offset !== last) return undefined
    return this.delta() ?? undefined
  }

  private delta (): OutboundFrame | null {
    if (this.made !== undefined) return this.made
    const base = this.channel.text
    const text = this.ownText()
    if (base === undefined || text === undefined || this.parsed === undefined) return (this.made = null)
    const delta = fromAscii(createDelta(ascii(base), ascii(text)))
    // A delta no smaller than the payload (a whole new document) is not worth it.
    if (delta.length >= text.length) return (this.made = null)
    const { event, channel } = this.parsed
    const frame: ServerMessageFrame = { type: 'message', event, channel, delta, offset: this.offset }
    return (this.made = toOutbound(encodeFrame(frame)))
  }

  private ownText (): string | undefined {
    if (this.parsed === undefined) {
      this.parsed = JSON.parse(this.frame) as ServerMessageFrame
      this.text = deltaText(this.parsed.data)
    }
    return this.text
  }

  /** the publication becomes the next one's base */
  done (): void {
    this.channel.offset = this.offset
    this.channel.text = this.ownText()
  }
}

/** The bytes of an ASCII text (a delta text is ASCII). */
function ascii (text: string): Uint8Array {
  const bytes = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i)
  return bytes
}

function fromAscii (bytes: Uint8Array): string {
  let text = ''
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192))
  return text
}
