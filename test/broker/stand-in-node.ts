/**
 * A stand-in for the plugin's node, as the broker sees it (BrokerNode): it records what the
 * broker hands it (deliveries, history publications, presence changes) and its log lines, and
 * holds the sessions a test puts in `sessions`. Shared by the core's, the engines' and the
 * Redis broker's tests.
 */
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import type { Test } from 'tap'
import { composeBroker } from '../../plugin/broker/compose.js'
import type { BrokerEngine } from '../../plugin/broker/parts.js'
import type { BrokerConnection, BrokerNode, Delivery, HistoryPublication, PresenceBroker, PresenceChanges } from '../../plugin/broker/types.js'

export interface Line { level: number, msg: string }

export class StandInNode implements BrokerNode {
  readonly deliveries: Delivery[] = []
  readonly history: HistoryPublication[] = []
  readonly told: Array<[string, PresenceChanges]> = []
  readonly sessions = new Set<string>()
  readonly lines: Line[] = []
  readonly log = Fastify({ logger: { level: 'debug', stream: { write: (line: string) => { this.lines.push(JSON.parse(line) as Line) } } } }).log

  constructor (readonly nodeId = randomBytes(9).toString('base64url')) {}

  deliver (delivery: Delivery): void {
    this.deliveries.push(delivery)
  }

  deliverHistory (publication: HistoryPublication): void {
    this.history.push(publication)
  }

  hasSession (sessionId: string): boolean {
    return this.sessions.has(sessionId)
  }

  presenceChanged (channel: string, changes: PresenceChanges): void {
    this.told.push([channel, changes])
  }
}

/** A stand-in node connected through `engine` (which must share presence), its connection closed at teardown. */
export async function standIn (t: Test, engine: BrokerEngine): Promise<{ node: StandInNode, link: BrokerConnection & PresenceBroker }> {
  const node = new StandInNode()
  const link = await composeBroker(engine).connect(node) as BrokerConnection & PresenceBroker
  t.teardown(() => link.close())
  return { node, link }
}
