/**
 * The Redis engine's node registry, kept in Redis so that it cannot go stale when a node dies
 * (names from RedisKeys, all in the node-wide `{<prefix>}` slot, so one script may touch them
 * on a cluster):
 *
 *   {<prefix>}:nodes               a set of node ids (pruned lazily by routes)
 *   {<prefix>}:alive:<nodeId>      present while the node lives: a TTL refreshed by the core
 *   {<prefix>}:sessions:<nodeId>   the node's session ids, with a TTL `sessionsTtlFactor` times longer
 *
 * A route runs as one script (lua/route-session.lua): it walks the live nodes (few), finds the
 * one holding the session and publishes the envelope on that node's channel, all in one round
 * trip, unless Redis got it after its deadline. A refresh (lua/refresh-registration.lua) only
 * extends keys that still exist, and reads Redis' clock for the deadlines (RedisClock).
 *
 * A node that stalled past the TTL (a long GC pause, a frozen VM) has lost its alive key but not
 * its session set: a route still finds its sessions there and publishes on its channel, where
 * its subscriber connection (open all along) takes the send; only a node nobody listens for is
 * taken for dead. So a `send` to a session of a node that stalls never fails with NO_SOCKET
 * before that node has written its registration again.
 */
import type { Redis } from 'ioredis'
import { execAll } from './client.js'
import type { RedisClock } from './clock.js'
import type { RedisKeys } from './keys.js'
import type { Link } from './link.js'
import type { PubSubMode } from './pubsub.js'
import { runScript } from './scripts.js'
import type { RegistryStore } from '../parts.js'
import { perTurn } from '../per-turn.js'

/** session ids per SADD, so one command never carries an unbounded argument list */
const chunkSize = 1000

/**
 * How many times `nodeTtl` a node's session set outlives its alive key: how long a node may
 * stall and still get the sends to its sessions (a dead node's set is pruned as soon as a
 * route finds that nobody listens for it).
 */
export const sessionsTtlFactor = 10

type Multi = ReturnType<Redis['multi']>

export interface RedisRegistrySettings {
  keys: RedisKeys
  pubsub: PubSubMode
  clock: RedisClock
  nodeId: string
  /** nodeTtl */
  ttl: number
  /** ms after a send was made until which Redis may still publish it */
  budget: number
  /** told when a refresh failed: a node that is idle otherwise notices an outage here */
  onLost: (err: unknown) => void
  /** told once per send that did not reach Redis in time */
  onDropped: () => void
}

export class RedisRegistry implements RegistryStore {
  readonly ttl: number
  private readonly aliveKey: string
  private readonly sessionsKey: string
  private readonly sessionsTtl: number

  /** every call goes through the publisher's link (where the scripts are defined) */
  constructor (private readonly link: Link, private readonly settings: RedisRegistrySettings) {
    this.ttl = settings.ttl
    this.aliveKey = settings.keys.alive(settings.nodeId)
    this.sessionsKey = settings.keys.sessions(settings.nodeId)
    this.sessionsTtl = settings.ttl * sessionsTtlFactor
  }

  async register (sessions: readonly string[]): Promise<void> {
    const { keys, nodeId, ttl } = this.settings
    const replies = await this.link.run((redis) => {
      const multi = redis.multi().del(this.sessionsKey)
      for (let i = 0; i < sessions.length; i += chunkSize) multi.sadd(this.sessionsKey, sessions.slice(i, i + chunkSize))
      return execAll(multi.set(this.aliveKey, '1', 'PX', ttl).pexpire(this.sessionsKey, this.sessionsTtl).sadd(keys.nodes, nodeId).time())
    })
    const time = replies[replies.length - 1]
    if (Array.isArray(time)) this.settings.clock.observe([String(time[0]), String(time[1])])
  }

  async refresh (holdsSessions: boolean): Promise<boolean> {
    const { keys, nodeId, ttl } = this.settings
    try {
      const { present, time } = await this.link.run((redis) =>
        runScript(redis, 'refreshRegistration', [this.aliveKey, this.sessionsKey, keys.nodes], [ttl, nodeId, holdsSessions ? '1' : '0', this.sessionsTtl]))
      this.settings.clock.observe(time)
      return present
    } catch (err) {
      this.settings.onLost(err)
      throw err
    }
  }

  /**
   * Sessions opened and closed in one event-loop turn are written together, as one transaction
   * at the turn's end: a storm of connects (or a shutdown closing thousands of sockets) costs one
   * round trip per turn, not one per socket (bench/storm: the per-socket SREM was nine tenths of
   * a closing socket's CPU). Every caller of a batch gets its outcome.
   */
  async add (sessionId: string): Promise<void> {
    this.pendingRemoves.delete(sessionId)
    this.pendingAdds.add(sessionId)
    await this.batchOfThisTurn()
  }

  async remove (sessionId: string): Promise<void> {
    // an add still waiting for its batch is simply not written
    this.pendingAdds.delete(sessionId)
    this.pendingRemoves.add(sessionId)
    await this.batchOfThisTurn()
  }

  private readonly pendingAdds = new Set<string>()
  private readonly pendingRemoves = new Set<string>()
  private readonly batchOfThisTurn = perTurn(async () => {
    const adds = [...this.pendingAdds]
    const removes = [...this.pendingRemoves]
    this.pendingAdds.clear()
    this.pendingRemoves.clear()
    await this.write((redis) => {
      const multi = redis.multi()
      for (let i = 0; i < adds.length; i += chunkSize) multi.sadd(this.sessionsKey, adds.slice(i, i + chunkSize))
      multi.pexpire(this.sessionsKey, this.sessionsTtl) // the node is alive: its set lives on (a no-op once it is empty)
      for (let i = 0; i < removes.length; i += chunkSize) multi.srem(this.sessionsKey, removes.slice(i, i + chunkSize))
      return multi
    })
  })

  private async write (multi: (redis: Redis) => Multi): Promise<void> {
    await this.link.run((redis) => execAll(multi(redis)))
  }

  async route (sessionId: string, envelope: string): Promise<boolean> {
    const { keys, nodeId, clock, budget, pubsub } = this.settings
    const deadline = clock.deadline(budget)
    let outcome
    try {
      outcome = await this.link.run((redis) => runScript(redis, 'routeSession', [keys.nodes],
        [keys.alive(''), keys.sessions(''), keys.direct(''), sessionId, envelope, nodeId, deadline, pubsub.publishCommand]), envelope.length)
    } catch (err) {
      this.settings.onDropped()
      throw err
    }
    switch (outcome) {
      case 'sent': return true
      case 'none': return false
      case 'late':
        this.settings.onDropped()
        throw new Error('redis got the send after its deadline: not delivered')
      case 'not-listening':
        throw new Error('the node holding the session is not connected to redis')
    }
  }

  async alive (nodeIds: readonly string[]): Promise<boolean[]> {
    const { keys } = this.settings
    return await Promise.all(nodeIds.map(async (id) => await this.link.run(async (redis) => await redis.exists(keys.alive(id))) === 1))
  }

  async unregister (): Promise<void> {
    const { keys, nodeId } = this.settings
    await this.link.run((redis) => execAll(redis.multi().del(this.aliveKey, this.sessionsKey).srem(keys.nodes, nodeId)))
  }
}
