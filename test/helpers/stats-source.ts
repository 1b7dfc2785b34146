/**
 * A source for a stats keeper (plugin/node/stats.ts) with no node behind it: fixed figures
 * (2 sockets, 1 channel, 3 subscriptions, 2 subscribers a channel, not closing), publishing
 * nowhere and holding no session; a test replaces whichever members it watches.
 */
import type { StatsSource } from '../../plugin/node/stats.js'

export function fixedStatsSource (nodeId: string, parts: Partial<Omit<StatsSource, 'nodeId'>> = {}): StatsSource {
  return {
    nodeId,
    sockets: () => 2,
    channels: () => 1,
    subscriptions: () => 3,
    closing: () => false,
    subscribers: () => 2,
    publish: async () => {},
    closeSession: () => false,
    ...parts
  }
}
