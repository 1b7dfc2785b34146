/**
 * Where keys live on a Redis Cluster, by Redis' own answers (CLUSTER KEYSLOT, CLUSTER SLOTS),
 * for the tests that check that every key of a channel lies in its channel's slot and that
 * their channels spread over the shards.
 */
import type { Redis } from 'ioredis'
import type { Target } from '../redis/targets.js'

/** Every key under `prefix` (per-channel names and node-wide `{prefix}` ones) on every master. */
export async function keysUnder (target: Target, prefix: string): Promise<string[]> {
  const keys: string[] = []
  for (const master of await target.masters()) keys.push(...await master.keys(`${prefix}:*`), ...await master.keys(`{${prefix}}:*`))
  return keys.sort()
}

export async function slotOf (admin: Redis, name: string): Promise<number> {
  return await admin.cluster('KEYSLOT', name) as number
}

/** The port of the master that owns `name`'s slot. */
export async function shardOf (admin: Redis, name: string): Promise<number> {
  const slot = await slotOf(admin, name)
  const range = (await admin.cluster('SLOTS')).find(([first, last]) => slot >= first && slot <= last)
  if (range?.[2] === undefined) throw new Error(`no shard owns slot ${slot}`)
  return range[2][1]
}

/** The master holding `key` (the one Redis, or the shard's master on a cluster). */
export async function masterOf (target: Target, key: string): Promise<Redis> {
  for (const master of await target.masters()) if (await master.exists(key) === 1) return master
  throw new Error(`no master holds ${key}`)
}
