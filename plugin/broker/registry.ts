/**
 * The node registry, the core's side: which sessions this node holds (its own record, whatever
 * the store knows: the source of every re-registration), keeping its registration alive, and
 * routing a send to the node that holds a session. The engine's RegistryStore keeps the shared
 * view (with a TTL where nodes can die without closing) and makes each step atomic.
 *
 * A node killed without closing stops refreshing, so within the store's TTL its registration
 * expires and routes stop finding its sessions. A node that lives on after its registration
 * expired (it, or the engine, stalled longer than the TTL) finds out on its next refresh,
 * which only extends what still exists: it then writes its whole registration again.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { RegistryStore } from './parts.js'

export class SessionRegistry {
  /** the sessions this node holds, whatever the store knows */
  readonly local = new Set<string>()
  /** false after a failed write: the next refresh writes everything again */
  private synced = false
  private timer: NodeJS.Timeout | undefined

  constructor (
    private readonly store: RegistryStore,
    private readonly log: FastifyBaseLogger,
    /** the engine's name, for the log line */
    private readonly engine: string
  ) {}

  /** Writes the whole registration: after a start, a reconnect or a stall, the store may hold nothing of it. */
  async sync (): Promise<void> {
    this.synced = false
    await this.store.register([...this.local])
    this.synced = true
  }

  /** Keeps the registration alive; resolves `true` when it had to be written again because the store had lost it. */
  async refresh (): Promise<boolean> {
    if (!this.synced) {
      await this.sync()
      return false
    }
    if (await this.store.refresh(this.local.size > 0)) return false
    await this.sync()
    return true
  }

  /** Refreshes every third of the store's TTL (a store whose registrations never expire needs none). */
  start (): void {
    const { ttl } = this.store
    if (ttl === undefined) return
    this.timer = setInterval(() => this.upkeep(), Math.max(Math.floor(ttl / 3), 50))
    this.timer.unref()
  }

  private upkeep (): void {
    this.refresh().then((rewritten) => {
      if (rewritten) {
        this.log.warn({ sessions: this.local.size },
          `channels: this node's registration had expired in ${this.engine} (a stall longer than nodeTtl); sessions registered again`)
      }
    }, (err: unknown) => {
      // the engine reports its outage itself; the next tick tries again
      this.log.debug({ err }, 'channels: registration refresh failed')
    })
  }

  async add (sessionId: string): Promise<void> {
    this.local.add(sessionId)
    await this.written(this.store.add(sessionId))
  }

  async remove (sessionId: string): Promise<void> {
    this.local.delete(sessionId)
    await this.written(this.store.remove(sessionId))
  }

  private async written (write: Promise<void>): Promise<void> {
    try {
      await write
    } catch (err) {
      this.synced = false
      throw err
    }
  }

  /** Hands `envelope` to the other node holding `sessionId`; `false` when none does. */
  async route (sessionId: string, envelope: string): Promise<boolean> {
    return await this.store.route(sessionId, envelope)
  }

  /** Stops the upkeep and removes the registration (best effort: it expires anyway). */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    this.local.clear()
    await this.store.unregister()
  }
}
