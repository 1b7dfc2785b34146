/**
 * One node of a channels server: the local sockets, the channel map, the handler registry
 * and the broker connection. It implements the send family: local delivery first, then one
 * hand-off to the broker for the other nodes.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type WebSocket from 'ws'
import { encodeMessage } from '../../schemas/codec.js'
import { CloseCodes, DEFAULT_EVENT } from '../../schemas/protocol.js'
import type { BrokerConnection, BrokerNode, Delivery, HistoryPublication, PresenceChanges, Publication } from '../broker/types.js'
import { ChannelMap } from './channel-map.js'
import { drain } from './drain.js'
import { BrokerUnavailableError, InvalidArgumentError, InvalidChannelError, NoSocketError, UnserializableDataError } from '../errors.js'
import { deliverToAll, deliverToChannels, type Recipient } from '../outbound/frame-writer.js'
import { OutboundFrame } from '../outbound/frame-writer.js'
import { HandlerRegistry } from '../handlers/registry.js'
import type { HeartbeatPeer } from './heartbeat.js'
import { ChannelHistory } from '../history/service.js'
import type { ChannelStep, Member, MembershipServer } from '../channel-steps.js'
import type { ResolvedOptions } from '../options.js'
import { PresenceTracker } from '../presence/tracker.js'
import { PublishFailureLog } from '../broker/publish-failures.js'
import type { BroadcastOptions, SendOptions } from '../types.js'
import { channelNameProblem } from '../../schemas/channel.js'
import { UserDirectory, isUserTopic, type UserSocket } from '../users/directory.js'
import { events, publicationEnd, publicationStart, type PublicationEvent } from '../observability/events.js'
import { isNotice } from './notices.js'
import { StatsKeeper } from './stats.js'
import { RequestRelay, isControl, isReplyTopic, type Askable } from '../requests/relay.js'

/**
 * Where a channel name comes in, it is checked once, against the one rule in
 * schemas/channel.ts. Two entrances, two answers (docs/architecture.md):
 * - a client frame naming a bad channel gets the `INVALID_CHANNEL` error frame (dispatch.ts);
 * - a server-side call (`socket.subscribe`, `socket.send`, `fastify.broadcastChannel`, ...)
 *   throws, or rejects with, `FST_CHANNELS_INVALID_CHANNEL`: a bad name there is a bug in the
 *   app, not something to tell the peer. This is that check: `channel` when it is a valid name.
 */
export function checkedChannel (channel: string): string {
  const problem = channelNameProblem(channel)
  if (problem !== undefined) throw new InvalidChannelError(problem)
  return channel
}

/**
 * The `volatile` option of a send (`send`, `broadcast`, `broadcastChannel`): a boolean or
 * absent, else FST_CHANNELS_INVALID_ARGUMENT naming `method`.
 */
export function volatileOption (options: { volatile?: unknown }, method: string): boolean {
  const { volatile } = options
  if (volatile === undefined || volatile === false) return false
  if (volatile === true) return true
  throw new InvalidArgumentError(`${method}: volatile must be a boolean, got ${typeof volatile}`)
}

/** How long `fastify.close()` waits, after its last batch of 1001 closes, for peers to answer before cutting them off. */
export const shutdownGraceMs = 1000
/** How long `fastify.close()` waits for disconnect/finish handlers before giving up on them. */
export const shutdownHandlersMs = 5000

/** What the node needs of one of its local sockets (a Connection). */
export interface LocalSocket extends Recipient, HeartbeatPeer, UserSocket, Askable {
  sendFrame (frame: string | OutboundFrame): void
  close (code?: number, reason?: string): void
  /** resolves once the socket's disconnect sequence is over */
  readonly finished: Promise<void>
  readonly ws: Pick<WebSocket, 'readyState' | 'ping' | 'terminate'>
}

