/**
 * The NATS engine's transport: topics as core NATS subjects (NatsNames), publications written
 * at once on the node's one connection, and one PING per turn of the event loop that tells
 * whether they reached the server: a publication resolves when the server answered that PING,
 * and rejects when it did not within `timeoutMs`.
 *
 * What was reported failed is never delivered later. Core NATS cannot take back what is on its
 * way, and a server that hangs (or a TCP buffer) may hand it over once it wakes up, so every
 * publication carries a deadline (`Fc-Deadline`, ms on the server's clock: NatsClock) a quarter
 * of the timeout before the moment it would be reported failed, and every receiver drops what
 * arrives after its deadline (counted, and logged once per tick). Nothing is written while the
 * connection is down (the client would keep it and send it after the reconnect), and at most
 * `maxBytes` of publications wait for their PING's answer: past it they are refused. A
 * receiver that is itself slow (an event loop blocked for longer than the deadline) drops too:
 * the price of the promise.
 *
 * Subscriptions live on the connection: the client subscribes them again after a reconnect, and
 * a restore (EngineNode.restore) subscribes each topic again, which is a no-op for those it holds.
 */
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node'
import type { Topic, Transport } from '../parts.js'
import type { NatsClock } from './clock.js'
import { flushWithin } from './client.js'
import { HistoryOrder } from './history-order.js'
import type { NatsNames } from './names.js'

/** Headers the engine writes: a deadline, what a message is, and how much of it is the envelope. */
export const deadlineHeader = 'Fc-Deadline'
export const kindHeader = 'Fc-Kind'
export const envelopeBytesHeader = 'Fc-Envelope-Bytes'
/** Headers of a history entry (history-store.ts): its stream's epoch and its offset. */
export const epochHeader = 'Fc-Epoch'
export const offsetHeader = 'Fc-Offset'

const decoder = new TextDecoder()

export interface NatsTransportSettings {
  names: NatsNames
  clock: NatsClock
  headers: () => MsgHdrs
  /** ms a publication may take to be answered before it is reported failed */
  timeoutMs: number
  /** ms after it was made until which a publication may still be delivered */
  budgetMs: number
  /** bytes of publications waiting for the server's answer, at most */
  maxBytes: number
  /** whether the connection is up (nothing is written while it is not) */
  connected: () => boolean
  /** told once per publication that did not reach NATS */
  onDropped: () => void
  /** told once per message that arrived after its deadline */
  onLate: () => void
  /** told when a publication or subscription got no answer: it begins an outage */
  onFailed: (err: unknown) => void
}

/**
 * What a message carries for the core: its envelope, or `undefined` when it is none (a
 * history stream's epoch marker) or came too late.
 */
export function envelopeOf (msg: Msg, clock: NatsClock, onLate: () => void): string | undefined {
  const headers = msg.headers
  if (headers === undefined) return msg.string()
  if (headers.get(kindHeader) !== '') return undefined
  const deadline = headers.get(deadlineHeader)
  if (deadline !== '' && clock.latest() > Number(deadline)) {
    onLate()
    return undefined
  }
  const bytes = headers.get(envelopeBytesHeader)
  return bytes === '' ? msg.string() : decoder.decode(msg.data.subarray(0, Number(bytes)))
}

interface Waiting {
  resolve: () => void
  reject: (err: unknown) => void
}

export class NatsTransport implements Transport {
  private readonly subscriptions = new Map<string, Subscription>()
  private waiting: Waiting[] = []
  private waitingBytes = 0
  /** bytes written whose PING has not been answered (or the connection dropped) */
  private inFlight = 0
  /** history entries back in offset order (the stream's republish may swap two) */
  private readonly historyOrder: HistoryOrder

  constructor (
    private readonly nc: NatsConnection,
    private readonly settings: NatsTransportSettings,
    private readonly receive: (envelope: string) => void
  ) {
    this.historyOrder = new HistoryOrder(receive)
  }

  subject (topic: Topic): string {
    const { names } = this.settings
    switch (topic.kind) {
      case 'all': return names.all
      case 'node': return names.node(topic.nodeId)
      case 'channel': return names.channelMessages(topic.channel)
    }
  }

