/**
 * Presence in Redis, shared by every node on one prefix: this node's side. It keeps its own
 * tracks (the source of every re-assertion), gathers the changes of one event-loop turn and
 * writes them through the store (redis-presence-store.ts: the keys, the slot-safe steps, the
 * reaper). A node writes its own tracks and publishes each change on the channel's pub/sub
 * channel, which every node with a subscriber of it listens to, as a `p` envelope
 * (redis-presence-envelope.ts).
 *
 * A node that died without closing stops refreshing its alive key (redis-sessions.ts); every
 * node's timer looks for such nodes and removes their tracks. The leaves carry the dead node's
 * id: should the node only have stalled, it ignores those leaves, sees it was reaped (it is no
 * longer registered) and writes its tracks again, which the others take as joins.
 *
 * Writes run one after another: on a cluster a write is several MULTIs, and a later write
 * overtaking an earlier one could forget a channel in the registry after it was registered again.
 */
import type { Link } from './link.js'
import { decodePresenceEnvelope } from './presence-envelope.js'
import { PresenceStore, type PresenceStoreSettings, type PresenceWrite } from './presence-store.js'
import type { BrokerNode, PresenceChanges, PresenceTrack } from '../types.js'

export interface RedisPresenceSettings extends PresenceStoreSettings {
  nodeTtl: number
}

export class RedisPresence {
  /** this node's own tracks per channel, whatever Redis knows: the source of every re-assertion */
  private readonly own = new Map<string, Map<string, PresenceTrack>>()
  private readonly store: PresenceStore
  private timer: NodeJS.Timeout | undefined
  /** false after a failed write or a reconnect: the next tick writes every own track again */
  private synced = true
  /** the subscriber reconnected: changes published meanwhile were missed */
  private missedChanges = false
  private ticking = false
  /** this node's changes of the current turn, per channel, written together (see update) */
  private queued = new Map<string, { joins: Map<string, PresenceTrack>, leaves: string[] }>()
  private batch: Promise<void> | undefined
  /** the last write: the next one starts when it settled */
  private writing: Promise<unknown> = Promise.resolve()

  /** every call goes through the broker's links: a timeout, no backlog, a reset when Redis hangs */
  constructor (
    private readonly pub: Link,
    private readonly sub: Link,
    private readonly node: BrokerNode,
    private readonly settings: RedisPresenceSettings
  ) {
    this.store = new PresenceStore(pub, node, settings)
  }

  /** How often a node looks for dead nodes: with the default TTL (10 s), leaves go out within 12 s. */
  get tickMs (): number {
    return Math.min(2000, Math.max(200, Math.floor(this.settings.nodeTtl / 5)))
  }

  start (): void {
    this.pub.client.on('ready', () => { this.synced = false })
    this.sub.client.on('ready', () => { this.missedChanges = true })
    this.timer = setInterval(() => { this.tick().catch(() => {}) }, this.tickMs)
    this.timer.unref()
  }

  /**
   * An outage ended (the connection tells): on the next tick, write every own track again and
   * read every mirror again. The 'ready' events above cover one Redis; on a cluster a shard that
   * failed over emits none, and the changes published on its channels meanwhile were missed.
   */
  resync (): void {
    this.synced = false
    this.missedChanges = true
  }

  /** Runs `write` after every write before it settled (see the header). */
  private async serial<T> (write: () => Promise<T>): Promise<T> {
    const done = this.writing.then(write)
    this.writing = done.catch(() => {})
    return await done
  }

  // ---- this node's changes -------------------------------------------------------------

