/**
 * The NATS server's clock as this node estimates it. Deadlines on publications and sends are
 * written and checked on this one clock (not the nodes' own, which may disagree by any amount),
 * like history ages. A sample is a write whose storage time the server reports (the node's
 * registration, on every refresh): the server stored it between the moment the write left and
 * the moment its answer came back, so the estimate is off by at most half that round trip. The
 * sample with the shortest round trip of the last few wins.
 */
const keptSamples = 8

interface Sample {
  offset: number
  roundTrip: number
}

export class NatsClock {
  private samples: Sample[] = []
  private offset = 0

  /** `serverMs`: the server's time of a write that left at `sentAt` and was answered at `answeredAt` (this node's ms). */
  observe (serverMs: number, sentAt: number, answeredAt: number): void {
    if (!Number.isFinite(serverMs) || answeredAt < sentAt) return
    this.samples.push({ offset: serverMs - (sentAt + answeredAt) / 2, roundTrip: answeredAt - sentAt })
    if (this.samples.length > keptSamples) this.samples.shift()
    let best = this.samples[0]
    for (const sample of this.samples) if (sample.roundTrip < best.roundTrip) best = sample
    this.offset = best.offset
  }

  /** ms on the server's clock */
  now (): number {
    return Math.round(Date.now() + this.offset)
  }

  /** the server time `ms` from now */
  deadline (ms: number): number {
    return this.now() + ms
  }
}
