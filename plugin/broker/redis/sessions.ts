/**
 * Where each session lives, kept in Redis so that cannot go stale when a node dies (names from
 * RedisKeys, all in the node-wide `{<prefix>}` slot, so one script may touch them on a cluster):
 *
 *   {<prefix>}:nodes               a set of node ids (pruned lazily by lookups)
 *   {<prefix>}:alive:<nodeId>      present while the node lives: a TTL refreshed by a timer
 *   {<prefix>}:sessions:<nodeId>   the node's session ids, with the same TTL
 *
 * A node killed without closing stops refreshing, so within `nodeTtl` its keys expire and
 * lookups stop finding its sessions. A lookup runs as one Lua script: it walks the live nodes
 * (few), finds the one holding the session and publishes the frame to that node's own
 * channel, all in one round trip.
 *
 * A node that lives on after its keys expired (Redis or the node itself stalled longer than
 * `nodeTtl`) finds out on its next refresh, which only extends keys that still exist: when
 * they are gone it writes its whole registration again, in one transaction.
 */
import type { Redis } from 'ioredis'
import { lateCheck, type RedisClock, type RedisTime } from './clock.js'
import type { RedisKeys } from './keys.js'
import type { Link } from './link.js'
import type { PubSubMode } from './pubsub.js'

/**
 * KEYS[1]: the nodes set; ARGV: the names of a node's alive key, session set and channel
 * without the node id (RedisKeys', all in KEYS[1]'s slot), the session, the payload, this
 * node's id, the deadline, the publish command. Returns the publish's receiver count, 0 when no
 * live node holds the session, -1 when the node holding it is not listening, -2 when Redis got
 * the send after its deadline (not published).
 */
const lookupAndSend = `
local alive, sessions, direct, session, payload, self = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
${lateCheck('ARGV[7]')}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= self then
    if redis.call('EXISTS', alive .. node) == 0 then
      redis.call('SREM', KEYS[1], node)
      redis.call('DEL', sessions .. node)
    elseif redis.call('SISMEMBER', sessions .. node, session) == 1 then
      local receivers = redis.call(ARGV[8], direct .. node, payload)
      if receivers == 0 then return -1 end
      return receivers
    end
  end
end
return 0
`

/**
 * Extends the registration only where it still exists. KEYS: alive, sessions, nodes; ARGV:
 * ttl, nodeId, '1' when the node holds sessions. Returns { 1 | 0, TIME }: 0 when the alive key
 * or a session set the node should have is gone, and the caller must write everything again.
 */
const refreshIfPresent = `
local t = redis.call('TIME')
if not redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'XX') then return { 0, t[1], t[2] } end
if ARGV[3] == '1' and redis.call('PEXPIRE', KEYS[2], ARGV[1]) == 0 then return { 0, t[1], t[2] } end
redis.call('SADD', KEYS[3], ARGV[2])
return { 1, t[1], t[2] }
`

type Multi = ReturnType<Redis['multi']>

/** Runs a MULTI; a command that failed inside it rejects like a failed MULTI would. Resolves with the replies. */
export async function execAll (multi: Multi): Promise<unknown[]> {
  const results = await multi.exec()
  if (results === null) throw new Error('redis transaction aborted')
  for (const [err] of results) if (err !== null) throw err
  return results.map(([, reply]) => reply)
}

interface WithScripts {
  channelsLookupAndSend (
    nodesKey: string, alive: string, sessions: string, direct: string, sessionId: string, payload: string, self: string, deadline: number, publish: string
  ): Promise<number>
  channelsRefresh (aliveKey: string, sessionsKey: string, nodesKey: string, ttl: number, nodeId: string, holds: string): Promise<[number, string, string]>
}

const scripts = (redis: Redis): WithScripts => redis as unknown as WithScripts

/** session ids per SADD, so one command never carries an unbounded argument list */
const chunkSize = 1000

