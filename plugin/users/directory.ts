/**
 * Users on the node: which local connections belong to which user, and the user's commands
 * (`fastify.channels.user(id).send / disconnect / sessions`) over every node, built on what
 * every broker already carries, with no method of its own in an engine:
 *
 * - each user has a *user topic*, a channel name no app channel can have (it starts with a
 *   space, which channel names never hold, then the SHA-256 of the user id in base64url: any
 *   id fits the one-line envelope format in a name of fixed length). A node with a connection of the user subscribes the topic;
 *   `send` and `disconnect` are publications on it, so they reach exactly the nodes that hold
 *   the user, once each;
 * - the user's sessions are presence tracks in the user topic (ref = session id): the broker's
 *   presence store lists them over every node and reaps a dead node's, as for app channels.
 *   A broker that shares no presence gives this node's own sessions.
 *
 * A `disconnect` travels as a control text instead of a message frame: it starts with a NUL
 * character, which no JSON frame does, and never reaches a socket.
 */
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { UserHandle, UserLookup } from '../types.js'
import { sharesPresence, type BrokerConnection } from '../broker/types.js'
import { BrokerUnavailableError, InvalidArgumentError } from '../errors.js'
import { deliverToAll, type Recipient } from '../outbound/frame-writer.js'
import { PublishFailureLog } from '../broker/publish-failures.js'

export type { UserHandle, UserLookup }

/** What the directory needs of a local connection. */
export interface UserSocket extends Recipient {
  readonly user?: string
  close (code?: number, reason?: string): void
}

/** longest user id, in UTF-16 code units */
export const maxUserIdLength = 1024
const topicPrefix = ' user:'
const controlMark = '\u0000'

/** The user topic of `userId` (see the header): 49 characters, whatever the id's length. */
export function userTopic (userId: string): string {
  return topicPrefix + createHash('sha256').update(userId).digest('base64url')
}

/** Whether a channel name is a user topic: one character compare for every app channel. */
export function isUserTopic (channel: string): boolean {
  return channel.charCodeAt(0) === 32 && channel.startsWith(topicPrefix)
}

/** A user id the `user` option or a caller gave: a non-empty string of at most maxUserIdLength. */
export function userIdProblem (userId: unknown): string | undefined {
  if (typeof userId !== 'string') return `a user id is a string, got ${typeof userId}`
  if (userId.length === 0 || userId.length > maxUserIdLength) return `a user id has 1 to ${maxUserIdLength} characters`
  return undefined
}

/** Close codes an app may send (RFC 6455 §7.4 and the 3000–4999 range). */
function isCloseCode (code: unknown): code is number {
  return typeof code === 'number' && Number.isInteger(code) &&
    ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999))
}

interface CloseCommand { close: number, reason: string }

/** Encodes a message frame (checks the channel name; a payload JSON cannot carry throws). */
export type EncodeMessage = (data: unknown, options: { event?: string, channel?: string }) => string

export class UserDirectory {
  /** user topic → this node's connections of that user */
  private readonly local = new Map<string, Set<UserSocket>>()
  private readonly publishFailures: PublishFailureLog

  constructor (private readonly broker: () => BrokerConnection | undefined, private readonly log: FastifyBaseLogger) {
    this.publishFailures = new PublishFailureLog(log)
  }

  /** `fastify.channels.user(userId)`; a bad id throws FST_CHANNELS_INVALID_ARGUMENT. */
  handle (userId: string, encode: EncodeMessage): UserHandle {
    const problem = userIdProblem(userId)
    if (problem !== undefined) throw new InvalidArgumentError(`user: ${problem}`)
    return {
      send: async (data, options = {}) => await this.send(userId, encode(data, options)),
      disconnect: async (code = 1008, reason = '') => await this.disconnect(userId, code, reason),
      sessions: async () => await this.sessions(userId)
    }
  }

