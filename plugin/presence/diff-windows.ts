/**
 * When each presence channel's diff goes out: the windows over which a channel's changes are
 * merged into one `presence_diff`. Knows channel names and time only (the tracker owns the
 * mirrors and the frames): `open(channel)` at a change, and `flush(channel)` is called when the
 * channel's window ends.
 *
 * Each channel's window opens at its own first change, so the flushes of many busy channels
 * spread over time instead of landing in one macrotask (a storm changes every channel at once:
 * one flush for all of them wrote a frame to every observer on the node in one go, and every
 * other delivery waited behind it).
 *
 * A window lasts 50 ms, or 100 ms for a busy channel: one whose change comes within 100 ms of
 * its last diff. A lone change (someone joins a chat) still goes out within 50 ms, while a
 * channel in churn (a deploy's reconnect storm: every member leaving, then coming back) sends
 * a diff every 100 ms instead of every 50: fewer frames to each observer, each carrying more.
 * 100 ms is the longest window the protocol allows.
 */

/** ms over which changes are merged into one diff: a crowd joining at once costs a few frames */
export const presenceWindowMs = 50
/** the window of a busy channel (see the header), and how recent its last diff must be to make it one */
export const busyPresenceWindowMs = 100

export class DiffWindows {
  /**
   * Open windows of each length, channel → when it ends. A Map keeps insertion order, and the
   * windows of one map are all as long, so its first entry always ends first.
   */
  private readonly quiet = new Map<string, number>()
  private readonly busy = new Map<string, number>()
  /** channel → when its last window ended with a diff (one entry per channel the node mirrors: closed with it) */
  private readonly lastDiff = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  /** when the timer fires */
  private timerAt = Infinity

  /** @param flush ends `channel`'s window: sends its diff, if any; true when it did */
  constructor (private readonly flush: (channel: string) => boolean) {}

  /** `channel` changed: opens its window, unless one is open. */
  open (channel: string): void {
    if (this.quiet.has(channel) || this.busy.has(channel)) return
    const now = performance.now()
    const last = this.lastDiff.get(channel)
    const busy = last !== undefined && now - last < busyPresenceWindowMs
    const endsAt = now + (busy ? busyPresenceWindowMs : presenceWindowMs)
    if (busy) this.busy.set(channel, endsAt)
    else this.quiet.set(channel, endsAt)
    if (endsAt < this.timerAt) this.arm(endsAt, now)
  }

  /** Forgets `channel` (its last local subscriber left): no diff goes out for it. */
  close (channel: string): void {
    this.quiet.delete(channel)
    this.busy.delete(channel)
    this.lastDiff.delete(channel)
  }

  clear (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.timerAt = Infinity
    this.quiet.clear()
    this.busy.clear()
    this.lastDiff.clear()
  }

  private arm (endsAt: number, now: number): void {
    clearTimeout(this.timer)
    this.timerAt = endsAt
    this.timer = setTimeout(() => { this.flushDue() }, Math.max(0, endsAt - now))
  }

  /**
   * Ends every window that is due, then waits for the next one to end. (Timers may fire a
   * little early or late: a window due within the next millisecond is ended now rather than by
   * a timer of 0 ms.)
   */
  private flushDue (): void {
    this.timer = undefined
    this.timerAt = Infinity
    const now = performance.now()
    this.endDue(this.quiet, now)
    this.endDue(this.busy, now)
    const next = Math.min(first(this.quiet), first(this.busy))
    if (next !== Infinity) this.arm(next, now)
  }

  private endDue (windows: Map<string, number>, now: number): void {
    for (const [channel, endsAt] of windows) {
      if (endsAt > now + 1) return
      windows.delete(channel)
      if (this.flush(channel)) this.lastDiff.set(channel, now)
    }
  }
}

/** When the first window of `windows` ends; Infinity when none is open. */
function first (windows: Map<string, number>): number {
  const next = windows.values().next()
  return next.done === true ? Infinity : next.value
}
