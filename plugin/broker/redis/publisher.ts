/**
 * Publications on their way to Redis, in batches: everything published in one turn of the
 * event loop (a burst of broadcasts, say) goes out as one script call (lua/publish-batch.lua)
 * that checks the deadline once and publishes each envelope in order. The deadline check needs a script (see
 * RedisClock), and a script call costs Redis far more than a PUBLISH; batching pays that once
 * per turn instead of once per message, and saves a command per message on this side too.
 *
 * Order is kept: batches leave in the order they were filled, on one connection, and `flush()`
 * sends what is waiting before any other command of the node (a `send`) overtakes it. On a
 * cluster a script call must stay in one slot, so a batch is split into one call per slot (a
 * publication to channels in several slots goes out in several calls); each slot's calls leave
 * in order on its shard's connection, so the order per channel holds.
 */
import type { RedisClock } from './clock.js'
import type { Link } from './link.js'
import type { PubSubMode } from './pubsub.js'
import { runScript } from './scripts.js'

/** A batch is cut at this many publications or this many payload bytes, whichever comes first. */
const maxBatchCount = 500
const maxBatchBytes = 1024 * 1024

interface Waiting {
  channels: string[]
  payload: string
  /** calls carrying a part of it that have not answered yet (one per slot on a cluster) */
  parts: number
  failed: boolean
  resolve: () => void
  reject: (err: unknown) => void
}

/** The channels of one publication that go in one call. */
interface Part {
  publication: Waiting
  channels: string[]
}

export class LateError extends Error {
  constructor () {
    super('redis got the publication after its deadline: not delivered')
  }
}

export class Publisher {
  private waiting: Waiting[] = []
  private scheduled = false

  /**
   * @param link a connection where the scripts are defined (`defineScripts`)
   * @param budget ms after a publication was made until which Redis may still publish it
   * @param onFailed told once per publication that did not reach Redis
   */
  constructor (
    private readonly link: Link,
    private readonly clock: RedisClock,
    private readonly budget: number,
    private readonly onFailed: () => void,
    private readonly pubsub: PubSubMode
  ) {}

  /** Publishes `payload` to each of `channels` (Redis channel names); settles when Redis answered. */
  publish (channels: string[], payload: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ channels, payload, parts: 0, failed: false, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        process.nextTick(() => this.flush())
      }
    })
  }

  /** Sends everything waiting, in order, in batches. */
  flush (): void {
    this.scheduled = false
    const waiting = this.waiting
    this.waiting = []
    let start = 0
    let bytes = 0
    for (let i = 0; i < waiting.length; i++) {
      bytes += waiting[i].payload.length
      if (i + 1 === waiting.length || i + 1 - start >= maxBatchCount || bytes + waiting[i + 1].payload.length > maxBatchBytes) {
        this.send(waiting.slice(start, i + 1))
        start = i + 1
        bytes = 0
      }
    }
  }

  private send (batch: Waiting[]): void {
    const parts: Part[] = []
    for (const publication of batch) {
      for (const channels of this.pubsub.bySlot(publication.channels, (channel) => channel)) {
        parts.push({ publication, channels })
        publication.parts++
      }
      if (publication.parts === 0) publication.resolve() // no channel: nothing to publish
    }
    for (const group of this.pubsub.bySlot(parts, (part) => part.channels[0])) this.call(group)
  }

  /** One script call: parts whose channels are all in one slot. */
  private call (group: Part[]): void {
    let bytes = 0
    const args: Array<string | number> = [this.clock.deadline(this.budget), this.pubsub.publishCommand]
    for (const { publication, channels } of group) {
      args.push(channels.length, publication.payload, ...channels)
      bytes += publication.payload.length
    }
    this.link.run((redis) => runScript(redis, 'publishBatch', [group[0].channels[0]], args), bytes).then((result) => {
      if (result === 'late') this.fail(group, new LateError())
      else for (const { publication } of group) this.settle(publication)
    }, (err: unknown) => this.fail(group, err))
  }

  private settle (publication: Waiting): void {
    if (--publication.parts === 0 && !publication.failed) publication.resolve()
  }

  /** A publication fails (and counts as dropped) once, however many of its parts failed. */
  private fail (group: Part[], err: unknown): void {
    for (const { publication } of group) {
      publication.parts--
      if (publication.failed) continue
      publication.failed = true
      this.onFailed()
      publication.reject(err)
    }
  }
}
