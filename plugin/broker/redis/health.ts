/**
 * Whether this node reaches Redis, as the operator sees it in the logs: one warn line when an
 * outage of a shard begins and one info line when it ends, whatever caused it (an error, a
 * closed connection, a Redis that stopped answering, a failed refresh), and how many
 * publications and sends could not be handed over meanwhile.
 *
 * A shard is what goes down on its own: the one Redis (named by its address), or on a Redis
 * Cluster one master with the slots it serves (`127.0.0.1:7001 (slots 5461-10922)`). Each
 * shard has its own outage:
 *
 *   up ──lost(shard)──▶ down ──back(shard)──▶ up
 *
 * `begin()` and `end()` are the two transitions, each written in one place. `back()` is called
 * only after the shard answers again and the node has resubscribed and re-registered
 * everything, so "back" means cross-node delivery works again.
 */
import type { FastifyBaseLogger } from 'fastify'
import { events } from '../../observability/events.js'

/** One Redis, or one master of a cluster with its slot ranges (empty on one Redis). */
export interface Shard {
  address: string
  ranges: ReadonlyArray<readonly [number, number]>
}

/** How a shard is named in the log: its address, and on a cluster its slot ranges. */
export function shardName (shard: Shard): string {
  if (shard.ranges.length === 0) return shard.address
  return `${shard.address} (slots ${shard.ranges.map(([from, to]) => from === to ? `${from}` : `${from}-${to}`).join(', ')})`
}

function overlaps (a: Shard, b: Shard): boolean {
  return a.ranges.some(([from, to]) => b.ranges.some(([otherFrom, otherTo]) => otherFrom <= to && otherTo >= from))
}

export interface Outage {
  readonly shard: Shard
  readonly name: string
  readonly since: number
}

export class Health {
  /** the shards down now, by address */
  private readonly outages = new Map<string, Outage>()
  /** a connection had trouble that no shard outage accounts for: the node restores silently */
  private shakenSince: number | undefined
  /** publications and sends that failed since the last line that reported them */
  private dropped = 0

  constructor (private readonly log: FastifyBaseLogger, private readonly nodeId = '') {}

  /** No shard is down. */
  get up (): boolean {
    return this.outages.size === 0
  }

  /** Whether the node must subscribe and register everything again (a shard down, or a connection shaken). */
  get needsRestore (): boolean {
    return this.outages.size > 0 || this.shakenSince !== undefined
  }

  /** The outages going on, oldest first. */
  get down (): Outage[] {
    return [...this.outages.values()]
  }

  /**
   * `shard` does not answer (or lost what the node had on it): begins its outage, once. A shard
   * is the same while its address or any of its slots is (a replica promoted in its place
   * takes over the outage of its old master).
   */
  lost (shard: Shard, err: unknown): void {
    const outage = this.outages.get(shard.address) ?? this.down.find((outage) => overlaps(outage.shard, shard))
    if (outage !== undefined) {
      this.log.debug({ err, shard: outage.name }, 'channels: redis still unreachable')
      return
    }
    this.begin(shard, err)
  }

  /**
   * Something failed on a connection but no shard is known to be down (yet): a debug line, and
   * the node restores what it had on Redis at the next chance without an outage line.
   */
  shaken (err: unknown): void {
    this.shakenSince ??= Date.now()
    this.log.debug({ err }, 'channels: redis call failed')
  }

  /**
   * The node restored everything after `shards` (addresses, or every outage) answered again:
   * ends their outages.
   */
  back (shards: Iterable<string> | 'all', details: { channels: number, sessions: number }): void {
    const addresses = shards === 'all' ? [...this.outages.keys()] : shards
    for (const address of addresses) {
      const outage = this.outages.get(address)
      if (outage !== undefined) this.end(outage, details)
    }
    if (this.outages.size === 0) this.shakenSince = undefined
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
    if (this.up && this.dropped > 0) {
      const dropped = this.takeDropped()
      this.log.warn({ dropped }, 'channels: publications to redis dropped (redis too slow to take them); delivered locally only')
    }
  }

  /** The transition up → down of one shard. */
  private begin (shard: Shard, err: unknown): void {
    const outage: Outage = { shard, name: shardName(shard), since: Date.now() }
    this.outages.set(shard.address, outage)
    this.log.warn({ err, shard: outage.name }, 'channels: redis unreachable; delivering to local sockets only until it is back')
    if (events.brokerDown.hasSubscribers) {
      events.brokerDown.publish({ nodeId: this.nodeId, engine: 'redis', shard: outage.name, outages: this.outages.size, error: err })
    }
  }

  /** The transition down → up of one shard. */
  private end (outage: Outage, details: { channels: number, sessions: number }): void {
    this.outages.delete(outage.shard.address)
    const outageMs = Date.now() - outage.since
    const dropped = this.takeDropped()
    this.log.info({ ...details, shard: outage.name, outageMs, dropped },
      'channels: redis is back; channels resubscribed and sessions registered again')
    if (events.brokerUp.hasSubscribers) {
      events.brokerUp.publish({ nodeId: this.nodeId, engine: 'redis', shard: outage.name, outages: this.outages.size, outageMs, dropped })
    }
  }

  private takeDropped (): number {
    const dropped = this.dropped
    this.dropped = 0
    return dropped
  }
}
