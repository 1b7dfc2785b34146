/**
 * Whether this node reaches Redis, as the operator sees it in the logs: one warn line when an
 * outage begins and one info line when it ends, whatever caused it (an error, a closed
 * connection, a Redis that stopped answering, a failed refresh), and how many publications
 * and sends could not be handed over meanwhile.
 *
 *   up ──lost()──▶ down ──back()──▶ up
 *
 * `back()` is called only after the node has resubscribed and re-registered everything, so
 * "back" means cross-node delivery works again.
 */
import type { FastifyBaseLogger } from 'fastify'
import { events } from '../../observability/events.js'

export class Health {
  private state: 'up' | 'down' = 'up'
  private downSince = 0
  /** publications and sends that failed since the last line that reported them */
  private dropped = 0

  constructor (private readonly log: FastifyBaseLogger, private readonly nodeId = '') {}

  get up (): boolean {
    return this.state === 'up'
  }

  lost (err: unknown): void {
    if (this.state === 'down') {
      this.log.debug({ err }, 'channels: redis still unreachable')
      return
    }
    this.state = 'down'
    this.downSince = Date.now()
    this.log.warn({ err }, 'channels: redis unreachable; delivering to local sockets only until it is back')
    if (events.brokerDown.hasSubscribers) events.brokerDown.publish({ nodeId: this.nodeId, engine: 'redis', error: err })
  }

  back (details: { channels: number, sessions: number }): void {
    if (this.state === 'up') return
    this.state = 'up'
    const dropped = this.takeDropped()
    if (events.brokerUp.hasSubscribers) events.brokerUp.publish({ nodeId: this.nodeId, engine: 'redis', outageMs: Date.now() - this.downSince, dropped })
    this.log.info({ ...details, outageMs: Date.now() - this.downSince, dropped },
      'channels: redis is back; channels resubscribed and sessions registered again')
  }

  /** One publication or send that did not reach Redis (refused, timed out, or too late). */
  drop (): void {
    this.dropped++
  }

  /**
   * Called on every tick: drops while Redis is up (a backlog that filled without an outage)
   * are reported in one warn line per tick, not one per message. During an outage they wait
   * for the "back" line.
   */
  reportDrops (): void {
    if (this.state === 'up' && this.dropped > 0) {
      const dropped = this.takeDropped()
      this.log.warn({ dropped }, 'channels: publications to redis dropped (redis too slow to take them); delivered locally only')
    }
  }

  private takeDropped (): number {
    const dropped = this.dropped
    this.dropped = 0
    return dropped
  }
}
