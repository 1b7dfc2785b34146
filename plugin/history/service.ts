/**
 * The node's side of history channels: publishing through the broker (which assigns offsets
 * and hands each publication to every node in offset order), delivering them to local
 * sockets, and joining a socket without a gap or a duplicate.
 *
 * A join is a catch-up: the socket is in the channel at once (so the broker relays the
 * channel to this node), but publications for it are held back while the stream is read.
 * Then, in one synchronous step, it gets `subscribed` (epoch, top offset), the replay it asked
 * for, the held-back publications above the top offset, and from then on live ones.
 */
import type { FastifyBaseLogger } from 'fastify'
import { encodeFrame } from '../../schemas/codec.js'
import type { SinceField, SubscribedFrame } from '../../schemas/protocol.js'
import type { BrokerConnection, HistoryEntry, HistoryPublication, HistoryQuery, HistoryRead } from '../broker/types.js'
import type { Recipient } from '../outbound/fanout.js'
import { toOutbound, type OutboundFrame } from '../outbound/frame-writer.js'
import type { ChannelStep } from '../channel-steps.js'
import { PublishFailureLog, historyPublishWording, publishFailureSummaryMs } from '../broker/publish-failures.js'
import type { HistoryPolicy } from '../options.js'

/** What the history needs of a socket. */
export type HistoryMember = Recipient

/** What a subscribe frame asks of a history channel (absent for a server-side `socket.subscribe()`). */
export interface JoinRequest {
  id?: number
  last?: number
  since?: SinceField
}

/** A socket joining a history channel: the publications held back until it is caught up. */
interface CatchUp {
  held: HistoryEntry[]
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

  /** A publication from the broker (any node's, this one's included), in offset order. */
  deliver ({ channel, offset, frame, except }: HistoryPublication): void {
    const members = this.membersOf(channel)
    if (members === undefined) return
    const catching = this.catching.get(channel)
    let outbound: OutboundFrame | undefined
    for (const member of members) {
      if (member.id === except) continue
      const catchUp = catching?.get(member)
      if (catchUp !== undefined) {
        catchUp.held.push({ offset, frame })
        continue
      }
      outbound ??= toOutbound(frame)
      member.sendFrame(outbound)
    }
  }

  // ---- joining -------------------------------------------------------------------------

  /** `member` is joining `channel`: hold its publications back until `confirm`. */
  begin (channel: string, member: HistoryMember): void {
    let catching = this.catching.get(channel)
    if (catching === undefined) this.catching.set(channel, catching = new Map())
    catching.set(member, { held: [] })
  }

  /** `member` left `channel` (or closed) before it was caught up. */
  abandon (channel: string, member: HistoryMember): void {
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
    member.sendFrame(toOutbound(encodeFrame(subscribed)))
    for (const entry of replay) if (entry.offset <= top) member.sendFrame(toOutbound(entry.frame))
    for (const entry of catchUp.held) if (entry.offset > top) member.sendFrame(toOutbound(entry.frame))
    return true
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
