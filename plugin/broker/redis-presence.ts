/**
 * Presence in Redis, shared by every node on one prefix:
 *
 *   <prefix>:presence:{<channel>}     a hash: ref → "<nodeId>\n<key as JSON>\n<meta as JSON>"
 *   <prefix>:presence-node:<nodeId>   the channels a node has (or had) tracks in
 *   <prefix>:presence-nodes           the nodes that have tracks
 *
 * A node writes its own tracks and, in the same MULTI, publishes the change on the channel's
 * Redis channel (`<prefix>:ch:<channel>`, which every node with a subscriber of it listens to),
 * as a `p` envelope:
 *
 *   p \n nodeId \n channel \n L \n ref1 … refL \n (ref \n key as JSON \n meta) per join
 *
 * A node that died without closing stops refreshing `<prefix>:alive:<nodeId>` (redis-sessions.ts);
 * every node's timer looks for such nodes and removes their tracks, channel by channel, with a
 * script that deletes them from the hash and publishes the leaves in one atomic step (so two
 * nodes reaping at once send each leave once). The envelope carries the dead node's id: should
 * the node only have stalled, it ignores those leaves, sees it was reaped (it is no longer in
 * `presence-nodes`) and writes its tracks again, which the others take as joins.
 *
 * The per-channel keys carry the channel as a hash tag, so a channel's hash and its scripts stay
 * in one Redis Cluster slot.
 */
import type { Redis } from 'ioredis'
import type { Link } from './redis-link.js'
import { decodePresenceEnvelope, encodePresenceEnvelope } from './redis-presence-envelope.js'
import { execAll } from './redis-sessions.js'
import type { BrokerNode, PresenceChanges, PresenceTrack } from './types.js'

