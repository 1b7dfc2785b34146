/**
 * Presence for the in-process memory broker: one store shared by the nodes (Fastify apps) of
 * one `memoryBroker()`. Each track remembers its node, so a node that closes takes its tracks
 * with it and the others get the leaves. Changes reach other nodes on a later microtask, as
 * they would through a real engine.
 */
import type { BrokerNode, PresenceChanges, PresenceTrack } from '../types.js'

interface Owned extends PresenceTrack {
  node: BrokerNode
}

export class MemoryPresence {
  /** channel → ref → track */
  private readonly channels = new Map<string, Map<string, Owned>>()

  constructor (private readonly nodes: ReadonlySet<BrokerNode>) {}

  update (from: BrokerNode, channel: string, { joins, leaves }: PresenceChanges): void {
    let tracks = this.channels.get(channel)
    for (const ref of leaves) tracks?.delete(ref)
    if (joins.length > 0 && tracks === undefined) this.channels.set(channel, tracks = new Map())
    for (const track of joins) tracks?.set(track.ref, { ...track, node: from })
    if (tracks?.size === 0) this.channels.delete(channel)
    this.relay(from, channel, { joins, leaves })
  }

  state (channel: string): PresenceTrack[] {
    const tracks = this.channels.get(channel)
    return tracks === undefined ? [] : [...tracks.values()].map(({ ref, key, meta }) => ({ ref, key, meta }))
  }

  /** A node left the broker: its tracks leave everywhere. */
  removeNode (node: BrokerNode): void {
    for (const [channel, tracks] of [...this.channels]) {
      const leaves: string[] = []
      for (const [ref, track] of tracks) if (track.node === node) leaves.push(ref)
      if (leaves.length > 0) this.update(node, channel, { joins: [], leaves })
    }
  }

  private relay (from: BrokerNode, channel: string, changes: PresenceChanges): void {
    for (const node of this.nodes) {
      if (node !== from) queueMicrotask(() => node.presenceChanged?.(channel, changes))
    }
  }
}
