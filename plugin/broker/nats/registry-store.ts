/**
 * The NATS engine's node registry. Which node holds a session is not written anywhere: a node
 * subscribes the session's subject (`<P>.s.<session>`, in a queue group, so one node answers
 * even while a session moves) for as long as it holds it, and the server's interest is the
 * registry. A route is a request on that subject: the lookup and the delivery are one step,
 * "no responders" means no live node holds it (`false`), and a request without an answer
 * within the timeout rejects (the holder hangs, or the server does). The request carries a
 * deadline on the server's clock, and the holder drops it when it comes later than that, so a
 * send reported failed is not delivered later (see transport.ts).
 *
 * Liveness is a key per node in the bucket `<S>-nodes`, whose entries expire after `ttl`
 * (NATS 2.9 has no per-key TTL: the bucket's max age is the TTL, and a refresh writes the key
 * again). A refresh is an update expecting the revision the node last wrote: when the key
 * expired (the node or the server stalled) or was deleted, it fails, and the core registers
 * again. Each write also samples the server's clock (NatsClock).
 */
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node'
import type { KV } from '@nats-io/kv'
import type { RegistryStore } from '../parts.js'
import { perTurn } from '../per-turn.js'
import type { NatsClock } from './clock.js'
import { flushWithin, isNoResponders, isWrongSequence } from './client.js'
import type { NatsNames } from './names.js'
import { deadlineHeader, envelopeOf } from './transport.js'

/** the queue group of session subjects */
const queue = 'holder'

export interface NatsRegistrySettings {
  names: NatsNames
  clock: NatsClock
  headers: () => MsgHdrs
  nodeId: string
  ttl: number
  timeoutMs: number
  budgetMs: number
  /** a session routed to this node */
  receive: (envelope: string) => void
  /** told when a refresh failed: an idle node notices an outage here */
  onLost: (err: unknown) => void
  /** told once per send that did not reach its holder in time */
  onDropped: () => void
  onLate: () => void
}

export class NatsRegistry implements RegistryStore {
  readonly ttl: number
  private readonly key: string
  private readonly sessions = new Map<string, Subscription>()
  /** the revision of this node's last write of its key */
  private revision = 0

  constructor (private readonly nc: NatsConnection, private readonly kv: KV, private readonly settings: NatsRegistrySettings) {
    this.ttl = settings.ttl
    this.key = settings.names.aliveKey(settings.nodeId)
  }

  /** Writes the node's key (a put, or an update expecting `revision`) and samples the server's clock. */
  private async writeAlive (revision?: number): Promise<void> {
    const sentAt = Date.now()
    this.revision = revision === undefined
      ? await this.kv.put(this.key, '1')
      : await this.kv.update(this.key, '1', revision, this.settings.timeoutMs)
    const answeredAt = Date.now()
    const entry = await this.kv.get(this.key, { revision: this.revision })
    if (entry !== null) this.settings.clock.observe(entry.created.getTime(), sentAt, answeredAt)
  }

  async register (sessions: readonly string[]): Promise<void> {
    const keep = new Set(sessions)
    for (const [sessionId, subscription] of this.sessions) {
      if (keep.has(sessionId)) continue
      subscription.unsubscribe()
      this.sessions.delete(sessionId)
    }
    for (const sessionId of sessions) this.hold(sessionId)
    await this.writeAlive()
    await flushWithin(this.nc, this.settings.timeoutMs)
  }

  async refresh (): Promise<boolean> {
    try {
      await this.writeAlive(this.revision)
      return true
    } catch (err) {
      if (isWrongSequence(err)) return false
      this.settings.onLost(err)
      throw err
    }
  }

  private hold (sessionId: string): void {
    if (this.sessions.has(sessionId)) return
    this.sessions.set(sessionId, this.nc.subscribe(this.settings.names.session(sessionId), {
      queue,
      callback: (err, msg) => { if (err === null) this.arrived(msg) }
    }))
  }

  /** A send for a session of this node: delivered unless late, and answered either way. */
  private arrived (msg: Msg): void {
    let late = false
    const envelope = envelopeOf(msg, this.settings.clock, () => { late = true; this.settings.onLate() })
    if (envelope !== undefined) this.settings.receive(envelope)
    msg.respond(late ? 'late' : 'ok')
  }

  /**
   * A session's subject is subscribed (or unsubscribed) at once; the call resolves once the
   * server has processed it, which a flush (a PING answered by a PONG) proves. The sessions
   * opened and closed in one event-loop turn share one flush, sent at the turn's end after all
   * of their SUB and UNSUB lines: a storm of connects (or a shutdown closing thousands of
   * sockets) costs one round trip per turn, not one per socket.
   */
  async add (sessionId: string): Promise<void> {
    this.hold(sessionId)
    await this.flushOfThisTurn()
  }

  async remove (sessionId: string): Promise<void> {
    this.sessions.get(sessionId)?.unsubscribe()
    this.sessions.delete(sessionId)
    // once the server has it, requests for the session find no responder instead of a deaf subscription
    await this.flushOfThisTurn()
  }

  /** what comes after this flush's PING waits for the next one */
  private readonly flushOfThisTurn = perTurn(async () => { await flushWithin(this.nc, this.settings.timeoutMs) })

  async route (sessionId: string, envelope: string): Promise<boolean> {
    const { settings } = this
    if (this.sessions.has(sessionId)) return false // never this node: the core delivers its own sessions itself
    const headers = settings.headers()
    headers.set(deadlineHeader, String(settings.clock.deadline(settings.budgetMs)))
    let reply: Msg
    try {
      reply = await this.nc.request(settings.names.session(sessionId), envelope, { timeout: settings.timeoutMs, headers })
    } catch (err) {
      if (isNoResponders(err)) return false
      settings.onDropped()
      throw err
    }
    if (reply.string() === 'ok') return true
    settings.onDropped()
    throw new Error('the node holding the session got the send after its deadline: not delivered')
  }

  async alive (nodeIds: readonly string[]): Promise<boolean[]> {
    return await Promise.all(nodeIds.map(async (nodeId) => {
      const entry = await this.kv.get(this.settings.names.aliveKey(nodeId))
      return entry !== null && entry.operation === 'PUT'
    }))
  }

  async unregister (): Promise<void> {
    this.close()
    await this.kv.delete(this.key)
  }

  /** Ends the session subscriptions (a close: on a connection the app passed in, they must not stay). */
  close (): void {
    for (const subscription of this.sessions.values()) subscription.unsubscribe()
    this.sessions.clear()
  }
}