  private subscription (topic: Topic): string {
    return topic.kind === 'channel' ? this.settings.names.channel(topic.channel) : this.subject(topic)
  }

  /** Not an async function: on the hot path, one promise per publication and nothing more. */
  publish (topics: readonly Topic[], envelope: string): Promise<void> {
    const { settings } = this
    const bytes = envelope.length * topics.length
    if (!settings.connected()) return this.refuse(new Error('nats is not connected'))
    if (this.inFlight + bytes > settings.maxBytes) return this.refuse(new Error(`more than ${settings.maxBytes} bytes on the way to nats`))
    try {
      const headers = settings.headers()
      headers.set(deadlineHeader, String(settings.clock.deadline(settings.budgetMs)))
      for (const topic of topics) this.nc.publish(this.subject(topic), envelope, { headers })
    } catch (err) {
      return this.refuse(err)
    }
    this.inFlight += bytes
    return new Promise((resolve, reject) => {
      if (this.waiting.length === 0) process.nextTick(() => this.ping())
      this.waiting.push({ resolve, reject })
      this.waitingBytes += bytes
    })
  }

  private refuse (err: unknown): Promise<void> {
    this.settings.onDropped()
    return Promise.reject(err)
  }

  /** One PING for everything written this turn. */
  private ping (): void {
    const waiting = this.waiting
    const bytes = this.waitingBytes
    this.waiting = []
    this.waitingBytes = 0
    // the bytes count until the server answered or the connection dropped them, whatever the timeout
    let answered: Promise<void>
    try {
      answered = this.nc.flush()
    } catch (err) {
      answered = Promise.reject(err)
    }
    answered.then(() => { this.inFlight -= bytes }, () => { this.inFlight -= bytes })
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`nats did not answer within ${this.settings.timeoutMs} ms`)), this.settings.timeoutMs)
    })
    Promise.race([answered, late]).then(() => {
      clearTimeout(timer)
      for (const each of waiting) each.resolve()
    }, (err: unknown) => {
      clearTimeout(timer)
      for (const each of waiting) {
        this.settings.onDropped()
        each.reject(err)
      }
      this.settings.onFailed(err)
    })
  }

  async subscribe (topics: readonly Topic[]): Promise<void> {
    for (const topic of topics) {
      const subject = this.subscription(topic)
      if (this.subscriptions.has(subject)) continue
      this.subscriptions.set(subject, this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err !== null) return
          this.arrived(msg)
        }
      }))
    }
    try {
      await flushWithin(this.nc, this.settings.timeoutMs)
    } catch (err) {
      this.settings.onFailed(err)
      throw err
    }
  }

  /** A message of a subscription: a history entry goes through the reordering, the rest on at once. */
  private arrived (msg: Msg): void {
    const envelope = envelopeOf(msg, this.settings.clock, this.settings.onLate)
    const epoch = msg.headers?.get(epochHeader) ?? ''
    // only a history entry carries an epoch: the other messages skip the second header lookup
    const offset = epoch === '' ? Number.NaN : Number(msg.headers?.get(offsetHeader) ?? '')
    if (epoch === '' || !Number.isSafeInteger(offset)) {
      if (envelope !== undefined) this.receive(envelope)
    } else if (envelope === undefined) {
      this.historyOrder.skip(msg.subject, epoch, offset)
    } else {
      this.historyOrder.receive(msg.subject, epoch, offset, envelope)
    }
  }

  async unsubscribe (topics: readonly Topic[]): Promise<void> {
    for (const topic of topics) {
      const subject = this.subscription(topic)
      this.subscriptions.get(subject)?.unsubscribe()
      this.subscriptions.delete(subject)
      if (topic.kind === 'channel') this.historyOrder.forget(this.settings.names.channelHistory(topic.channel))
    }
  }

  /** Whether the server still answers. */
  async check (): Promise<void> {
    await flushWithin(this.nc, this.settings.timeoutMs)
  }

  /** Ends every subscription (a close). */
  close (): void {
    for (const subscription of this.subscriptions.values()) subscription.unsubscribe()
    this.subscriptions.clear()
    this.historyOrder.clear()
  }
}
