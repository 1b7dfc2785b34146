/**
 * Where each session lives, kept in Redis so that cannot go stale when a node dies:
 *
 *   <prefix>:nodes               a set of node ids (pruned lazily by lookups)
 *   <prefix>:alive:<nodeId>      present while the node lives: a TTL refreshed by a timer
 *   <prefix>:sessions:<nodeId>   the node's session ids, with the same TTL
 *
 * A node killed without closing stops refreshing, so within `nodeTtl` its keys expire and
 * lookups stop finding its sessions. A lookup runs as one Lua script: it walks the live nodes
 * (few), finds the one holding the session and publishes the frame to that node's own
 * channel, all in one round trip.
 */
import type { Redis } from 'ioredis'

/** returns PUBLISH's receiver count, 0 when no live node holds the session, -1 when the node holding it is not listening */
const lookupAndSend = `
local prefix, session, payload, self = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= self then
    if redis.call('EXISTS', prefix .. ':alive:' .. node) == 0 then
      redis.call('SREM', KEYS[1], node)
      redis.call('DEL', prefix .. ':sessions:' .. node)
    elseif redis.call('SISMEMBER', prefix .. ':sessions:' .. node, session) == 1 then
      local receivers = redis.call('PUBLISH', prefix .. ':node:' .. node, payload)
      if receivers == 0 then return -1 end
      return receivers
    end
  end
end
return 0
`

type Multi = ReturnType<Redis['multi']>

/** Runs a MULTI; a command that failed inside it rejects like a failed MULTI would. */
export async function execAll (multi: Multi): Promise<void> {
  const results = await multi.exec()
  if (results === null) throw new Error('redis transaction aborted')
  for (const [err] of results) if (err !== null) throw err
}

interface WithLookup {
  channelsLookupAndSend (nodesKey: string, prefix: string, sessionId: string, payload: string, self: string): Promise<number>
}

/** session ids per SADD, so one command never carries an unbounded argument list */
const chunkSize = 1000

export class SessionRegistry {
  /** the sessions this node holds, whatever Redis knows: the source of every re-registration */
  readonly local = new Set<string>()
  private readonly nodesKey: string
  private readonly aliveKey: string
  private readonly sessionsKey: string
  private timer: NodeJS.Timeout | undefined
  /** false after a failed write: the next refresh rewrites everything */
  private synced = false

  constructor (
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly ttl: number,
    private readonly onRefreshError: (err: unknown) => void
  ) {
    this.nodesKey = `${prefix}:nodes`
    this.aliveKey = `${prefix}:alive:${nodeId}`
    this.sessionsKey = `${prefix}:sessions:${nodeId}`
    redis.defineCommand('channelsLookupAndSend', { numberOfKeys: 1, lua: lookupAndSend })
  }

  /** Registers the node and starts the refresh timer (a third of the TTL, unref'd). */
  async start (): Promise<void> {
    await this.sync()
    this.timer = setInterval(() => {
      this.refresh().catch(this.onRefreshError)
    }, Math.max(Math.floor(this.ttl / 3), 50))
    this.timer.unref()
  }

  /** Writes the whole registration: after a start or a reconnect, Redis may hold nothing of it. */
  async sync (): Promise<void> {
    this.synced = false
    const multi = this.redis.multi().del(this.sessionsKey)
    const sessions = [...this.local]
    for (let i = 0; i < sessions.length; i += chunkSize) multi.sadd(this.sessionsKey, sessions.slice(i, i + chunkSize))
    await execAll(this.keepAlive(multi))
    this.synced = true
  }

  private keepAlive (multi: Multi): Multi {
    return multi
      .set(this.aliveKey, '1', 'PX', this.ttl)
      .pexpire(this.sessionsKey, this.ttl)
      .sadd(this.nodesKey, this.nodeId)
  }

  private async refresh (): Promise<void> {
    if (!this.synced) return await this.sync()
    await execAll(this.keepAlive(this.redis.multi()))
  }

  async add (sessionId: string): Promise<void> {
    this.local.add(sessionId)
    await this.write(this.redis.multi().sadd(this.sessionsKey, sessionId).pexpire(this.sessionsKey, this.ttl))
  }

  async remove (sessionId: string): Promise<void> {
    this.local.delete(sessionId)
    await this.write(this.redis.multi().srem(this.sessionsKey, sessionId))
  }

  private async write (multi: Multi): Promise<void> {
    try {
      await execAll(multi)
    } catch (err) {
      this.synced = false
      throw err
    }
  }

  /** Publishes `payload` to the node holding `sessionId`: see `lookupAndSend` for the result. */
  async send (sessionId: string, payload: string): Promise<number> {
    const redis = this.redis as unknown as WithLookup
    return await redis.channelsLookupAndSend(this.nodesKey, this.prefix, sessionId, payload, this.nodeId)
  }

  /** Stops the timer and removes the node's registration (best effort: it expires anyway). */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    this.local.clear()
    await execAll(this.redis.multi().del(this.aliveKey, this.sessionsKey).srem(this.nodesKey, this.nodeId))
  }
}
