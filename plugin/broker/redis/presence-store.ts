/**
 * What Redis holds of presence, and how it is written so that it works on one Redis and on
 * Redis Cluster alike (names in RedisKeys):
 *
 *   <prefix>:presence:{<channel>}      a hash: ref → "<nodeId>\n<key as JSON>\n<meta as JSON>"
 *                                      (the channel's slot, shared with its pub/sub channel)
 *   {<prefix>}:presence-node:<nodeId>  the channels a node has (or had) tracks in
 *   {<prefix>}:presence-nodes          the nodes that have tracks          (both: the node-wide slot)
 *
 * A change is written in three steps: (1) register the channels that get tracks, (2) per
 * channel, its hash and the envelope on its pub/sub channel in one MULTI, (3) forget the
 * channels left without tracks. On one Redis the three go in one MULTI. On a cluster a MULTI
 * may only touch one slot, so each step is its own MULTI (one per channel in step 2, run side
 * by side) and the next waits for it: the order is what makes a crash between them harmless.
 * The reaper finds a dead node's tracks through its registry only, so a track is never in a
 * hash while its channel is missing from the registry: registered before it is written,
 * forgotten after it is removed. A crash leaves at most a registered channel without tracks,
 * which the reaper passes over (it removes nothing there) before deleting the registry.
 * Each channel's change and its envelope stay atomic: every node sees the hash and the diff agree.
 *
 * Dead nodes are reaped channel by channel, with a script that deletes their tracks from the
 * hash and publishes the leaves in one atomic step (so two nodes reaping at once send each
 * leave once); its one key, the hash, routes it to the channel's slot.
 */
import type { Redis } from 'ioredis'
import type { RedisKeys } from './keys.js'
import type { Link } from './link.js'
import type { PubSubMode } from './pubsub.js'
import { encodePresenceEnvelope } from './presence-envelope.js'
import { execAll } from './sessions.js'
import type { BrokerNode, PresenceChanges, PresenceTrack } from '../types.js'

/** KEYS[1] the channel's hash; ARGV node id, pub/sub channel, app channel, publish command. Returns the tracks removed. */
const reapChannel = `
local node, pubsub, channel = ARGV[1], ARGV[2], ARGV[3]
local owner = node .. '\\n'
local all = redis.call('HGETALL', KEYS[1])
local refs = {}
for i = 1, #all, 2 do
  if string.sub(all[i + 1], 1, #owner) == owner then refs[#refs + 1] = all[i] end
end
if #refs == 0 then return 0 end
for i = 1, #refs, 500 do redis.call('HDEL', KEYS[1], unpack(refs, i, math.min(i + 499, #refs))) end
redis.call(ARGV[4], pubsub, 'p\\n' .. node .. '\\n' .. channel .. '\\n' .. #refs .. '\\n' .. table.concat(refs, '\\n'))
return #refs
`

interface WithReap {
  channelsReapPresence (hash: string, node: string, pubsub: string, channel: string, command: string): Promise<number>
}

type Multi = ReturnType<Redis['multi']>
/** commands for one MULTI: all in one slot */
type SlotWrite = (multi: Multi) => void

/** fields per HSET/HDEL (members per SADD/SREM), so one command never carries an unbounded argument list */
const chunkSize = 500

function chunks<T> (items: T[]): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += chunkSize) out.push(items.slice(i, i + chunkSize))
  return out
}

/** A hash value back to its track; `undefined` when it is not one this version wrote. */
function parseStored (ref: string, value: string): PresenceTrack | undefined {
  const first = value.indexOf('\n')
  const second = value.indexOf('\n', first + 1)
  if (first === -1 || second === -1) return undefined
  try {
    return { ref, key: JSON.parse(value.slice(first + 1, second)) as string, meta: value.slice(second + 1) }
  } catch {
    return undefined
  }
}

/** One change of this node's tracks. */
export interface PresenceWrite {
  /** per channel, the tracks to write and to remove */
  channels: Map<string, PresenceChanges>
  /** channels where this node has no track any more */
  forget: string[]
  /** take this node off the registry altogether (a clean stop) */
  unregister?: boolean
}

/** What presence needs of the connection. */
export interface PresenceStoreSettings {
  keys: RedisKeys
  /** classic pub/sub on one Redis, sharded on a cluster (then a MULTI or script stays in one slot) */
  pubsub: PubSubMode
}

export class PresenceStore {
  private readonly names: RedisKeys
  private readonly pubsub: PubSubMode

  /** every call goes through the publisher's link */
  constructor (private readonly pub: Link, private readonly node: BrokerNode, settings: PresenceStoreSettings) {
    this.names = settings.keys
    this.pubsub = settings.pubsub
    pub.client.defineCommand('channelsReapPresence', { numberOfKeys: 1, lua: reapChannel })
  }

