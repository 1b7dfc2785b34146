/**
 * The default, in-process broker. One instance per Fastify app is a single node with nothing
 * to publish to. One instance passed to several apps in the same process joins them as nodes
 * of one server, which is how the broker contract is tested without Redis.
 */
import { MemoryPresence } from './memory-presence.js'
import type { Broker, BrokerConnection, BrokerNode, PresenceBroker, Publication } from './types.js'

export function memoryBroker (): Broker {
  const nodes = new Set<BrokerNode>()
  const presence = new MemoryPresence(nodes)

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
        async presenceUpdate (channel, changes) { presence.update(node, channel, changes) },
        async presenceState (channel) { return presence.state(channel) },
        async close () {
          presence.removeNode(node)
          nodes.delete(node)
        }
      }
    }
  }
}
