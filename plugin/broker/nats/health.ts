/**
 * Whether this node reaches NATS, as the operator sees it in the logs: one warn line when an
 * outage begins and one info line when it ends (after the node subscribed and registered
 * everything again), whatever caused it, with how many publications and sends could not be
 * handed over meanwhile; and, once per tick, how many messages arrived after their deadline
 * and were dropped.
 */
import type { FastifyBaseLogger } from 'fastify'
import { events } from '../../observability/events.js'

/** How the `broker-down`/`broker-up` events name the part that went away: NATS is one shard. */
const shard = 'nats'

export class NatsHealth {
  private state: 'up' | 'down' = 'up'
  private downSince = 0
  private dropped = 0
  private late = 0

  constructor (private readonly log: FastifyBaseLogger, private readonly nodeId = '') {}

  get up (): boolean {
    return this.state === 'up'
  }

  /** Resolves `true` when this begins an outage. */
  lost (err: unknown): boolean {
    if (this.state === 'down') {
      this.log.debug({ err }, 'channels: nats still unreachable')
      return false
    }
    this.state = 'down'
    this.downSince = Date.now()
    this.log.warn({ err }, 'channels: nats unreachable; delivering to local sockets only until it is back')
    if (events.brokerDown.hasSubscribers) events.brokerDown.publish({ nodeId: this.nodeId, engine: 'nats', shard, outages: 1, error: err })
    return true
  }

  back (details: { channels: number, sessions: number }): void {
    if (this.state === 'up') return
    this.state = 'up'
    const dropped = this.dropped
    this.dropped = 0
    const outageMs = Date.now() - this.downSince
    this.log.info({ ...details, outageMs, dropped }, 'channels: nats is back; channels resubscribed and sessions registered again')
    if (events.brokerUp.hasSubscribers) events.brokerUp.publish({ nodeId: this.nodeId, engine: 'nats', shard, outages: 0, outageMs, dropped })
  }

  /** One publication or send that did not reach NATS (refused, or not answered in time). */
  drop (): void {
    this.dropped++
  }

  /** One message that arrived after its deadline (its publisher reported it failed, or was about to). */
  dropLate (): void {
    this.late++
  }

  /** Once per tick: drops while NATS is up, and late arrivals, in one line each. */
  report (): void {
    if (this.state === 'up' && this.dropped > 0) {
      this.log.warn({ dropped: this.dropped }, 'channels: publications to nats dropped (nats too slow to take them); delivered locally only')
      this.dropped = 0
    }
    if (this.late > 0) {
      this.log.warn({ late: this.late }, 'channels: messages from nats dropped: they arrived after their deadline')
      this.late = 0
    }
  }
}
