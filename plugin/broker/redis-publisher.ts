/**
 * Publications on their way to Redis, in batches: everything published in one turn of the
 * event loop (a burst of broadcasts, say) goes out as one script call that checks the deadline
 * once and publishes each envelope in order. The deadline check needs a script (see
 * RedisClock), and a script call costs Redis far more than a PUBLISH; batching pays that once
 * per turn instead of once per message, and saves a command per message on this side too.
 *
 * Order is kept: batches leave in the order they were filled, on one connection, and `flush()`
 * sends what is waiting before any other command of the node (a `send`) overtakes it.
 */
import { lateCheck, type RedisClock } from './redis-clock.js'
import type { Link } from './redis-link.js'

/** A batch is cut at this many publications or this many payload bytes, whichever comes first. */
const maxBatchCount = 500
const maxBatchBytes = 1024 * 1024

/** ARGV: deadline, then per publication: channel count, payload, channels…; -2 when too late (nothing published). */
const publishBatch = `${lateCheck('ARGV[1]')}
local i = 2
while i <= #ARGV do
  local count, payload = tonumber(ARGV[i]), ARGV[i + 1]
  for j = i + 2, i + 1 + count do redis.call('PUBLISH', ARGV[j], payload) end
  i = i + 2 + count
end
return 1
`

interface WithPublishBatch {
  channelsPublishBatch (...args: Array<string | number>): Promise<number>
}

interface Waiting {
  channels: string[]
  payload: string
  resolve: () => void
  reject: (err: unknown) => void
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
   * @param budget ms after a publication was made until which Redis may still publish it
   * @param onFailed told once per publication that did not reach Redis
   */
  constructor (
    private readonly link: Link,
    private readonly clock: RedisClock,
    private readonly budget: number,
    private readonly onFailed: () => void
  ) {
    link.client.defineCommand('channelsPublishBatch', { numberOfKeys: 0, lua: publishBatch })
  }

  /** Publishes `payload` to each of `channels` (Redis channel names); settles when Redis answered. */
  publish (channels: string[], payload: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ channels, payload, resolve, reject })
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
        this.send(waiting.slice(start, i + 1), bytes)
        start = i + 1
        bytes = 0
      }
    }
  }

  private send (batch: Waiting[], bytes: number): void {
    const args: Array<string | number> = [this.clock.deadline(this.budget)]
    for (const { channels, payload } of batch) args.push(channels.length, payload, ...channels)
    this.link.run((redis) => (redis as unknown as WithPublishBatch).channelsPublishBatch(...args), bytes).then((result) => {
      if (result === -2) this.fail(batch, new LateError())
      else for (const { resolve } of batch) resolve()
    }, (err: unknown) => this.fail(batch, err))
  }

  private fail (batch: Waiting[], err: unknown): void {
    for (const { reject } of batch) {
      this.onFailed()
      reject(err)
    }
  }
}
