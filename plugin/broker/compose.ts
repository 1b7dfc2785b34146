/**
 * `composeBroker`: a Broker made of an engine's parts (parts.ts). Per node, the core encodes
 * every publication once into one envelope (envelope.ts), picks its topics, drops its own
 * echoes and the extra copies of a multi-channel publication, delivers what comes in to the
 * node, keeps the node's records (the channels it subscribes, the sessions it holds, its
 * presence tracks) and writes them again whenever the engine says it may have lost them.
 *
 * Delivery promises: a node never gets its own plain publications back (it delivered them to
 * its sockets already); history publications come back to every node, their publisher
 * included, in the order of their offsets; a send to a session goes out after everything the
 * node published before it.
 */
import { RecentIds } from './recent-ids.js'
import { decodeEnvelope, decodeHistoryEntry, encodePublication, encodeSessionSend, historyAppend } from './envelope.js'
import type { BrokerEngine, EngineParts, HistoryStore, Topic, Transport } from './parts.js'
import { PresenceSync } from './presence-sync.js'
import { SessionRegistry } from './registry.js'
import type {
  Broker, BrokerConnection, BrokerNode, HistoryEntry, HistoryLimits, HistoryQuery, HistoryRead, PresenceBroker, PresenceChanges,
  PresenceTrack, Publication
} from './types.js'

const allTopics: readonly Topic[] = [{ kind: 'all' }]

function channelTopic (channel: string): Topic {
  return { kind: 'channel', channel }
}

/** The Broker of `engine`: every Fastify node that connects gets its own parts, composed here. */
export function composeBroker (engine: BrokerEngine): Broker {
  return {
    async connect (node: BrokerNode): Promise<BrokerConnection> {
      // the engine may call back before connect resolves: nothing is subscribed yet, so nothing to do
      const set: { core?: NodeCore } = {}
      const parts = await engine.connect({
        nodeId: node.nodeId,
        log: node.log,
        receive: (envelope) => set.core?.receive(envelope),
        restore: async () => {
          if (set.core === undefined) throw new Error('the node is not set up yet')
          return await set.core.restore()
        }
      })
      const core = set.core = new NodeCore(engine.name, node, parts)
      await core.open()
      return core.connection()
    }
  }
}

/** One node's side of the composed broker. */
class NodeCore {
  private readonly transport: Transport
  private readonly registry: SessionRegistry
  private readonly presence: PresenceSync | undefined
  private readonly recent = new RecentIds()
  private readonly selfTopics: readonly Topic[]
  /** the app channels this node has local subscribers of, whatever the engine knows */
  private readonly channels = new Set<string>()
  private seq = 0
  private closed = false

  constructor (private readonly engine: string, private readonly node: BrokerNode, private readonly parts: EngineParts) {
    this.transport = parts.transport
    this.registry = new SessionRegistry(parts.registry, node.log, engine)
    this.presence = parts.presence === undefined ? undefined : new PresenceSync(parts.presence, parts.registry, node, engine)
    this.selfTopics = [...allTopics, { kind: 'node', nodeId: node.nodeId }]
  }

  /** Subscribes the node-wide topics and registers the node; on failure closes what the engine opened. */
  async open (): Promise<void> {
    try {
      await this.transport.subscribe(this.selfTopics)
      await this.registry.sync()
    } catch (err) {
      this.closed = true
      await this.parts.close()
      throw err
    }
    this.registry.start()
    this.presence?.start()
    this.parts.start?.()
  }

  /** Subscribes and registers everything again (see EngineNode.restore); nothing once the node is closing. */
  async restore (): Promise<{ channels: number, sessions: number }> {
    if (this.closed) return { channels: 0, sessions: 0 } // a node on its way out registers nothing again
    const topics = [...this.selfTopics, ...[...this.channels].map(channelTopic)]
    await Promise.all([this.transport.subscribe(topics), this.registry.sync()])
    this.presence?.resync()
    return { channels: this.channels.size, sessions: this.registry.local.size }
  }