export class SessionRegistry {
  /** the sessions this node holds, whatever Redis knows: the source of every re-registration */
  readonly local = new Set<string>()
  private readonly nodesKey: string
  private readonly aliveKey: string
  private readonly sessionsKey: string
  /** false after a failed write: the next refresh rewrites everything */
  private synced = false

  constructor (
    private readonly link: Link,
    private readonly clock: RedisClock,
    private readonly keys: RedisKeys,
    private readonly pubsub: PubSubMode,
    private readonly nodeId: string,
    private readonly ttl: number
  ) {
    this.nodesKey = keys.nodes
    this.aliveKey = keys.alive(nodeId)
    this.sessionsKey = keys.sessions(nodeId)
    link.client.defineCommand('channelsLookupAndSend', { numberOfKeys: 1, lua: lookupAndSend })
    link.client.defineCommand('channelsRefresh', { numberOfKeys: 3, lua: refreshIfPresent })
  }

  /** Writes the whole registration, atomically: after a start, a reconnect or a stall, Redis may hold nothing of it. */
  async sync (): Promise<void> {
    this.synced = false
    const sessions = [...this.local]
    const replies = await this.link.run((redis) => {
      const multi = redis.multi().del(this.sessionsKey)
      for (let i = 0; i < sessions.length; i += chunkSize) multi.sadd(this.sessionsKey, sessions.slice(i, i + chunkSize))
      return execAll(multi
        .set(this.aliveKey, '1', 'PX', this.ttl)
        .pexpire(this.sessionsKey, this.ttl)
        .sadd(this.nodesKey, this.nodeId)
        .time())
    })
    this.clock.observe(replies[replies.length - 1] as RedisTime)
    this.synced = true
  }

  /**
   * Keeps the registration alive (called every third of the TTL). Resolves `true` when it had
   * to be written again because Redis had lost it (expired during a stall, or pruned by a lookup).
   */
  async refresh (): Promise<boolean> {
    if (!this.synced) {
      await this.sync()
      return false
    }
    const holds = this.local.size > 0 ? '1' : '0'
    const [present, seconds, micros] = await this.link.run((redis) =>
      scripts(redis).channelsRefresh(this.aliveKey, this.sessionsKey, this.nodesKey, this.ttl, this.nodeId, holds))
    this.clock.observe([seconds, micros])
    if (present === 1) return false
    await this.sync()
    return true
  }

  async add (sessionId: string): Promise<void> {
    this.local.add(sessionId)
    await this.write((redis) => redis.multi().sadd(this.sessionsKey, sessionId).pexpire(this.sessionsKey, this.ttl))
  }

  async remove (sessionId: string): Promise<void> {
    this.local.delete(sessionId)
    await this.write((redis) => redis.multi().srem(this.sessionsKey, sessionId))
  }

  private async write (multi: (redis: Redis) => Multi): Promise<void> {
    try {
      await this.link.run((redis) => execAll(multi(redis)))
    } catch (err) {
      this.synced = false
      throw err
    }
  }

  /**
   * Publishes `payload` to the node holding `sessionId` unless Redis gets it more than `budget`
   * ms after now: see `lookupAndSend` for the result.
   */
  async send (sessionId: string, payload: string, budget: number): Promise<number> {
    const deadline = this.clock.deadline(budget)
    return await this.link.run((redis) =>
      scripts(redis).channelsLookupAndSend(this.nodesKey, this.keys.alive(''), this.keys.sessions(''), this.keys.direct(''),
        sessionId, payload, this.nodeId, deadline, this.pubsub.publishCommand), payload.length)
  }

  /** Removes the node's registration (best effort: it expires anyway). */
  async stop (): Promise<void> {
    this.local.clear()
    await this.link.run((redis) => execAll(redis.multi().del(this.aliveKey, this.sessionsKey).srem(this.nodesKey, this.nodeId)))
  }
}
