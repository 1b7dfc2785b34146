/**
 * A fixed-window inbound rate limit for one socket. Windows are aligned to the socket's
 * start, so "consecutive windows" has one meaning: window n and window n + 1.
 */
import type { RateLimitOptions } from '../options.js'

export type RateVerdict = 'allow' | 'drop' | 'limit' | 'abuse'

/** Windows in a row in which a socket was limited before it is closed with 1008. */
export const abusiveWindows = 3

export class RateWindow {
  private readonly origin: number
  private window = 0
  private count = 0
  private lastLimitedWindow = -2
  private streak = 0

  constructor (private readonly limit: RateLimitOptions, now: number) {
    this.origin = now
  }

  /**
   * 'allow': handle the frame; 'drop': drop it silently (already told this window);
   * 'limit': drop it and send RATE_LIMITED; 'abuse': drop it, send RATE_LIMITED and close 1008.
   */
  take (now: number): RateVerdict {
    const window = Math.floor((now - this.origin) / this.limit.interval)
    if (window !== this.window) {
      this.window = window
      this.count = 0
    }
    if (++this.count <= this.limit.max) return 'allow'
    if (this.lastLimitedWindow === window) return 'drop'
    this.streak = this.lastLimitedWindow === window - 1 ? this.streak + 1 : 1
    this.lastLimitedWindow = window
    return this.streak >= abusiveWindows ? 'abuse' : 'limit'
  }
}

/**
 * The rate limit's exemption for rejoining (the first `maxChannels` subscribe frames of
 * a connection do not count), so a client that reconnects holding many channels gets them all
 * back at once. Frames are judged before parsing: one that mentions `"subscribe"` at all uses
 * up one exemption, so a flood of anything else gains at most `maxChannels` frames over the
 * whole connection.
 */
export class RejoinAllowance {
  constructor (private left: number) {}

  /** true when `data` is exempt from the rate limit (and uses up one exemption) */
  take (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): boolean {
    if (this.left === 0 || isBinary || !Buffer.isBuffer(data) || data.indexOf('"subscribe"') === -1) return false
    this.left--
    return true
  }
}
