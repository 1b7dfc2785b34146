/**
 * Where keys live on a Redis Cluster, by Redis' own answers (CLUSTER KEYSLOT, CLUSTER SLOTS),
 * for the history and presence tests that check that every key of a channel lies in its
 * channel's slot and that their channels spread over the shards.
 */
import type { Cluster, Redis } from 'ioredis'
import type { Target } from '../redis/targets.js'

/** Every key under `prefix` (per-channel names and node-wide `{prefix}` ones) on every master, sorted. */
export async function keysUnder (target: Target, prefix: string): Promise<string[]> {
  return [...await target.keys(`${prefix}:*`), ...await target.keys(`{${prefix}}:*`)].sort()
}

export async function slotOf (admin: Redis | Cluster, name: string): Promise<number> {
  return await admin.cluster('KEYSLOT', name) as number
}

/** The port of the master that owns `name`'s slot. */
export async function shardOf (admin: Redis | Cluster, name: string): Promise<number> {
  const slot = await slotOf(admin, name)
  const range = (await admin.cluster('SLOTS')).find(([first, last]) => slot >= first && slot <= last)
  if (range?.[2] === undefined) throw new Error(`no shard owns slot ${slot}`)
  return range[2][1]
}
