/**
 * One node's link to Redis: a publisher connection (commands, the session registry) and a
 * subscriber connection (pub/sub only). Redis channels, under the app's prefix:
 *
 *   <prefix>:all            every node: broadcasts to all sockets
 *   <prefix>:node:<nodeId>  this node only: direct sends to a session it holds
 *   <prefix>:ch:<channel>   nodes with a local subscriber of <channel>, and only while they have one
 *
 * Both connections run without ioredis' offline queue, so while Redis is unreachable every
 * call rejects at once instead of piling up; the plugin logs the rejection and goes on
 * delivering locally. When Redis is back, this node subscribes again to every channel it
 * needs and registers its sessions again: it keeps its own record of both.
 */
import type { Redis } from 'ioredis'
import type { BrokerConnection, BrokerNode, PresenceBroker, PresenceChanges, PresenceTrack, Publication } from './types.js'
import { RecentIds, decodeEnvelope, encodePublication, encodeSessionSend } from './redis-envelope.js'
import { quit, ready } from './redis-client.js'
import { SessionRegistry, execAll } from './redis-sessions.js'
import { Subscriptions } from './redis-subscriptions.js'
import { RedisPresence } from './redis-presence.js'

export interface ConnectionSettings {
  prefix: string
  nodeTtl: number
}

export class RedisConnection implements BrokerConnection, PresenceBroker {
  private readonly recent = new RecentIds()
  private readonly presence: RedisPresence
  private readonly sessions: SessionRegistry
  private readonly subscriptions: Subscriptions
  private seq = 0
  /** set while Redis is unreachable, so an outage is logged once, not once per retry */
  private outage = false
  private closed = false

  private constructor (
    private readonly node: BrokerNode,
    private readonly pub: Redis,
    private readonly sub: Redis,
    settings: ConnectionSettings
  ) {
    this.subscriptions = new Subscriptions(sub, settings.prefix, node.nodeId)
    this.sessions = new SessionRegistry(pub, settings.prefix, node.nodeId, settings.nodeTtl, (err) => this.lost(err))
    this.presence = new RedisPresence(pub, sub, node, { ...settings, redisChannel: (channel) => this.subscriptions.redisChannel(channel) })
  }

  /** Waits for both connections, subscribes the node-wide channels, registers the node. */
  static async open (node: BrokerNode, pub: Redis, sub: Redis, settings: ConnectionSettings): Promise<RedisConnection> {
    try {
      await Promise.all([ready(pub), ready(sub)])
    } catch (err) {
      pub.disconnect()
      sub.disconnect()
      throw new Error(`fastify-channels: cannot connect to redis: ${(err as Error).message}`, { cause: err })
    }
    const connection = new RedisConnection(node, pub, sub, settings)
    try {
      await connection.subscriptions.subscribeAll()
      await connection.sessions.start()
      connection.presence.start()
    } catch (err) {
      await connection.close()
      throw err
    }
    connection.listen()
    return connection
  }

  private listen (): void {
    for (const client of [this.pub, this.sub]) {
      client.on('error', (err: Error) => this.lost(err))
      // a Redis that went away closes the connection without an error; the retries error later
      client.on('close', () => this.lost(new Error(`redis connection ${client.options.connectionName ?? ''} closed`)))
      client.on('end', () => {
        if (!this.closed) this.node.log.error('channels: a redis connection ended for good; cross-node delivery is off until restart')
      })
    }
    this.sub.on('message', (_channel: string, text: string) => this.receive(text))
    this.sub.on('ready', () => {
      this.subscriptions.subscribeAll().then(() => this.back(), (err: unknown) => this.lost(err))
    })
    this.pub.on('ready', () => {
      this.sessions.sync().then(() => this.back(), (err: unknown) => this.lost(err))
    })
  }

  private lost (err: unknown): void {
    if (this.closed) return
    if (this.outage) {
      this.node.log.debug({ err }, 'channels: redis still unreachable')
      return
    }
    this.outage = true
    this.node.log.warn({ err }, 'channels: redis unreachable; delivering to local sockets only until it is back')
  }

  private back (): void {
    if (!this.outage || this.closed || this.pub.status !== 'ready' || this.sub.status !== 'ready') return
    this.outage = false
    this.node.log.info({ channels: this.subscriptions.local.size, sessions: this.sessions.local.size },
      'channels: redis is back; channels resubscribed and sessions registered again')
  }

  private receive (text: string): void {
    if (text.charCodeAt(0) === 112) return this.presence.receive(text) // 'p': see redis-presence.ts
    const envelope = decodeEnvelope(text)
    if (envelope === undefined) {
      this.node.log.warn('channels: dropped a redis message this version cannot read (another version on the same prefix?)')
      return
    }
    if (envelope.nodeId === this.node.nodeId) return // our own echo: delivered locally already
    if (envelope.dedupeKey !== undefined && !this.recent.firstTime(envelope.dedupeKey)) return
    try {
      this.node.deliver(envelope.delivery)
    } catch (err) {
      this.node.log.error({ err }, 'channels: delivering a message from redis failed')
    }
  }

  // ---- BrokerConnection ------------------------------------------------------------------

  async publish (publication: Publication): Promise<void> {
    const payload = encodePublication(this.node.nodeId, publication, ++this.seq)
    const { subscriptions } = this
    if (publication.kind === 'all') {
      await this.pub.publish(subscriptions.allChannel, payload)
    } else if (publication.channels.length === 1) {
      await this.pub.publish(subscriptions.redisChannel(publication.channels[0]), payload)
    } else {
      // One copy per channel, so only nodes with subscribers get it; in one MULTI so the copies
      // reach each node back to back, and a node holding several of the channels keeps one.
      const multi = this.pub.multi()
      for (const channel of publication.channels) multi.publish(subscriptions.redisChannel(channel), payload)
      await execAll(multi)
    }
  }

  async subscribe (channel: string): Promise<void> {
    await this.subscriptions.add(channel)
  }

  async unsubscribe (channel: string): Promise<void> {
    await this.subscriptions.remove(channel)
  }

  async addSession (sessionId: string): Promise<void> {
    await this.sessions.add(sessionId)
  }

  async removeSession (sessionId: string): Promise<void> {
    await this.sessions.remove(sessionId)
  }

  async sendToSession (sessionId: string, frame: string): Promise<boolean> {
    const receivers = await this.sessions.send(sessionId, encodeSessionSend(sessionId, frame))
    if (receivers < 0) throw new Error('the node holding the session is not connected to redis')
    return receivers > 0
  }

  async presenceUpdate (channel: string, changes: PresenceChanges): Promise<void> {
    await this.presence.update(channel, changes)
  }

  async presenceState (channel: string): Promise<PresenceTrack[]> {
    return await this.presence.state(channel)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.presence.stop().catch(() => {}) // best effort: other nodes reap what is left
    await this.sessions.stop().catch(() => {}) // best effort: the registration expires anyway
    await Promise.all([quit(this.pub), quit(this.sub)])
  }
}
