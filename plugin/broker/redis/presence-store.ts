/**
 * The Redis engine's presence store: what Redis holds of presence, and how it is written so
 * that it works on one Redis and on Redis Cluster alike (names in RedisKeys):
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
 * A dead node is reaped channel by channel, with a script (lua/presence-reap.lua) that deletes
 * its tracks from the hash and publishes the leaves in one atomic step (so two nodes reaping at
 * once send each leave once); its one key, the hash, routes it to the channel's slot.
 */
import type { Redis } from 'ioredis'
import { execAll } from './client.js'
import type { RedisKeys } from './keys.js'
import type { Link } from './link.js'
import type { PubSubMode } from './pubsub.js'
import { runScript } from './scripts.js'
import type { PresenceChannelWrite, PresenceStore, PresenceWrite } from '../parts.js'
import type { PresenceTrack } from '../types.js'

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

export class RedisPresenceStore implements PresenceStore {
  /**
   * @param pub the publisher's link (where the scripts are defined): every call goes through it
   * @param pubsub classic pub/sub on one Redis, sharded on a cluster (then a MULTI or script stays in one slot)
   */
  constructor (
    private readonly pub: Link,
    private readonly nodeId: string,
    private readonly names: RedisKeys,
    private readonly pubsub: PubSubMode
  ) {}

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
    const { nodeId } = this
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

  private writeChannel (multi: Multi, channel: string, { joins, leaves, envelope }: PresenceChannelWrite): void {
    const hash = this.names.presence(channel)
    const { nodeId } = this
    for (const refs of chunks(leaves)) multi.hdel(hash, ...refs)
    for (const tracks of chunks(joins)) {
      const fields: string[] = []
      for (const { ref, key, meta } of tracks) fields.push(ref, `${nodeId}\n${JSON.stringify(key)}\n${meta}`)
      multi.hset(hash, ...fields)
    }
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

  async list (channel: string): Promise<PresenceTrack[]> {
    const stored = await this.pub.run(async (client) => await client.hgetall(this.names.presence(channel)))
    const tracks: PresenceTrack[] = []
    for (const [ref, value] of Object.entries(stored)) {
      const track = parseStored(ref, value)
      if (track !== undefined) tracks.push(track)
    }
    return tracks
  }

  async nodes (): Promise<string[]> {
    return await this.pub.run(async (client) => await client.smembers(this.names.presenceNodes))
  }

  /** Channel by channel (each script in its channel's slot), then the registry: see the order above. */
  async reap (nodeId: string, leavesHead: (channel: string) => string): Promise<number> {
    let removed = 0
    const registry = this.names.presenceNode(nodeId)
    for (const channel of await this.pub.run(async (client) => await client.smembers(registry))) {
      removed += await this.pub.run((client) => runScript(client, 'presenceReap', [this.names.presence(channel)],
        [nodeId, this.names.channel(channel), leavesHead(channel), this.pubsub.publishCommand]))
    }
    await this.transaction((multi) => { multi.del(registry).srem(this.names.presenceNodes, nodeId) })
    return removed
  }
}
