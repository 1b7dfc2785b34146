/**
 * This node's view of Redis' clock, for publication deadlines that Redis itself enforces.
 *
 * A publication or send that the node has reported failed must not be delivered later, even if
 * Redis wakes up and runs it (it may still sit in a socket buffer). So each one carries the
 * Redis time after which Redis must refuse it, and the script that publishes checks Redis' own
 * TIME first (lua/publish-batch.lua, lua/route-session.lua). Only one clock decides (Redis'), so clock skew between nodes does not matter, and
 * a receiving node that was itself frozen still gets what was published in time.
 *
 * The offset is measured from TIME answers (every registry refresh) and kept as a lower bound:
 * Redis answered somewhere between sending and receiving, so `redis − received` never
 * overestimates. Deadlines are therefore never later than meant, only earlier by up to one
 * round trip.
 */
import { performance } from 'node:perf_hooks'

export type RedisTime = [seconds: string, microseconds: string]

export class RedisClock {
  /** Redis ms minus local monotonic ms (a lower bound), once measured */
  private offset: number | undefined

  private now (): number {
    return performance.now()
  }

  /** Records a TIME answer; call it as soon as the answer is in (any delay only lowers the bound). */
  observe (time: RedisTime): void {
    const redisMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
    if (Number.isFinite(redisMs)) this.offset = redisMs - this.now()
  }

  /**
   * The Redis time (ms) until which a command sent now may run: `budget` ms from now, on
   * Redis' clock. Before the first measurement, no deadline (0: the scripts skip the check).
   */
  deadline (budget: number): number {
    if (this.offset === undefined) return 0
    return Math.floor(this.now() + this.offset + budget)
  }
}