  /** `socket` (with a user) is open: subscribes its user topic and lists its session; resolves once both are written. */
  async add (socket: UserSocket): Promise<void> {
    if (socket.user === undefined) return
    const topic = userTopic(socket.user)
    let sockets = this.local.get(topic)
    const first = sockets === undefined
    if (sockets === undefined) this.local.set(topic, sockets = new Set())
    sockets.add(socket)
    const broker = this.broker()
    if (broker === undefined) return
    const writes: Array<Promise<void>> = []
    if (first) writes.push(broker.subscribe(topic))
    if (sharesPresence(broker)) writes.push(broker.presenceUpdate(topic, { joins: [{ ref: socket.id, key: socket.user, meta: '{}' }], leaves: [] }))
    try {
      await Promise.all(writes)
    } catch (err) {
      this.log.warn({ err }, 'channels: the broker could not record a user session; it is written again when the broker is back')
    }
  }

  /** `socket` closed: out of its user's list (and the topic unsubscribed after the user's last local connection). */
  remove (socket: UserSocket): void {
    if (socket.user === undefined) return
    const topic = userTopic(socket.user)
    const sockets = this.local.get(topic)
    if (sockets?.delete(socket) !== true) return
    const broker = this.broker()
    if (sockets.size === 0) {
      this.local.delete(topic)
      broker?.unsubscribe(topic).catch((err: unknown) => this.log.warn({ err }, 'channels: broker unsubscribe failed'))
    }
    if (broker !== undefined && sharesPresence(broker)) {
      broker.presenceUpdate(topic, { joins: [], leaves: [socket.id] })
        .catch((err: unknown) => this.log.warn({ err }, 'channels: the broker could not remove a user session'))
    }
  }

  /** The session ids of `userId` over every node (this node's only when the broker shares no presence). */
  async sessions (userId: string): Promise<string[]> {
    const topic = userTopic(userId)
    const broker = this.broker()
    if (broker === undefined || !sharesPresence(broker)) return [...this.local.get(topic) ?? []].map((socket) => socket.id)
    let tracks
    try {
      tracks = await broker.presenceState(topic)
    } catch (err) {
      throw new BrokerUnavailableError(`of user ${JSON.stringify(userId)}`, (err as Error).message)
    }
    return [...new Set(tracks.map((track) => track.ref))]
  }

  /** `frame` (an encoded message frame) to every connection of `userId`: local ones first, then one publication. */
  async send (userId: string, frame: string): Promise<void> {
    const topic = userTopic(userId)
    const sockets = this.local.get(topic)
    if (sockets !== undefined) deliverToAll(sockets, frame)
    await this.publish(topic, frame)
  }

  /** Closes every connection of `userId` [1008: the bundled client does not reconnect]. */
  async disconnect (userId: string, code: unknown, reason: unknown): Promise<void> {
    if (!isCloseCode(code)) throw new InvalidArgumentError(`disconnect: ${String(code)} is not a close code an app may send`)
    if (typeof reason !== 'string') throw new InvalidArgumentError('disconnect: the reason must be a string')
    const command: CloseCommand = { close: code, reason }
    const topic = userTopic(userId)
    this.run(topic, command)
    await this.publish(topic, controlMark + JSON.stringify(command))
  }

  /** A publication on a user topic from another node (a message frame or a control text). */
  deliver (topic: string, frame: string): void {
    if (frame.charCodeAt(0) !== 0) {
      const sockets = this.local.get(topic)
      if (sockets !== undefined) deliverToAll(sockets, frame)
      return
    }
    let command: unknown
    try {
      command = JSON.parse(frame.slice(1))
    } catch {
      return
    }
    const { close, reason } = command as Partial<CloseCommand>
    if (isCloseCode(close) && typeof reason === 'string') this.run(topic, { close, reason })
  }

  private run (topic: string, { close, reason }: CloseCommand): void {
    for (const socket of [...this.local.get(topic) ?? []]) socket.close(close, reason)
  }

  /** A failed publish is logged, never thrown: local delivery happened. */
  private async publish (topic: string, frame: string): Promise<void> {
    const broker = this.broker()
    if (broker === undefined) return
    try {
      await broker.publish({ kind: 'channels', channels: [topic], frames: [frame] })
    } catch (err) {
      this.publishFailures.failed(err, { kind: 'user' })
      return
    }
    this.publishFailures.succeeded()
  }

  close (): void {
    this.publishFailures.close()
  }
}
