/**
 * This node's stats (`fastify.channels.stats()`) and those of every node that shares the broker
 * (`fastify.channels.nodes()`, the admin page).
 *
 * Counters are plain increments, always on. Everything else runs only while someone watches:
 * this node (the admin page is on, or `nodes()` was called in the last `interestMs`) or another
 * node that asked (its stats notices say `want`; this node then answers for `leaseMs` after the
 * last one). While watched, one unref'd timer publishes the node's stats every `statsIntervalMs`
 * as a notice (notices.ts) and counts publications per channel for the busiest channels; an app
 * that never watches starts no timer. A node's stats are dropped `nodeMaxAgeMs` after they
 * arrived, and at once when the node says goodbye on close.
 */
import { hostname } from 'node:os'
import { decodeNotice, encodeNotice, type BusyChannel, type Notice, type NodeEvent, type NodeStats } from './notices.js'

export type { BusyChannel, NodeEvent, NodeStats } from './notices.js'

/** how often a watched node publishes its stats */
export const statsIntervalMs = 1000
/** the other nodes' stats are at most this old, by this node's clock, or not listed */
export const nodeMaxAgeMs = 2000
/** how long a `nodes()` call keeps this node watching */
export const interestMs = 30_000
/** how long a node keeps publishing after another node last asked */
export const leaseMs = 5000
/** the first `nodes()` call waits this long for the other nodes' first answers */
export const settleMs = 500
/** the recent events kept: a ring */
export const maxEvents = 50
/** the busiest channels listed */
export const busiestCount = 10
/** distinct channels counted per window; past it new ones wait for the next window (memory stays bounded) */
export const maxCountedChannels = 10_000
/** an event's message is cut to this many characters */
export const maxEventMessage = 200

/** What the keeper reads of its node. */
export interface StatsSource {
  readonly nodeId: string
  sockets (): number
  channels (): number
  subscriptions (): number
  closing (): boolean
  subscribers (channel: string): number
  /** hands a notice to every other node (a publication of kind `all`); undefined without a broker */
  publish (frame: string): Promise<void> | undefined
  /** closes the local session `sessionId` if this node holds it; true when it did */
  closeSession (sessionId: string, code: number, reason: string): boolean
}

