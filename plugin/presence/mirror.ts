/**
 * What one node knows of one presence channel while it has local subscribers of it: every
 * track over every node (`current`), and the changes of the running diff window.
 *
 * The window is kept as the net change against `base` (the state subscribers had at the last
 * flush): a track that joined and left inside one window is in neither map, a leave of a track
 * from before the window stays a leave. So `base = current − joins + leaves`, the `presence`
 * frame a socket gets mid-window is `base`, and the next diff brings it to `current`, exactly
 * like every other observer.
 *
 *   loading ──loaded──▶ ready          (changes that arrive while loading wait, in order)
 */
import type { PresenceChanges, PresenceTrack } from '../broker/types.js'

interface Entry {
  key: string
  /** JSON text */
  meta: string
}

export interface Diff {
  joins: Map<string, Entry>
  leaves: Map<string, Entry>
}

export type MirrorState = 'loading' | 'ready'

export class ChannelMirror<Observer> {
  state: MirrorState = 'loading'
  /** sockets that got the `presence` frame: only they get diffs */
  readonly observers = new Set<Observer>()
  private readonly current = new Map<string, Entry>()
  private joins = new Map<string, Entry>()
  private leaves = new Map<string, Entry>()
  /** changes that came in while the state was loading, applied in order once it is there */
  private waiting: PresenceChanges[] = []

  /** true when the window holds a change to send */
  get dirty (): boolean {
    return this.joins.size > 0 || this.leaves.size > 0
  }

  get size (): number {
    return this.current.size
  }

  /** Applies changes (leaves first); while loading they wait. */
  apply (changes: PresenceChanges): void {
    if (this.state === 'loading') {
      this.waiting.push(changes)
      return
    }
    for (const ref of changes.leaves) this.leave(ref)
    for (const track of changes.joins) this.join(track)
  }

  /**
   * The whole state has been read (from the broker): it becomes `current` through ordinary
   * joins and leaves, then the changes that waited are applied on top. Called again after an
   * outage, it turns whatever was missed into one diff.
   */
  load (tracks: PresenceTrack[]): void {
    const first = this.state === 'loading'
    this.state = 'ready'
    const loaded = new Set<string>()
    for (const track of tracks) loaded.add(track.ref)
    for (const ref of [...this.current.keys()]) if (!loaded.has(ref)) this.leave(ref)
    for (const track of tracks) this.join(track)
    const waiting = this.waiting
    this.waiting = []
    for (const changes of waiting) this.apply(changes)
    // The first read is the state itself, not a change: nobody has seen anything of this
    // channel yet, so it is all `base`, and the first `presence` frame holds every member
    // (not `{}` followed by the members as joins one window later).
    if (first && this.observers.size === 0) this.takeDiff()
  }

  private join ({ ref, key, meta }: PresenceTrack): void {
    if (this.current.has(ref)) return // a repeat (a re-assertion after an outage)
    const entry = { key, meta }
    this.current.set(ref, entry)
    const left = this.leaves.get(ref)
    // Back within the window as it was (a node that stalled re-asserting): no change at all.
    if (left !== undefined && left.key === key && left.meta === meta) this.leaves.delete(ref)
    else this.joins.set(ref, entry)
  }

  private leave (ref: string): void {
    const entry = this.current.get(ref)
    if (entry === undefined) return
    this.current.delete(ref)
    // Came and went inside the window: it is in neither half of the diff.
    if (!this.joins.delete(ref)) this.leaves.set(ref, entry)
  }

  /** Ends the window: its net change, and a fresh window. */
  takeDiff (): Diff {
    const diff = { joins: this.joins, leaves: this.leaves }
    this.joins = new Map()
    this.leaves = new Map()
    return diff
  }

  /** every track now (for `fastify.channels.presence` without a sharing broker) */
  tracks (): PresenceTrack[] {
    return [...this.current].map(([ref, { key, meta }]) => ({ ref, key, meta }))
  }

  /** The state as of the last flush: what a new observer starts from. */
  base (): Map<string, Entry> {
    if (!this.dirty) return this.current
    const base = new Map(this.current)
    for (const ref of this.joins.keys()) base.delete(ref)
    for (const [ref, entry] of this.leaves) base.set(ref, entry)
    return base
  }
}
