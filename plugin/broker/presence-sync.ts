/**
 * Presence shared by every node of one broker, the core's side: this node keeps its own tracks
 * (the source of every re-assertion), gathers the changes of one event-loop turn and writes
 * them through the engine's PresenceStore, which publishes each channel's change on the
 * channel's topic; every node with a subscriber of it passes the change on to its tracker.
 *
 * A node that died without closing stops refreshing its registration (registry.ts); every
 * node's timer looks for such nodes and has the store remove their tracks. The leaves carry
 * the dead node's id: should the node only have stalled, it ignores those leaves, sees it was
 * reaped (it is no longer among the store's nodes) and writes its tracks again, which the
 * others take as joins.
 *
 * A write that failed is made good by the next tick's re-assertion: every own track, and every
 * leave that was not written (a channel the node left meanwhile has no track to write again).
 *
 * Writes run one after another: on a cluster a write is several steps, and a later write
 * overtaking an earlier one could forget a channel in the store after it was registered again.
 */
import type { FastifyBaseLogger } from 'fastify'
import { encodePresence, presenceLeavesHead } from './envelope.js'
import type { PresenceStore, PresenceWrite, RegistryStore } from './parts.js'
import type { BrokerNode, PresenceChanges, PresenceTrack } from './types.js'

/** How often a node looks for dead nodes: with a TTL of 10 s, a dead node's leaves go out within 12 s. */
export function presenceTickMs (ttl: number | undefined): number {
  return ttl === undefined ? 2000 : Math.min(2000, Math.max(200, Math.floor(ttl / 5)))
}

export class PresenceSync {
  /** this node's own tracks per channel, whatever the store knows */
  private readonly own = new Map<string, Map<string, PresenceTrack>>()
  /**
   * leaves whose write failed, per channel: the next re-assertion writes them again. Writing
   * the own tracks again is not enough for them: a channel this node left while the store was
   * down has no own track left to write, so its stale tracks would stay listed (and the other
   * nodes never told they left) until this node's death was reaped. Refs are never reused.
   */
  private readonly unwrittenLeaves = new Map<string, Set<string>>()
  private timer: NodeJS.Timeout | undefined
  /** false after a failed write or a restore: the next tick writes every own track again */
  private synced = true
  /** changes published meanwhile may have been missed: the next tick has the node read its channels again */
  private missedChanges = false
  private ticking = false
  private stopped = false
  /** this node's changes of the current turn, per channel, written together (see update) */
  private queued = new Map<string, { joins: Map<string, PresenceTrack>, leaves: string[] }>()
  private batch: Promise<void> | undefined
  /** the last write: the next one starts when it settled */
  private writing: Promise<unknown> = Promise.resolve()
  private readonly log: FastifyBaseLogger

  constructor (
    private readonly store: PresenceStore,
    private readonly registry: RegistryStore,
    private readonly node: BrokerNode,
    /** the engine's name, for the log lines */
    private readonly engine: string
  ) {
    this.log = node.log
  }

  /**
   * Starts the upkeep. An engine whose nodes can die without closing (a registry with a TTL)
   * needs it at once: this node reaps the others. On an engine without (the in-process one)
   * nodes leave only by closing, so the upkeep waits until this node uses presence: an app
   * without presence starts no timer of it.
   */
  start (): void {
    if (this.registry.ttl !== undefined) this.arm()
  }

  private arm (): void {
    if (this.timer !== undefined || this.stopped) return
    this.timer = setInterval(() => { this.tick().catch(() => {}) }, presenceTickMs(this.registry.ttl))
    this.timer.unref()
  }