interface Sample { at: number, publications: number, deliveries: number }

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export class StatsKeeper {
  /** publications made on this node */
  publications = 0
  /** messages handed to this node's sockets */
  deliveries = 0
  private readonly started = Date.now()
  private readonly host = hostname()
  private readonly events: NodeEvent[] = []
  private nextEvent = 0
  private readonly peers = new Map<string, { stats: NodeStats, seenAt: number }>()
  /** the rates' base: the sample at least `statsIntervalMs` old, and the latest */
  private base: Sample
  private latest: Sample
  /** per-channel publications in the current window, only while watched */
  private counting: Map<string, number> | undefined
  private windowStart = 0
  private busiest: BusyChannel[] = []
  private timer: NodeJS.Timeout | undefined
  /** when this node last began to watch (the other nodes' first answers are on their way) */
  private interestSince = 0
  private interestUntil = 0
  private leaseUntil = 0
  private closed = false
  /** the process's RSS, read at most once per `statsIntervalMs`: a read costs ~25 µs (/proc), stats() a few hundred ns */
  private rss = { at: -Infinity, bytes: 0 }

  constructor (private readonly source: StatsSource) {
    this.base = this.latest = { at: this.started, publications: 0, deliveries: 0 }
  }

  /** whether the timer runs (someone watches) */
  get watched (): boolean {
    return this.timer !== undefined
  }

  // ---- counters, from the node's hot paths ------------------------------------------------

  /** a publication to `channels`: counted per channel only while watched */
  published (channels: readonly string[] | undefined): void {
    this.publications++
    const counting = this.counting
    if (counting === undefined || channels === undefined) return
    for (const channel of channels) {
      const count = counting.get(channel)
      if (count !== undefined) counting.set(channel, count + 1)
      else if (counting.size < maxCountedChannels) counting.set(channel, 1)
    }
  }

  /** a handler error, a slow-consumer close, a failed publish: kept in a ring of `maxEvents` */
  note (kind: NodeEvent['kind'], message: string, sessionId?: string, channel?: string): void {
    const event: NodeEvent = { at: Date.now(), kind, message: message.slice(0, maxEventMessage) }
    if (sessionId !== undefined) event.sessionId = sessionId
    if (channel !== undefined) event.channel = channel
    if (this.events.length < maxEvents) this.events.push(event)
    else this.events[this.nextEvent] = event
    this.nextEvent = (this.nextEvent + 1) % maxEvents
  }

  // ---- this node ----------------------------------------------------------------------------

  snapshot (): NodeStats {
    const now = Date.now()
    const current: Sample = { at: now, publications: this.publications, deliveries: this.deliveries }
    if (now - this.latest.at >= statsIntervalMs) {
      this.base = this.latest
      this.latest = current
    }
    const seconds = Math.max(now - this.base.at, 1) / 1000
    const { source } = this
    const sockets = source.sockets()
    return {
      node: source.nodeId,
      at: now,
      host: this.host,
      pid: process.pid,
      uptime: Math.round((now - this.started) / 1000),
      memory: this.memory(now),
      closing: source.closing(),
      connections: sockets,
      sockets,
      subscriptions: source.subscriptions(),
      channels: source.channels(),
      publications: this.publications,
      deliveries: this.deliveries,
      publicationsPerSecond: round((this.publications - this.base.publications) / seconds),
      deliveriesPerSecond: round((this.deliveries - this.base.deliveries) / seconds),
      busiest: this.busiest,
      events: this.recentEvents()
    }
  }

  private memory (now: number): number {
    if (now - this.rss.at >= statsIntervalMs) this.rss = { at: now, bytes: process.memoryUsage.rss() }
    return this.rss.bytes
  }

  private recentEvents (): NodeEvent[] {
    if (this.events.length < maxEvents) return [...this.events]
    return [...this.events.slice(this.nextEvent), ...this.events.slice(0, this.nextEvent)]
  }

  // ---- every node ---------------------------------------------------------------------------

  /**
   * This node's stats and the last ones of every other node heard from in the last
   * `nodeMaxAgeMs`. The first call waits `settleMs` for the others' first answers.
   */
  async nodes (): Promise<NodeStats[]> {
    this.watch(Date.now() + interestMs)
    const waited = Date.now() - this.interestSince
    if (waited < settleMs) await sleep(settleMs - waited)
    return this.listed()
  }

  /** What `nodes()` resolves, as it stands now. */
  listed (): NodeStats[] {
    this.dropStale(Date.now())
    const others = [...this.peers.values()].map((peer) => peer.stats).sort((a, b) => a.node.localeCompare(b.node))
    return [this.snapshot(), ...others]
  }

  /** Keeps this node watching until `until` (`Infinity`: the admin page, for the node's life). */
  watch (until: number): void {
    if (this.closed) return
    const now = Date.now()
    const asking = now >= this.interestUntil
    this.interestUntil = Math.max(this.interestUntil, until)
    if (!asking) return
    this.interestSince = now
    // A timer already running (on another node's lease) publishes without `want`: ask now.
    if (this.timer === undefined) this.start()
    else this.publishStats(now)
  }

  /** Closes `sessionId` here or, through a notice, on whichever node holds it; true when it was here. */
  async closeSession (sessionId: string, code: number, reason: string): Promise<boolean> {
    if (this.source.closeSession(sessionId, code, reason)) return true
    await this.source.publish(encodeNotice({ type: 'close', sessionId, code, reason }))
    return false
  }

  /** A notice from another node (its `all` publication). */
  receive (frame: string): void {
    const notice = decodeNotice(frame)
    if (notice === undefined || this.closed) return
    const now = Date.now()
    switch (notice.type) {
      case 'stats':
        if (notice.stats.node === this.source.nodeId) return // an echo (a broker that hands publications back)
        this.peers.set(notice.stats.node, { stats: notice.stats, seenAt: now })
        if (notice.want) {
          this.leaseUntil = now + leaseMs
          this.start()
        }
        return
      case 'leave':
        this.peers.delete(notice.node)
        return
      case 'close':
        this.source.closeSession(notice.sessionId, notice.code, notice.reason)
    }
  }

  /** Stops the timer and, if someone was watching, tells the other nodes this one is gone. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    const wasWatched = this.watched
    this.stop()
    if (wasWatched) await this.send({ type: 'leave', node: this.source.nodeId })
  }

  // ---- the timer ----------------------------------------------------------------------------

  private start (): void {
    if (this.timer !== undefined) return
    const now = Date.now()
    this.counting = new Map()
    this.windowStart = now
    this.timer = setInterval(() => this.tick(), statsIntervalMs).unref()
    this.publishStats(now) // answer (or ask) at once, not a second later
  }

  private stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.counting = undefined
    this.busiest = []
    this.peers.clear()
  }

  private tick (): void {
    const now = Date.now()
    if (now >= this.interestUntil && now >= this.leaseUntil) {
      this.stop()
      return
    }
    this.rollWindow(now)
    this.dropStale(now)
    this.publishStats(now)
  }

  private publishStats (now: number): void {
    this.send({ type: 'stats', want: now < this.interestUntil, stats: this.snapshot() }).catch(() => {}) // send() does not reject
  }

  private async send (notice: Notice): Promise<void> {
    try {
      await this.source.publish(encodeNotice(notice))
    } catch {
      // the broker is down: the node's failed publishes are logged by the broker's own path;
      // its stats simply age out on the other nodes
    }
  }

  /** The busiest channels of the window that ends now, then a new window. */
  private rollWindow (now: number): void {
    const counting = this.counting
    if (counting === undefined) return
    const seconds = Math.max(now - this.windowStart, 1) / 1000
    this.busiest = [...counting].sort((a, b) => b[1] - a[1]).slice(0, busiestCount)
      .map(([channel, count]) => ({ channel, perSecond: round(count / seconds), subscribers: this.source.subscribers(channel) }))
    counting.clear()
    this.windowStart = now
  }

  private dropStale (now: number): void {
    for (const [node, peer] of this.peers) {
      if (now - peer.seenAt > nodeMaxAgeMs) this.peers.delete(node)
    }
  }
}

function round (value: number): number {
  return Math.round(value * 10) / 10
}
