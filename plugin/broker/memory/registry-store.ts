/**
 * The memory engine's node registry: the sessions of each node of one `memoryBroker()`. Nodes
 * live in this process and leave by closing, so nothing expires (no TTL), and a node is alive
 * while it is registered.
 */
import type { RegistryStore } from '../parts.js'
import type { MemoryBus } from './transport.js'

export class MemoryRegistry {
  /** nodeId → the sessions it holds */
  private readonly nodes = new Map<string, Set<string>>()

  constructor (private readonly bus: MemoryBus) {}

  /** The store of node `nodeId`. */
  forNode (nodeId: string): RegistryStore {
    const { nodes, bus } = this
    const own = (): Set<string> => {
      let sessions = nodes.get(nodeId)
      if (sessions === undefined) nodes.set(nodeId, sessions = new Set())
      return sessions
    }
    return {
      async register (sessions) { nodes.set(nodeId, new Set(sessions)) },
      async refresh () { return nodes.has(nodeId) },
      async add (sessionId) { own().add(sessionId) },
      async remove (sessionId) { nodes.get(nodeId)?.delete(sessionId) },
      async route (sessionId, envelope) {
        for (const [holder, sessions] of nodes) {
          if (holder !== nodeId && sessions.has(sessionId)) {
            bus.publish([{ kind: 'node', nodeId: holder }], envelope)
            return true
          }
        }
        return false
      },
      async alive (nodeIds) { return nodeIds.map((id) => nodes.has(id)) },
      async unregister () { nodes.delete(nodeId) }
    }
  }
}
