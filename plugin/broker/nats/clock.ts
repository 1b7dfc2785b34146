/**
 * The NATS server's clock as this node knows it. Deadlines on publications and sends are
 * written and checked on this one clock (not the nodes' own, which may disagree by any amount),
 * like history ages. A sample is a write whose storage time the server reports (the node's
 * registration, on every refresh): the server stored it at some moment between the write
 * leaving and its answer coming back, which bounds the offset between the two clocks from both
 * sides. The last few samples' bounds are intersected.
 *
 * The bounds make the deadline promise hold whatever the round trips were: a publisher writes
 * its deadline from the lowest server time it could be (`deadline`), a receiver compares it
 * with the highest (`latest`), so a message that arrives later than the budget after it was
 * made (on the server's real clock) is always dropped. Loose bounds (slow round trips) only
 * make it drop earlier.
 */
const keptSamples = 8

interface Sample {
  /** the offset (server − this node) is at least this */
  low: number
  /** and at most this */
  high: number
}

export class NatsClock {
  private samples: Sample[] = []
  private low = 0
  private high = 0

  /** `serverMs`: the server's time of a write that left at `sentAt` and was answered at `answeredAt` (this node's ms). */
  observe (serverMs: number, sentAt: number, answeredAt: number): void {
    if (!Number.isFinite(serverMs) || answeredAt < sentAt) return
    this.samples.push({ low: serverMs - answeredAt, high: serverMs - sentAt })
    if (this.samples.length > keptSamples) this.samples.shift()
    let low = -Infinity
    let high = Infinity
    for (const sample of this.samples) {
      low = Math.max(low, sample.low)
      high = Math.min(high, sample.high)
    }
    if (low > high) { // the samples disagree (a clock was set meanwhile): the latest one alone
      const latest = this.samples[this.samples.length - 1]
      this.samples = [latest]
      low = latest.low
      high = latest.high
    }
    this.low = low
    this.high = high
  }

  /** ms on the server's clock, the middle of what it may be (for ages) */
  now (): number {
    return Math.round(Date.now() + (this.low + this.high) / 2)
  }

  /** the latest the server's clock may show now (a receiver checking a deadline) */
  latest (): number {
    return Math.ceil(Date.now() + this.high)
  }

  /** `ms` after the earliest the server's clock may show now (a publisher writing a deadline) */
  deadline (ms: number): number {
    return Math.floor(Date.now() + this.low + ms)
  }
}