function timeout (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

export class ChannelServer implements BrokerNode, MembershipServer {
  readonly nodeId = randomBytes(12).toString('base64url')
  readonly sockets = new Map<string, LocalSocket>()
  readonly channels = new ChannelMap<Member>()
  readonly handlers = new HandlerRegistry()
  /** per-channel steps after every join and on every leave (history, presence): see membership.ts */
  readonly channelSteps: ChannelStep[] = []
  /** broker subscriptions under way, awaited by every joiner so `subscribed` means "live everywhere" */
  private readonly subscribing = new Map<string, Promise<void>>()
  private broker: BrokerConnection | undefined
  closing = false
  /** history channels' publishing, delivery and joins; undefined when no channel has history */
  readonly history: ChannelHistory | undefined
  readonly presence: PresenceTracker
  /** one warn line per run of failed publishes, not one per publish */
  private readonly publishFailures: PublishFailureLog
  /** the connections of each user, and the user commands over every node (users/directory.ts) */
  readonly users: UserDirectory
  /** counters, `stats()`, `nodes()` and the notices between nodes (stats.ts) */
  readonly stats: StatsKeeper
  /** `fastify.channels.ask` for sessions on other nodes (requests/relay.ts) */
  readonly requests: RequestRelay

  constructor (readonly options: ResolvedOptions, readonly log: FastifyBaseLogger) {
    this.history = options.history === undefined
      ? undefined
      : new ChannelHistory(options.history, () => this.broker, (channel) => this.channels.get(channel), log)
    this.presence = new PresenceTracker(options.presence, log)
    this.publishFailures = new PublishFailureLog(log)
    this.users = new UserDirectory(() => this.broker, log)
    this.requests = new RequestRelay(this.nodeId, () => this.broker, (sessionId) => this.sockets.get(sessionId), log)
    if (options.presence !== false) this.channelSteps.unshift(this.presence.channelStep(this.channels))
    this.stats = new StatsKeeper({
      nodeId: this.nodeId,
      sockets: () => this.sockets.size,
      channels: () => this.channels.size,
      subscriptions: () => this.channels.subscriptions,
      closing: () => this.closing,
      subscribers: (channel) => this.channels.get(channel)?.size ?? 0,
      publish: (frame) => this.broker?.publish({ kind: 'all', frame }),
      closeSession: (sessionId, code, reason) => {
        const socket = this.sockets.get(sessionId)
        socket?.close(code, reason)
        return socket !== undefined
      }
    })
  }

  useBroker (broker: BrokerConnection): void {
    this.broker = broker
    this.presence.useBroker(broker)
  }

  presenceChanged (channel: string, changes: PresenceChanges): void {
    this.presence.changed(channel, changes)
  }

  presenceReload (): void {
    this.presence.reload()
  }

  // ---- BrokerNode: traffic from other nodes ------------------------------------------

  /** `remote`: it came from another node through the broker (the `delivery` event says so). */
  deliver (delivery: Delivery, remote = true): void {
    let count = 0
    switch (delivery.kind) {
      case 'all':
        if (isNotice(delivery.frame)) this.stats.receive(delivery.frame)
        else count = deliverToAll(this.sockets.values(), delivery.frame, delivery.except, delivery.volatile === true)
        break
      case 'channels':
        // The plugin's own topics (names no app channel can have: they start with a space)
        if (delivery.channels[0].charCodeAt(0) === 32) {
          if (isUserTopic(delivery.channels[0])) this.users.deliver(delivery.channels[0], delivery.frames[0])
          else if (isReplyTopic(delivery.channels[0])) this.requests.receiveAnswer(delivery.frames[0])
          break
        }
        count = deliverToChannels((channel) => this.channels.get(channel), delivery.channels, delivery.frames, delivery.except, delivery.volatile === true)
        break
      case 'session': {
        if (isControl(delivery.frame)) {
          this.requests.receiveRequest(delivery.sessionId, delivery.frame)
          break
        }
        const socket = this.sockets.get(delivery.sessionId)
        socket?.sendFrame(delivery.volatile === true ? new OutboundFrame(delivery.frame, true) : delivery.frame)
        if (socket !== undefined) count = 1
        break
      }
    }
    this.stats.deliveries += count
    if (events.delivery.hasSubscribers) {
      events.delivery.publish({ nodeId: this.nodeId, kind: delivery.kind, count, remote, traceContext: delivery.kind === 'session' ? undefined : delivery.traceContext })
    }
  }

  deliverHistory (publication: HistoryPublication): void {
    // one count for the stats and the event: a joiner still catching up gets it later, from its backlog
    const count = this.history?.deliver(publication) ?? 0
    this.stats.deliveries += count
    if (events.delivery.hasSubscribers) {
      events.delivery.publish({ nodeId: this.nodeId, kind: 'history', count, remote: true })
    }
  }

  hasSession (sessionId: string): boolean {
    return this.sockets.has(sessionId)
  }

  // ---- bookkeeping called by connections ----------------------------------------------

  attach (connection: LocalSocket): void {
    this.sockets.set(connection.id, connection)
    this.brokerCall('addSession', connection.id)
  }

  detach (connection: LocalSocket): void {
    if (this.sockets.get(connection.id) !== connection) return
    this.sockets.delete(connection.id)
    this.brokerCall('removeSession', connection.id)
    this.users.remove(connection)
  }

  /** `connection` now holds `channel`; resolves once the broker relays it too. */
  async addToChannel (channel: string, connection: Member): Promise<void> {
    // A history channel holds its publications back from the joiner until it is caught up.
    if (this.history?.covers(channel) === true) this.history.begin(channel, connection)
    if (this.channels.add(channel, connection) && this.broker !== undefined) {
      const ready = this.broker.subscribe(channel).catch((err: unknown) => {
        this.log.warn({ err, channel }, 'channels: broker subscribe failed; cross-node delivery resumes when it is back')
      }).finally(() => {
        if (this.subscribing.get(channel) === ready) this.subscribing.delete(channel)
      })
      this.subscribing.set(channel, ready)
    }
    // Awaited only when there is something to wait for: most joins (a channel already relayed,
    // no presence) go on without a turn of the microtask queue each.
    const subscribing = this.subscribing.get(channel)
    if (subscribing !== undefined) await subscribing
    // Before `subscribed`: the `presence` frame must follow it at once (see the presence step).
    if (this.options.presence !== false) await this.presence.ready(channel)
  }

  removeFromChannel (channel: string, connection: Member): void {
    this.history?.abandon(channel, connection)
    if (this.channels.remove(channel, connection)) this.brokerCall('unsubscribe', channel)
  }

  private brokerCall (method: 'addSession' | 'removeSession' | 'unsubscribe', argument: string): void {
    this.broker?.[method](argument).catch((err: unknown) => {
      this.log.warn({ err, method }, 'channels: broker call failed')
    })
  }

  // ---- the send family -----------------------------------------------------------------

  /** Encodes a message frame once; a payload JSON cannot carry fails with a coded error. */
  encodeMessage (event: string, channel: string | undefined, data: unknown): string {
    try {
      return encodeMessage(event, channel, data)
    } catch (err) {
      throw new UnserializableDataError((err as Error).message)
    }
  }

  /** Local delivery first, then one hand-off to the broker; a failed publish is only logged. */
  private async publish (publication: Publication): Promise<void> {
    this.stats.published(publication.kind === 'channels' ? publication.channels : undefined)
    this.deliver(publication, false)
    if (this.broker === undefined) return
    const observed = publicationStart(this.nodeId, publication.kind, publication.kind === 'all' ? 0 : publication.channels.length)
    // a tracer subscribed to the start may have given the publication a trace context to carry
    if (observed?.traceContext !== undefined) publication.traceContext = observed.traceContext
    try {
      await this.broker.publish(publication)
    } catch (err) {
      if (observed !== undefined) publicationEnd(observed, true)
      this.publishFailures.failed(err, { kind: publication.kind })
      this.stats.note('publish-failed', (err as Error).message)
      return
    }
    if (observed !== undefined) publicationEnd(observed, false)
    this.publishFailures.succeeded()
  }

  async broadcast (data: unknown, options: BroadcastOptions = {}, except?: string): Promise<void> {
    const volatile = volatileOption(options, 'broadcast')
    const frame = this.encodeMessage(options.event ?? DEFAULT_EVENT, undefined, data)
    await this.publish(volatile ? { kind: 'all', frame, except, volatile } : { kind: 'all', frame, except })
  }

  /** `channels` are valid names: checked where they come in (a socket method, a decorator). */
  async broadcastToChannels (channels: string[], data: unknown, options: BroadcastOptions = {}, except?: string): Promise<void> {
    const volatile = volatileOption(options, 'broadcastChannel')
    if (channels.length === 0) return
    const event = options.event ?? DEFAULT_EVENT
    const { history } = this
    // A volatile publication takes no offset and is never stored: history channels included, it goes the plain way.
    if (!volatile && history !== undefined && channels.some((channel) => history.covers(channel))) {
      return await this.broadcastWithHistory(history, channels, event, data, except)
    }
    const frames = channels.map((channel) => this.encodeMessage(event, channel, data))
    await this.publish(volatile ? { kind: 'channels', channels, frames, except, volatile } : { kind: 'channels', channels, frames, except })
  }

  /**
   * Each history channel is a publication of its own (its stream's offsets stay dense for
   * every member); the other channels go out together as usual.
   */
  private async broadcastWithHistory (
    history: ChannelHistory, channels: string[], event: string, data: unknown, except: string | undefined
  ): Promise<void> {
    const plain: string[] = []
    const pending: Array<Promise<void>> = []
    for (const channel of channels) {
      if (!history.covers(channel)) {
        plain.push(channel)
        continue
      }
      const frame = this.encodeMessage(event, channel, data)
      this.stats.published([channel])
      pending.push(this.observedHistoryPublish(history, channel, frame, except))
    }
    if (plain.length > 0) {
      const frames = plain.map((channel) => this.encodeMessage(event, channel, data))
      pending.push(this.publish({ kind: 'channels', channels: plain, frames, except }))
    }
    await Promise.all(pending)
  }

  /** One history publication, as a `publication` event of kind `history` (its failure falls back to local delivery). */
  private async observedHistoryPublish (history: ChannelHistory, channel: string, frame: string, except: string | undefined): Promise<void> {
    const observed: PublicationEvent | undefined = publicationStart(this.nodeId, 'history', 1)
    let failed = false
    await history.publish(channel, frame, except, () => {
      failed = true
      this.deliver({ kind: 'channels', channels: [channel], frames: [frame], except }, false)
    })
    if (observed !== undefined) publicationEnd(observed, failed)
  }

  async sendTo (sessionId: string, data: unknown, options: SendOptions = {}): Promise<void> {
    if (options.channel !== undefined) checkedChannel(options.channel)
    const volatile = volatileOption(options, 'send')
    const frame = this.encodeMessage(options.event ?? DEFAULT_EVENT, options.channel, data)
    const local = this.sockets.get(sessionId)
    if (local !== undefined) {
      local.sendFrame(volatile ? new OutboundFrame(frame, true) : frame)
      this.stats.deliveries++
      return
    }
    if (typeof sessionId !== 'string' || this.broker === undefined) throw new NoSocketError(String(sessionId))
    let found: boolean
    try {
      found = volatile ? await this.broker.sendToSession(sessionId, frame, true) : await this.broker.sendToSession(sessionId, frame)
    } catch (err) {
      throw new BrokerUnavailableError(sessionId, (err as Error).message)
    }
    if (!found) throw new NoSocketError(sessionId)
  }

  // ---- shutdown ------------------------------------------------------------------------

  /**
   * The node's part of `fastify.close()`: no new socket is served (`closing`), the open ones are
   * closed with 1001 in batches spread evenly over `drainMs` (drain.ts; all at once for 0),
   * peers get `shutdownGraceMs` after the last batch to answer the close before the rest are
   * cut off, and their disconnect sequences are awaited so `finish` handlers run before the app
   * is gone.
   */
  async closeAll (): Promise<void> {
    this.closing = true
    const connections = [...this.sockets.values()]
    if (connections.length === 0) return
    const allFinished = Promise.all(connections.map((connection) => connection.finished))
    await drain(connections, this.options.drainMs, (connection) => connection.close(CloseCodes.GOING_AWAY, 'server shutting down'),
      allFinished)
    await Promise.race([allFinished, timeout(shutdownGraceMs)])
    for (const connection of connections) connection.ws.terminate()
    await Promise.race([allFinished, timeout(shutdownHandlersMs)])
  }

  async closeBroker (): Promise<void> {
    await this.stats.close() // its goodbye leaves before the broker goes
    this.presence.close()
    this.publishFailures.close()
    this.users.close()
    this.requests.close()
    this.history?.publishFailures.close()
    const broker = this.broker
    this.broker = undefined
    if (broker === undefined) return
    try {
      await broker.close()
    } catch (err) {
      this.log.warn({ err }, 'channels: broker close failed')
    }
  }
}