  /**
   * Records this node's change. Changes made in one turn of the event loop (a crowd joining, a
   * node closing its sockets) go to Redis together: one write, one envelope per channel, with a
   * track that came and went in between never written at all.
   */
  update (channel: string, changes: PresenceChanges): Promise<void> {
    let tracks = this.own.get(channel)
    for (const ref of changes.leaves) tracks?.delete(ref)
    if (changes.joins.length > 0 && tracks === undefined) this.own.set(channel, tracks = new Map())
    for (const track of changes.joins) tracks?.set(track.ref, track)
    if (tracks !== undefined && tracks.size === 0) this.own.delete(channel)

    let queued = this.queued.get(channel)
    if (queued === undefined) this.queued.set(channel, queued = { joins: new Map(), leaves: [] })
    for (const ref of changes.leaves) {
      if (!queued.joins.delete(ref)) queued.leaves.push(ref) // one never written needs no leave
    }
    for (const track of changes.joins) queued.joins.set(track.ref, track)
    // Changes made while the previous write is on its way join this batch (it starts after that write).
    this.batch ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => { this.serial(async () => await this.writeQueued()).then(resolve, reject) })
    })
    return this.batch
  }

  private async writeQueued (): Promise<void> {
    const queued = this.queued
    this.queued = new Map()
    this.batch = undefined
    const change: PresenceWrite = { channels: new Map(), forget: [] }
    for (const [channel, { joins, leaves }] of queued) {
      if (joins.size === 0 && leaves.length === 0) continue
      change.channels.set(channel, { joins: [...joins.values()], leaves })
      if (!this.own.has(channel)) change.forget.push(channel)
    }
    if (change.channels.size === 0) return // stopped meanwhile, or nothing left
    try {
      await this.store.write(change)
    } catch (err) {
      this.synced = false
      throw err
    }
  }

  async state (channel: string): Promise<PresenceTrack[]> {
    return await this.store.state(channel)
  }

  /** A `p` envelope from the channel's pub/sub channel. */
  receive (text: string): void {
    const envelope = decodePresenceEnvelope(text)
    if (envelope === undefined) {
      this.node.log.warn('channels: dropped a presence message this version cannot read')
      return
    }
    // Our own echo, or our tracks reaped while we stalled: we write them again (see tick).
    if (envelope.nodeId === this.node.nodeId) return
    this.node.presenceChanged?.(envelope.channel, envelope.changes)
  }

  // ---- the timer: re-assert, reap ------------------------------------------------------

  private async tick (): Promise<void> {
    if (this.ticking) return
    this.ticking = true
    try {
      if (this.own.size > 0 && (!this.synced || !await this.store.registered())) await this.reassert()
      if (this.missedChanges) {
        this.missedChanges = false
        this.node.presenceReload?.()
      }
      await this.store.reapDead()
    } catch (err) {
      this.node.log.debug({ err }, 'channels: presence upkeep failed; retried on the next tick')
    } finally {
      this.ticking = false
    }
  }

  /** Writes every own track again (after an outage, or after others reaped us while we stalled). */
  private async reassert (): Promise<void> {
    const channels = await this.serial(async () => {
      this.synced = true // a write failing from here on sets it back
      const change: PresenceWrite = { channels: new Map(), forget: [] }
      for (const [channel, tracks] of this.own) change.channels.set(channel, { joins: [...tracks.values()], leaves: [] })
      try {
        await this.store.write(change)
      } catch (err) {
        this.synced = false
        throw err
      }
      return change.channels.size
    })
    this.node.log.info({ channels }, 'channels: presence tracks of this node written to redis again')
    this.node.presenceReload?.()
  }

  /** Stops the timer and removes this node's tracks (best effort: others reap them anyway). */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    // Every track this node may have written leaves: its own, and those that left this turn.
    const leaving = new Map<string, string[]>()
    for (const [channel, tracks] of this.own) leaving.set(channel, [...tracks.keys()])
    for (const [channel, { leaves }] of this.queued) leaving.set(channel, [...leaving.get(channel) ?? [], ...leaves])
    this.queued.clear()
    this.own.clear()
    const change: PresenceWrite = { channels: new Map(), forget: [], unregister: true }
    for (const [channel, leaves] of leaving) if (leaves.length > 0) change.channels.set(channel, { joins: [], leaves })
    await this.serial(async () => await this.store.write(change))
  }
}
