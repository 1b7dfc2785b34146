/**
 * The memory engine's presence store: one set of tracks shared by the nodes (Fastify apps) of
 * one `memoryBroker()`. Each track remembers its node, so a node's tracks can be reaped; a
 * change's envelope goes out on the channel's topic in the same synchronous step, so the
 * tracks and the diffs every node sees agree.
 */
import type { EngineNode, PresenceStore, PresenceWrite } from '../parts.js'
import type { PresenceTrack } from '../types.js'
import type { MemoryBus } from './transport.js'

interface Owned {
  key: string
  meta: string
  nodeId: string
}

export class MemoryPresence {
  /** channel → ref → track */
  private readonly channels = new Map<string, Map<string, Owned>>()
  /** nodeId → the channels it has (or had) tracks in */
  private readonly nodes = new Map<string, Set<string>>()

  constructor (private readonly bus: MemoryBus) {}

  /** The store of `node`. */
  forNode (node: EngineNode): PresenceStore {
    return {
      write: async (change) => this.write(node, change),
      list: async (channel) => this.list(channel),
      nodes: async () => [...this.nodes.keys()],
      reap: async (nodeId, leavesHead) => this.reap(nodeId, leavesHead)
    }
  }

  private write (node: EngineNode, { channels, forget, unregister = false }: PresenceWrite): void {
    const { nodeId } = node
    for (const [channel, { joins, leaves, envelope }] of channels) {
      let tracks = this.channels.get(channel)
      for (const ref of leaves) tracks?.delete(ref)
      if (joins.length > 0) {
        if (tracks === undefined) this.channels.set(channel, tracks = new Map())
        for (const { ref, key, meta } of joins) tracks.set(ref, { key, meta, nodeId })
        this.registered(nodeId).add(channel)
      }
      if (tracks?.size === 0) this.channels.delete(channel)
      this.bus.publish([{ kind: 'channel', channel }], envelope, node)
    }
    for (const channel of forget) this.nodes.get(nodeId)?.delete(channel)
    if (unregister) this.nodes.delete(nodeId)
  }

  private registered (nodeId: string): Set<string> {
    let channels = this.nodes.get(nodeId)
    if (channels === undefined) this.nodes.set(nodeId, channels = new Set())
    return channels
  }

  private list (channel: string): PresenceTrack[] {
    const tracks = this.channels.get(channel)
    return tracks === undefined ? [] : [...tracks].map(([ref, { key, meta }]) => ({ ref, key, meta }))
  }

  private reap (nodeId: string, leavesHead: (channel: string) => string): number {
    let removed = 0
    for (const channel of this.nodes.get(nodeId) ?? []) {
      const tracks = this.channels.get(channel)
      const refs: string[] = []
      for (const [ref, track] of tracks ?? []) if (track.nodeId === nodeId) refs.push(ref)
      if (refs.length === 0) continue
      for (const ref of refs) tracks?.delete(ref)
      if (tracks?.size === 0) this.channels.delete(channel)
      removed += refs.length
      this.bus.publish([{ kind: 'channel', channel }], leavesHead(channel) + refs.join('\n'))
    }
    this.nodes.delete(nodeId)
    return removed
  }
}