/** KEYS[1] the channel's hash; ARGV node id, Redis channel, app channel. Returns the tracks removed. */
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
redis.call('PUBLISH', pubsub, 'p\\n' .. node .. '\\n' .. channel .. '\\n' .. #refs .. '\\n' .. table.concat(refs, '\\n'))
return #refs
`

interface WithReap {
  channelsReapPresence (hash: string, node: string, pubsub: string, channel: string): Promise<number>
}

type Multi = ReturnType<Redis['multi']>

/** fields per HSET/HDEL, so one command never carries an unbounded argument list */
const chunkSize = 500

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

export interface RedisPresenceSettings {
  prefix: string
  nodeTtl: number
  /** the Redis channel of an app channel */
  redisChannel: (channel: string) => string
}

export class RedisPresence {
  /** this node's own tracks per channel, whatever Redis knows: the source of every re-assertion */
  private readonly own = new Map<string, Map<string, PresenceTrack>>()
  private readonly nodesKey: string
  private timer: NodeJS.Timeout | undefined
  /** false after a failed write or a reconnect: the next tick writes every own track again */
  private synced = true
  /** the subscriber reconnected: changes published meanwhile were missed */
  private missedChanges = false
  private ticking = false
  /** this node's changes of the current turn, per channel, written together (see update) */
  private queued = new Map<string, { joins: Map<string, PresenceTrack>, leaves: string[] }>()
  private batch: Promise<void> | undefined

  /** every call goes through the broker's links: a timeout, no backlog, a reset when Redis hangs */
  constructor (
    private readonly pub: Link,
    private readonly sub: Link,
    private readonly node: BrokerNode,
    private readonly settings: RedisPresenceSettings
  ) {
    this.nodesKey = `${settings.prefix}:presence-nodes`
    pub.client.defineCommand('channelsReapPresence', { numberOfKeys: 1, lua: reapChannel })
  }

  /** Runs a MULTI built by `build` on the publisher link. */
  private async transaction (build: (multi: Multi) => void): Promise<void> {
    await this.pub.run(async (client) => {
      const multi = client.multi()
      build(multi)
      await execAll(multi)
    })
  }

  private hashKey (channel: string): string {
    return `${this.settings.prefix}:presence:{${channel}}`
  }

  private nodeKey (nodeId: string): string {
    return `${this.settings.prefix}:presence-node:${nodeId}`
  }

  /** How often a node looks for dead nodes: with the default TTL (10 s), leaves go out within 12 s. */
  get tickMs (): number {
    return Math.min(2000, Math.max(200, Math.floor(this.settings.nodeTtl / 5)))
  }

  start (): void {
    this.pub.client.on('ready', () => { this.synced = false })
    this.sub.client.on('ready', () => { this.missedChanges = true })
    this.timer = setInterval(() => { this.tick().catch(() => {}) }, this.tickMs)
    this.timer.unref()
  }

  // ---- this node's changes -------------------------------------------------------------

  /**
   * Records this node's change. Changes made in one turn of the event loop (a crowd joining, a
   * node closing its sockets) go to Redis together: one MULTI, one envelope per channel, with a
   * track that came and went in between never written at all.
   */
  update (channel: string, changes: PresenceChanges): Promise<void> {
    let tracks = this.own.get(channel)
    for (const ref of changes.leaves) tracks?.delete(ref)
    if (changes.joins.length > 0 && tracks === undefined) this.own.set(channel, tracks = new Map())
    for (const track of changes.joins) tracks?.set(track.ref, track)
    if (tracks !== undefined && tracks.size === 0) this.own.delete(channel)

    let queued = this.queued.get(channel)
    if (queued === undefined) this.queued.set(channel, queued = { joins: new Map(), leaves: [] })
    for (const ref of changes.leaves) {
      if (!queued.joins.delete(ref)) queued.leaves.push(ref) // one never written needs no leave
    }
    for (const track of changes.joins) queued.joins.set(track.ref, track)
    this.batch ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => { this.writeQueued().then(resolve, reject) })
    })
    return this.batch
  }

  private async writeQueued (): Promise<void> {
    const queued = this.queued
    this.queued = new Map()
    this.batch = undefined
    if (queued.size === 0) return // stopped meanwhile
    try {
      await this.transaction((multi) => {
        for (const [channel, { joins, leaves }] of queued) {
          if (joins.size === 0 && leaves.length === 0) continue
          this.write(multi, channel, { joins: [...joins.values()], leaves })
          if (!this.own.has(channel)) multi.srem(this.nodeKey(this.node.nodeId), channel)
        }
      })
    } catch (err) {
      this.synced = false
      throw err
    }
  }

  private write (multi: Multi, channel: string, changes: PresenceChanges): Multi {
    const hash = this.hashKey(channel)
    const { nodeId } = this.node
    for (let i = 0; i < changes.leaves.length; i += chunkSize) multi.hdel(hash, ...changes.leaves.slice(i, i + chunkSize))
    for (let i = 0; i < changes.joins.length; i += chunkSize) {
      const fields: string[] = []
      for (const { ref, key, meta } of changes.joins.slice(i, i + chunkSize)) fields.push(ref, `${nodeId}\n${JSON.stringify(key)}\n${meta}`)
      multi.hset(hash, ...fields)
    }
    multi.publish(this.settings.redisChannel(channel), encodePresenceEnvelope(nodeId, channel, changes))
    if (changes.joins.length > 0) multi.sadd(this.nodeKey(nodeId), channel).sadd(this.nodesKey, nodeId)
    return multi
  }

  async state (channel: string): Promise<PresenceTrack[]> {
    const stored = await this.pub.run(async (client) => await client.hgetall(this.hashKey(channel)))
    const tracks: PresenceTrack[] = []
    for (const [ref, value] of Object.entries(stored)) {
      const track = parseStored(ref, value)
      if (track !== undefined) tracks.push(track)
    }
    return tracks
  }

  /** A `p` envelope from the channel's Redis channel. */
  receive (text: string): void {
    const envelope = decodePresenceEnvelope(text)
    if (envelope === undefined) {
      this.node.log.warn('channels: dropped a presence message this version cannot read')
      return
    }
    // Our own echo, or our tracks reaped while we stalled: we write them again (see tick).
    if (envelope.nodeId === this.node.nodeId) return
    this.node.presenceChanged?.(envelope.channel, envelope.changes)
  }

  // ---- the timer: re-assert, reap ------------------------------------------------------

  private async tick (): Promise<void> {
    if (this.ticking) return
    this.ticking = true
    try {
      if (this.own.size > 0 && (!this.synced || await this.pub.run(async (client) => await client.sismember(this.nodesKey, this.node.nodeId)) === 0)) {
        await this.reassert()
      }
      if (this.missedChanges) {
        this.missedChanges = false
        this.node.presenceReload?.()
      }
      await this.reapDead()
    } catch (err) {
      this.node.log.debug({ err }, 'channels: presence upkeep failed; retried on the next tick')
    } finally {
      this.ticking = false
    }
  }

  /** Writes every own track again (after an outage, or after others reaped us while we stalled). */
  private async reassert (): Promise<void> {
    this.synced = true // a write failing from here on sets it back
    try {
      await this.transaction((multi) => {
        for (const [channel, tracks] of this.own) this.write(multi, channel, { joins: [...tracks.values()], leaves: [] })
      })
    } catch (err) {
      this.synced = false
      throw err
    }
    this.node.log.info({ channels: this.own.size }, 'channels: presence tracks of this node written to redis again')
    this.node.presenceReload?.()
  }

  private async reapDead (): Promise<void> {
    const { prefix } = this.settings
    const nodes = await this.pub.run(async (client) => await client.smembers(this.nodesKey))
    const others = nodes.filter((nodeId) => nodeId !== this.node.nodeId)
    if (others.length === 0) return
    const alive = await Promise.all(others.map(async (nodeId) => await this.pub.run(async (client) => await client.exists(`${prefix}:alive:${nodeId}`))))
    for (const [i, nodeId] of others.entries()) {
      if (alive[i] === 0) await this.reap(nodeId)
    }
  }

  private async reap (nodeId: string): Promise<void> {
    let removed = 0
    for (const channel of await this.pub.run(async (client) => await client.smembers(this.nodeKey(nodeId)))) {
      removed += await this.pub.run(async (client) => await (client as unknown as WithReap)
        .channelsReapPresence(this.hashKey(channel), nodeId, this.settings.redisChannel(channel), channel))
    }
    await this.transaction((multi) => { multi.del(this.nodeKey(nodeId)).srem(this.nodesKey, nodeId) })
    if (removed > 0) this.node.log.info({ node: nodeId, tracks: removed }, 'channels: removed the presence tracks of a node that stopped')
  }

  /** Stops the timer and removes this node's tracks (best effort: others reap them anyway). */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    // Every track this node may have written leaves: its own, and those that left this turn.
    const leaving = new Map<string, string[]>()
    for (const [channel, tracks] of this.own) leaving.set(channel, [...tracks.keys()])
    for (const [channel, { leaves }] of this.queued) leaving.set(channel, [...leaving.get(channel) ?? [], ...leaves])
    this.queued.clear()
    this.own.clear()
    await this.transaction((multi) => {
      for (const [channel, leaves] of leaving) if (leaves.length > 0) this.write(multi, channel, { joins: [], leaves })
      multi.del(this.nodeKey(this.node.nodeId)).srem(this.nodesKey, this.node.nodeId)
    })
  }
}
