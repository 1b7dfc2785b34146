/**
 * One node's link to Redis: a publisher connection (commands, the session registry) and a
 * subscriber connection (pub/sub only); on a Redis Cluster each is an ioredis `Cluster` (the
 * subscriber one with sharded subscribers: one connection per master). Redis channels (names
 * from RedisKeys, classic or sharded pub/sub from PubSubMode):
 *
 *   {<prefix>}:all              every node: broadcasts to all sockets
 *   {<prefix>}:node:<nodeId>    this node only: direct sends to a session it holds
 *   <prefix>:ch:{<channel>}     nodes with a local subscriber of <channel>, and only while they have one
 *
 * Nothing waits for Redis: calls reject at once while it is unreachable, give up after
 * `commandTimeout` while it hangs (the connection is then reset), and are refused past a
 * bounded backlog; the plugin logs the rejection and goes on delivering locally. Publications
 * carry a deadline that Redis enforces (see RedisClock), so what was reported failed is not
 * delivered when Redis wakes up. When Redis is back, this node subscribes again to every
 * channel it needs and registers its sessions again: it keeps its own record of both.
 *
 * A tick (a third of `nodeTtl`) keeps the registration alive, checks that the subscriber
 * connection still answers, and while an outage lasts, retries the recovery. On a cluster a
 * shard that fails over (a replica promoted) is such an outage: the lost connection to its
 * master begins it, and it ends once the node has subscribed and registered everything again.
 */
import type { Redis } from 'ioredis'
import type {
  BrokerConnection, BrokerNode, HistoryLimits, HistoryQuery, HistoryRead, PresenceBroker, PresenceChanges, PresenceTrack, Publication
} from '../types.js'
import { RedisHistory } from './history.js'
import { RecentIds, decodeEnvelope, encodePublication, encodeSessionSend } from './envelope.js'
import { connectMasters, onLostClusterNode, quit, ready } from './client.js'
import { RedisClock } from './clock.js'
import { Health } from './health.js'
import { RedisKeys } from './keys.js'
import { Link } from './link.js'
import type { PubSubMode } from './pubsub.js'
import { Publisher } from './publisher.js'
import { SessionRegistry } from './sessions.js'
import { Subscriptions } from './subscriptions.js'
import { RedisPresence } from './presence.js'

export interface ConnectionSettings {
  prefix: string
  nodeTtl: number
  commandTimeout: number
  /** classic pub/sub on one Redis, sharded on a cluster */
  pubsub: PubSubMode
}

export class RedisConnection implements BrokerConnection, PresenceBroker {
  private readonly recent = new RecentIds()
  private readonly keys: RedisKeys
  private readonly presence: RedisPresence
  private readonly clock = new RedisClock()
  private readonly health: Health
  private readonly pub: Link
  private readonly sub: Link
  private readonly sessions: SessionRegistry
  private readonly subscriptions: Subscriptions
  private readonly publisher: Publisher
  private readonly history: RedisHistory
  /** how long after a call Redis may still act on it: half the timeout, the other half is for the answer */
  private readonly budget: number
  private seq = 0
  private timer: NodeJS.Timeout | undefined
  private recovering = false
  /** counts connections (re)established: a recovery that saw one more during its run starts over */
  private readies = 0
  private closed = false

  /** Whatever the cause; silent once `close()` began (closing the connections is no outage). */
  private readonly lost = (err: unknown): void => {
    if (!this.closed) this.health.lost(err)
  }

  private constructor (private readonly node: BrokerNode, pub: Redis, sub: Redis, private readonly settings: ConnectionSettings) {
    this.health = new Health(node.log)
    this.pub = new Link(pub, settings.commandTimeout, this.lost)
    this.sub = new Link(sub, settings.commandTimeout, this.lost)
    this.budget = Math.max(Math.floor(settings.commandTimeout / 2), 1)
    this.keys = new RedisKeys(settings.prefix)
    this.subscriptions = new Subscriptions(this.sub, this.keys, settings.pubsub, node.nodeId, this.lost)
    this.history = new RedisHistory(this.pub, node, { keys: this.keys, pubsub: settings.pubsub })
    this.sessions = new SessionRegistry(this.pub, this.clock, this.keys, settings.pubsub, node.nodeId, settings.nodeTtl)
    this.publisher = new Publisher(this.pub, this.clock, this.budget, () => this.health.drop(), settings.pubsub)
    // keys and pubsub ride along for presence (it names its keys and publishes the same way)
    const presenceSettings = { ...settings, keys: this.keys, redisChannel: (channel: string) => this.subscriptions.redisChannel(channel) }
    this.presence = new RedisPresence(this.pub, this.sub, node, presenceSettings)
  }

