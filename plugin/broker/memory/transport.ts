/**
 * The memory engine's transport: topics inside one process, shared by the nodes (Fastify apps)
 * of one `memoryBroker()`. An envelope reaches each subscribed node once, on a later microtask,
 * as it would through a real engine: a publisher's local delivery always completes first, and
 * microtasks run in the order they were queued, so every node sees one order.
 */
import type { EngineNode, Topic, Transport } from '../parts.js'

/** A topic's key: channel names and node ids have no white space, so no two topics share one. */
function keyOf (topic: Topic): string {
  switch (topic.kind) {
    case 'all': return 'all'
    case 'node': return `node ${topic.nodeId}`
    case 'channel': return `channel ${topic.channel}`
  }
}

export class MemoryBus {
  /** topic key → the nodes subscribed to it */
  private readonly topics = new Map<string, Set<EngineNode>>()

  /**
   * Hands `envelope` to every node subscribed to any of `topics`, once each; `from` (the
   * publisher, for publications that never come back to it) is left out.
   */
  publish (topics: readonly Topic[], envelope: string, from?: EngineNode): void {
    const recipients = topics.length === 1 ? this.topics.get(keyOf(topics[0])) : this.subscribersOf(topics)
    if (recipients === undefined) return
    for (const node of recipients) {
      if (node !== from) queueMicrotask(() => node.receive(envelope))
    }
  }

  private subscribersOf (topics: readonly Topic[]): Set<EngineNode> {
    const all = new Set<EngineNode>()
    for (const topic of topics) for (const node of this.topics.get(keyOf(topic)) ?? []) all.add(node)
    return all
  }

  /** `node`'s transport: its publications never come back to it. */
  transport (node: EngineNode): Transport {
    return {
      publish: async (topics, envelope) => this.publish(topics, envelope, node),
      subscribe: async (topics) => {
        for (const topic of topics) {
          const key = keyOf(topic)
          let nodes = this.topics.get(key)
          if (nodes === undefined) this.topics.set(key, nodes = new Set())
          nodes.add(node)
        }
      },
      unsubscribe: async (topics) => {
        for (const topic of topics) this.leave(keyOf(topic), node)
      }
    }
  }

  /** `node` closed: it leaves every topic. */
  remove (node: EngineNode): void {
    for (const key of [...this.topics.keys()]) this.leave(key, node)
  }

  private leave (key: string, node: EngineNode): void {
    const nodes = this.topics.get(key)
    if (nodes === undefined) return
    nodes.delete(node)
    if (nodes.size === 0) this.topics.delete(key)
  }
}