  /**
   * The engine may have lost this node's tracks or some changes (an outage ended): on the next
   * tick, write every own track again and have the node read its channels again.
   */
  resync (): void {
    this.arm()
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
   * node closing its sockets) go to the store together: one write, one envelope per channel,
   * with a track that came and went in between never written at all.
   */
  update (channel: string, changes: PresenceChanges): Promise<void> {
    this.arm()
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

  private write (channels: Map<string, PresenceChanges>, forget: string[], unregister = false): PresenceWrite {
    const change: PresenceWrite = { channels: new Map(), forget, unregister }
    for (const [channel, changes] of channels) {
      change.channels.set(channel, { ...changes, envelope: encodePresence(this.node.nodeId, channel, changes) })
    }
    return change
  }

  private async writeQueued (): Promise<void> {
    const queued = this.queued
    this.queued = new Map()
    this.batch = undefined
    const channels = new Map<string, PresenceChanges>()
    const forget: string[] = []
    for (const [channel, { joins, leaves }] of queued) {
      if (joins.size === 0 && leaves.length === 0) continue
      channels.set(channel, { joins: [...joins.values()], leaves })
      if (!this.own.has(channel)) forget.push(channel)
    }
    if (channels.size === 0) return // stopped meanwhile, or nothing left
    try {
      await this.store.write(this.write(channels, forget))
    } catch (err) {
      this.synced = false
      this.keepUnwritten(channels)
      throw err
    }
  }

  /** The leaves of a write that failed, kept for the next re-assertion (see unwrittenLeaves). */
  private keepUnwritten (channels: Map<string, PresenceChanges>): void {
    for (const [channel, { leaves }] of channels) {
      if (leaves.length === 0) continue
      let unwritten = this.unwrittenLeaves.get(channel)
      if (unwritten === undefined) this.unwrittenLeaves.set(channel, unwritten = new Set())
      for (const ref of leaves) unwritten.add(ref)
    }
  }

  async state (channel: string): Promise<PresenceTrack[]> {
    this.arm()
    return await this.store.list(channel)
  }

  /** A change another node published (our own echo, or our tracks reaped while we stalled, are ignored: see tick). */
  receive (nodeId: string, channel: string, changes: PresenceChanges): void {
    if (nodeId === this.node.nodeId) return
    this.node.presenceChanged?.(channel, changes)
  }

  // ---- the timer: re-assert, reload, reap ----------------------------------------------

  private async tick (): Promise<void> {
    if (this.ticking) return
    this.ticking = true
    try {
      const nodes = await this.store.nodes()
      const written = this.own.size > 0 || this.unwrittenLeaves.size > 0
      if (written && (!this.synced || !nodes.includes(this.node.nodeId))) await this.reassert()
      if (this.missedChanges) {
        this.missedChanges = false
        this.node.presenceReload?.()
      }
      await this.reapDead(nodes.filter((nodeId) => nodeId !== this.node.nodeId))
    } catch (err) {
      this.log.debug({ err }, 'channels: presence upkeep failed; retried on the next tick')
    } finally {
      this.ticking = false
    }
  }

  /**
   * Writes every own track again (after an outage, or after others reaped us while we stalled),
   * and every leave whose write failed; a channel left without tracks is forgotten again.
   */
  private async reassert (): Promise<void> {
    const channels = await this.serial(async () => {
      this.synced = true // a write failing from here on sets it back
      const all = new Map<string, PresenceChanges>()
      for (const [channel, tracks] of this.own) all.set(channel, { joins: [...tracks.values()], leaves: [] })
      const unwritten = new Map(this.unwrittenLeaves)
      this.unwrittenLeaves.clear()
      const forget: string[] = []
      for (const [channel, refs] of unwritten) {
        const change = all.get(channel)
        if (change !== undefined) change.leaves = [...refs]
        else {
          all.set(channel, { joins: [], leaves: [...refs] })
          forget.push(channel)
        }
      }
      try {
        await this.store.write(this.write(all, forget))
      } catch (err) {
        this.synced = false
        this.keepUnwritten(all)
        throw err
      }
      return all.size
    })
    this.log.info({ channels }, `channels: presence tracks of this node written to ${this.engine} again`)
    this.node.presenceReload?.()
  }

  /** Removes the tracks of the nodes whose registration is gone. */
  private async reapDead (others: string[]): Promise<void> {
    if (others.length === 0) return
    const alive = await this.registry.alive(others)
    for (const [i, nodeId] of others.entries()) {
      if (alive[i]) continue
      const tracks = await this.store.reap(nodeId, (channel) => presenceLeavesHead(nodeId, channel))
      if (tracks > 0) this.log.info({ node: nodeId, tracks }, 'channels: removed the presence tracks of a node that stopped')
    }
  }

  /** Stops the timer and removes this node's tracks (best effort: others reap them anyway). */
  async stop (): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    this.timer = undefined
    // Every track this node may have written leaves: its own, those that left this turn, and
    // those whose leave was not written.
    const leaving = new Map<string, string[]>()
    for (const [channel, tracks] of this.own) leaving.set(channel, [...tracks.keys()])
    for (const [channel, { leaves }] of this.queued) leaving.set(channel, [...leaving.get(channel) ?? [], ...leaves])
    for (const [channel, refs] of this.unwrittenLeaves) leaving.set(channel, [...leaving.get(channel) ?? [], ...refs])
    this.queued.clear()
    this.own.clear()
    this.unwrittenLeaves.clear()
    const channels = new Map<string, PresenceChanges>()
    for (const [channel, leaves] of leaving) if (leaves.length > 0) channels.set(channel, { joins: [], leaves })
    await this.serial(async () => await this.store.write(this.write(channels, [], true)))
  }
}