  /** Waits for both connections, subscribes the node-wide channels, registers the node. */
  static async open (node: BrokerNode, pub: Redis, sub: Redis, settings: ConnectionSettings): Promise<RedisConnection> {
    try {
      await Promise.all([ready(pub, settings.commandTimeout), ready(sub, settings.commandTimeout)])
      await connectMasters(pub, settings.commandTimeout)
    } catch (err) {
      pub.disconnect()
      sub.disconnect()
      throw new Error(`fastify-channels: cannot connect to redis: ${(err as Error).message}`, { cause: err })
    }
    const connection = new RedisConnection(node, pub, sub, settings)
    try {
      await connection.subscriptions.subscribeAllAtStart(settings.commandTimeout)
      await connection.sessions.sync()
      connection.presence.start()
    } catch (err) {
      await connection.close()
      throw err
    }
    connection.listen()
    connection.timer = setInterval(() => connection.tick(), Math.max(Math.floor(settings.nodeTtl / 3), 50))
    connection.timer.unref()
    return connection
  }

  private listen (): void {
    for (const link of [this.pub, this.sub]) {
      link.client.on('error', this.lost)
      // a Redis that went away closes the connection without an error; the retries error later
      link.client.on('close', () => this.lost(new Error(`redis connection ${link.name} closed`)))
      link.client.on('end', () => {
        if (!this.closed) this.node.log.error('channels: a redis connection ended for good; cross-node delivery is off until restart')
      })
      link.client.on('ready', () => {
        this.readies++
        this.recover()
      })
      // a cluster client lost its connection to a shard (a master failing over, say): its
      // channels are deaf until the node has subscribed again; the tick recovers
      onLostClusterNode(link.client, (key) => this.lost(new Error(`redis connection ${link.name} lost cluster node ${key}`)))
    }
    this.sub.client.on(this.settings.pubsub.messageEvent, (_channel: string, text: string) => this.receive(text))
  }

  /** Every third of the TTL: keep the registration alive; recover while down, else check both connections answer. */
  private tick (): void {
    if (this.closed) return
    this.pub.checkHandshake()
    this.sub.checkHandshake()
    if (!this.health.up) {
      // Keep the registration alive wherever Redis still takes it: on a cluster, a shard failing
      // over elsewhere (for longer than nodeTtl, as with the default cluster-node-timeout) must
      // not make this node look dead to the others, its sessions unfindable, its presence reaped.
      // A failure here is the outage's own, already logged.
      this.sessions.refresh().catch(() => {})
      this.recover()
      return
    }
    this.health.reportDrops()
    this.sessions.refresh().then((rewritten) => {
      if (rewritten) {
        this.node.log.warn({ sessions: this.sessions.local.size },
          'channels: this node\'s registration had expired in redis (a stall longer than nodeTtl); sessions registered again')
      }
    }, this.lost)
    this.subscriptions.ping().catch(this.lost)
  }

  /**
   * Subscribes and registers everything again, then ends the outage. Runs when a connection
   * is (re)established and on every tick of an outage, whatever caused it.
   */
  private recover (): void {
    if (this.recovering || this.closed || !this.pub.ready || !this.sub.ready) return
    this.recovering = true
    const readies = this.readies
    connectMasters(this.pub.client, this.settings.commandTimeout).then(async () => {
      await Promise.all([this.subscriptions.subscribeAll(), this.sessions.sync()])
    }).then(() => {
      if (readies === this.readies && this.pub.ready && this.sub.ready) {
        this.health.back({ channels: this.subscriptions.local.size, sessions: this.sessions.local.size })
        this.presence.resync()
      }
    }, this.lost).finally(() => {
      this.recovering = false
      if (readies !== this.readies) this.recover()
    })
  }

  private receive (text: string): void {
    if (this.history.receive(text)) return // history publications: every node delivers them, the publisher too
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
    // One copy per channel, so only nodes with subscribers get it; in one script so the copies
    // reach each node back to back, and a node holding several of the channels keeps one.
    const channels = publication.kind === 'all'
      ? [subscriptions.allChannel]
      : publication.channels.map((channel) => subscriptions.redisChannel(channel))
    await this.publisher.publish(channels, payload)
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
    this.publisher.flush() // publications made before this send leave before it
    let result: number
    try {
      result = await this.sessions.send(sessionId, encodeSessionSend(sessionId, frame), this.budget)
    } catch (err) {
      this.health.drop()
      throw err
    }
    if (result === -2) {
      this.health.drop()
      throw new Error('redis got the send after its deadline: not delivered')
    }
    if (result === -1) throw new Error('the node holding the session is not connected to redis')
    return result > 0
  }

  async publishHistory (channel: string, frame: string, except: string | undefined, limits: HistoryLimits): Promise<number> {
    return await this.history.publish(channel, frame, except, limits)
  }

  async readHistory (channel: string, query: HistoryQuery, limits: HistoryLimits): Promise<HistoryRead> {
    return await this.history.read(channel, query, limits)
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
    clearInterval(this.timer)
    await this.sessions.stop().catch(() => {}) // best effort: the registration expires anyway
    await Promise.all([quit(this.pub.client), quit(this.sub.client)])
  }
}