  /** Writes a change in the steps described above: one MULTI on one Redis, one per slot and step on a cluster. */
  async write (change: PresenceWrite): Promise<void> {
    const steps = this.plan(change).filter((step) => step.length > 0)
    if (!this.pubsub.sharded) {
      await this.transaction((multi) => { for (const step of steps) for (const write of step) write(multi) })
      return
    }
    for (const step of steps) await Promise.all(step.map(async (write) => await this.transaction(write)))
  }

  private plan ({ channels, forget, unregister = false }: PresenceWrite): [register: SlotWrite[], hashes: SlotWrite[], forget: SlotWrite[]] {
    const { nodeId } = this.node
    const own = this.names.presenceNode(nodeId)
    const joined = [...channels].filter(([, changes]) => changes.joins.length > 0).map(([channel]) => channel)
    const register: SlotWrite[] = joined.length === 0
      ? []
      : [(multi) => {
          for (const chunk of chunks(joined)) multi.sadd(own, ...chunk)
          multi.sadd(this.names.presenceNodes, nodeId)
        }]
    const hashes = [...channels].map(([channel, changes]): SlotWrite => (multi) => this.writeChannel(multi, channel, changes))
    const last: SlotWrite[] = forget.length === 0 && !unregister
      ? []
      : [(multi) => {
          for (const chunk of chunks(forget)) multi.srem(own, ...chunk)
          if (unregister) multi.del(own).srem(this.names.presenceNodes, nodeId)
        }]
    return [register, hashes, last]
  }

  private writeChannel (multi: Multi, channel: string, changes: PresenceChanges): void {
    const hash = this.names.presence(channel)
    const { nodeId } = this.node
    for (const leaves of chunks(changes.leaves)) multi.hdel(hash, ...leaves)
    for (const joins of chunks(changes.joins)) {
      const fields: string[] = []
      for (const { ref, key, meta } of joins) fields.push(ref, `${nodeId}\n${JSON.stringify(key)}\n${meta}`)
      multi.hset(hash, ...fields)
    }
    const envelope = encodePresenceEnvelope(nodeId, channel, changes)
    if (this.pubsub.sharded) multi.spublish(this.names.channel(channel), envelope)
    else multi.publish(this.names.channel(channel), envelope)
  }

  /** Runs a MULTI built by `build` on the publisher link. */
  private async transaction (build: SlotWrite): Promise<void> {
    await this.pub.run(async (client) => {
      const multi = client.multi()
      build(multi)
      await execAll(multi)
    })
  }

  async state (channel: string): Promise<PresenceTrack[]> {
    const stored = await this.pub.run(async (client) => await client.hgetall(this.names.presence(channel)))
    const tracks: PresenceTrack[] = []
    for (const [ref, value] of Object.entries(stored)) {
      const track = parseStored(ref, value)
      if (track !== undefined) tracks.push(track)
    }
    return tracks
  }

  /** Whether this node is in the registry (false after others reaped it while it stalled). */
  async registered (): Promise<boolean> {
    return await this.pub.run(async (client) => await client.sismember(this.names.presenceNodes, this.node.nodeId)) === 1
  }

  /** Removes the tracks of every registered node whose alive key (redis-sessions.ts) expired. */
  async reapDead (): Promise<void> {
    const nodes = await this.pub.run(async (client) => await client.smembers(this.names.presenceNodes))
    const others = nodes.filter((nodeId) => nodeId !== this.node.nodeId)
    if (others.length === 0) return
    const alive = await Promise.all(others.map(async (nodeId) => await this.pub.run(async (client) => await client.exists(this.names.alive(nodeId)))))
    for (const [i, nodeId] of others.entries()) {
      if (alive[i] === 0) await this.reap(nodeId)
    }
  }

  /** Channel by channel (each script in its channel's slot), then the registry: see the order above. */
  private async reap (nodeId: string): Promise<void> {
    let removed = 0
    const registry = this.names.presenceNode(nodeId)
    for (const channel of await this.pub.run(async (client) => await client.smembers(registry))) {
      removed += await this.pub.run(async (client) => await (client as unknown as WithReap)
        .channelsReapPresence(this.names.presence(channel), nodeId, this.names.channel(channel), channel, this.pubsub.publishCommand))
    }
    await this.transaction((multi) => { multi.del(registry).srem(this.names.presenceNodes, nodeId) })
    if (removed > 0) this.node.log.info({ node: nodeId, tracks: removed }, 'channels: removed the presence tracks of a node that stopped')
  }
}
