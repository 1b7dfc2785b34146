/**
 * The default, in-process broker. One instance per Fastify app is a single node with nothing
 * to publish to. One instance passed to several apps in the same process joins them as nodes
 * of one server, which is how the broker contract is tested without Redis.
 */
import { MemoryHistory } from './history-store.js'
import { MemoryPresence } from './presence-store.js'
import type { Broker, BrokerConnection, BrokerNode, HistoryLimits, PresenceBroker, Publication } from '../types.js'

/** The longest pause between two sweeps of expired history entries. */
const maxSweepInterval = 60_000

export function memoryBroker (): Broker {
  const nodes = new Set<BrokerNode>()
  const presence = new MemoryPresence(nodes)
  // History channels only: one store shared by the nodes, created on first use.
  let history: MemoryHistory | undefined
  let sweeper: NodeJS.Timeout | undefined

  function historyFor (limits: HistoryLimits): MemoryHistory {
    const store = history ??= new MemoryHistory()
    if (sweeper === undefined) {
      sweeper = setInterval(() => store.sweep(limits.ttl), Math.min(limits.ttl, maxSweepInterval))
      sweeper.unref()
    }
    return store
  }

  // Hand-offs run on a later microtask, as they would through a real engine, so a
  // publisher's local delivery always completes before any other node sees the message.
  function toOthers (from: BrokerNode, publication: Publication): void {
    for (const node of nodes) {
      if (node !== from) queueMicrotask(() => node.deliver(publication))
    }
  }

  return {
    async connect (node: BrokerNode): Promise<BrokerConnection & PresenceBroker> {
      nodes.add(node)
      return {
        async publish (publication) { toOthers(node, publication) },
        async subscribe () {},
        async unsubscribe () {},
        async addSession () {},
        async removeSession () {},
        async sendToSession (sessionId, frame) {
          for (const other of nodes) {
            if (other !== node && other.hasSession(sessionId)) {
              queueMicrotask(() => other.deliver({ kind: 'session', sessionId, frame }))
              return true
            }
          }
          return false
        },
        // A history publication reaches every node, this one included, in the same turn: every
        // node delivers the channel's offsets in one order.
        async publishHistory (channel, frame, except, limits) {
          const entry = historyFor(limits).append(channel, frame, except, limits)
          const publication = { channel, ...entry }
          for (const each of [...nodes]) each.deliverHistory?.(publication)
          return entry.offset
        },
        async readHistory (channel, query, limits) {
          return historyFor(limits).read(channel, query, limits)
        },
        async presenceUpdate (channel, changes) { presence.update(node, channel, changes) },
        async presenceState (channel) { return presence.state(channel) },
        async close () {
          presence.removeNode(node)
          nodes.delete(node)
          if (nodes.size === 0) {
            clearInterval(sweeper)
            sweeper = undefined
          }
        }
      }
    }
  }
}