  receive (text: string): void {
    const envelope = decodeEnvelope(text)
    if (envelope === undefined) {
      this.node.log.warn(`channels: dropped a ${this.engine} message this version cannot read (another version on the same prefix?)`)
      return
    }
    try {
      switch (envelope.kind) {
        case 'history': // every node delivers them, the publisher too
          this.node.deliverHistory?.(envelope.publication)
          return
        case 'presence':
          this.presence?.receive(envelope.nodeId, envelope.channel, envelope.changes)
          return
        case 'session':
          this.node.deliver(envelope.delivery)
          return
        case 'channels':
          if (envelope.nodeId === this.node.nodeId) return // our own echo: delivered locally already
          if (envelope.dedupeKey !== undefined && !this.recent.firstTime(envelope.dedupeKey)) return
          this.node.deliver(envelope.delivery)
          return
        case 'all':
          if (envelope.nodeId === this.node.nodeId) return
          this.node.deliver(envelope.delivery)
      }
    } catch (err) {
      this.node.log.error({ err }, `channels: delivering a message from ${this.engine} failed`)
    }
  }

  /** The BrokerConnection the plugin uses: a plain object, with the history and presence methods only when the engine has those stores. */
  connection (): BrokerConnection {
    const connection: BrokerConnection = {
      publish: (publication) => this.publish(publication),
      subscribe: async (channel) => {
        this.channels.add(channel)
        await this.transport.subscribe([channelTopic(channel)])
      },
      unsubscribe: async (channel) => {
        this.channels.delete(channel)
        await this.transport.unsubscribe([channelTopic(channel)])
      },
      addSession: async (sessionId) => await this.registry.add(sessionId),
      removeSession: async (sessionId) => await this.registry.remove(sessionId),
      sendToSession: async (sessionId, frame, volatile) => {
        this.transport.flush?.() // what this node published before the send leaves before it
        return await this.registry.route(sessionId, encodeSessionSend(sessionId, frame, volatile === true))
      },
      close: async () => await this.close()
    }
    const { history } = this.parts
    if (history !== undefined) {
      connection.publishHistory = async (channel, frame, except, limits) => await this.publishHistory(history, channel, frame, except, limits)
      connection.readHistory = async (channel, query, limits) => await this.readHistory(history, channel, query, limits)
    }
    const { presence } = this
    if (presence === undefined) return connection
    const shared: BrokerConnection & PresenceBroker = {
      ...connection,
      presenceUpdate: async (channel: string, changes: PresenceChanges) => await presence.update(channel, changes),
      presenceState: async (channel: string): Promise<PresenceTrack[]> => await presence.state(channel)
    }
    return shared
  }

  /**
   * The hot path, without an async frame of its own (one would cost every publication a
   * promise and an await): the transport's promise is handed back as it is, and a throw
   * becomes a rejection here.
   */
  private publish (publication: Publication): Promise<void> {
    try {
      const envelope = encodePublication(this.node.nodeId, publication, ++this.seq)
      const topics = publication.kind === 'all' ? allTopics : publication.channels.map(channelTopic)
      return this.transport.publish(topics, envelope)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private async publishHistory (
    store: HistoryStore, channel: string, frame: string, except: string | undefined, limits: HistoryLimits
  ): Promise<number> {
    const { offset } = await store.append(channel, historyAppend(channel, frame, except), limits)
    return offset
  }

  private async readHistory (store: HistoryStore, channel: string, query: HistoryQuery, limits: HistoryLimits): Promise<HistoryRead> {
    const read = await store.read(channel, query, limits)
    const entries: HistoryEntry[] = []
    for (const stored of read.entries) {
      const entry = decodeHistoryEntry(stored.offset, stored.entry)
      if (entry === undefined) throw new Error(`history entry ${stored.offset} of ${channel} is not one this version wrote`)
      entries.push(entry)
    }
    return { epoch: read.epoch, offset: read.offset, entries, complete: read.complete }
  }

  private async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.presence?.stop().catch(() => {}) // best effort: other nodes reap what is left
    await this.registry.stop().catch(() => {}) // best effort: the registration expires anyway
    await this.parts.close()
  }
}
