/**
 * Reconnect timing: exponential backoff with jitter after a failure, and a full-jitter wait
 * after a server that went away on purpose, so that a thousand clients dropped by one restart
 * do not all knock on the servers again in the same millisecond.
 */

/** Milliseconds to wait before attempt number `tries` (1 for the first retry). */
export type Backoff = (tries: number) => number

export interface BackoffOptions {
  /** ceiling of the first wait in ms [250] */
  initial?: number
  /** the longest wait in ms [10000] */
  max?: number
  /** a source of randomness in [0, 1) [Math.random] */
  random?: () => number
}

/**
 * "Equal jitter": the ceiling doubles with every try up to `max`, and the wait is drawn
 * from the upper half of it, so it grows reliably yet two clients rarely wait the same.
 * Defaults: 125–250 ms, 250–500 ms, 0.5–1 s, 1–2 s, ... then 5–10 s.
 */
export function exponentialBackoff ({ initial = 250, max = 10_000, random = Math.random }: BackoffOptions = {}): Backoff {
  return (tries) => {
    const ceiling = Math.min(max, initial * 2 ** Math.min(Math.max(tries - 1, 0), 30))
    return ceiling / 2 + random() * (ceiling / 2)
  }
}

/**
 * "Full jitter": a wait drawn evenly from [0, `windowMs`). The clients of a node that closes
 * them (1001, drained over the server's `drainMs`) then come back spread over the window plus
 * the drain, not in one wave; the mean wait is half the window.
 */
export function fullJitter (windowMs: number, random: () => number = Math.random): number {
  return random() * Math.max(0, windowMs)
}

/**
 * One retry timer that counts its tries (phoenix.js's Timer). The count is not exposed: the
 * backoff function receives it (`backoff(tries)`), which is the seam tests observe it through.
 */
export class Timer {
  private tries = 0
  private handle: ReturnType<typeof setTimeout> | undefined

  constructor (private readonly callback: () => void, private readonly backoff: Backoff) {}

  /** Schedules the next try after the backoff for it (replacing any scheduled one). */
  schedule (): void {
    this.cancel()
    this.tries++
    this.handle = setTimeout(() => {
      this.handle = undefined
      this.callback()
    }, Math.max(0, this.backoff(this.tries)))
  }

  /**
   * Schedules a try after `ms` instead of the backoff (replacing any scheduled one), without
   * counting it: if it fails, the backoff is asked for try 1 as after any first failure.
   */
  scheduleIn (ms: number): void {
    this.cancel()
    this.handle = setTimeout(() => {
      this.handle = undefined
      this.callback()
    }, Math.max(0, ms))
  }

  /** Forgets the tries (after a success) and cancels any scheduled one. */
  reset (): void {
    this.tries = 0
    this.cancel()
  }

  cancel (): void {
    if (this.handle !== undefined) clearTimeout(this.handle)
    this.handle = undefined
  }
}
