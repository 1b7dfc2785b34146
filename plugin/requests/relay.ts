/**
 * `fastify.channels.ask(sessionId, ...)` on whichever node holds the session, built on what
 * every broker already carries, with no method of its own in an engine:
 *
 * - the asking node sends the request as a control text through the broker's cross-node
 *   `send` routing (`sendToSession`): it reaches the node holding the session, which asks its
 *   socket (`socket.ask`, the same timeout);
 * - that node publishes the outcome on the asking node's *reply topic*, a channel topic only
 *   the asking node subscribes (` node:` + its node id: a name that starts with a space, so no
 *   app channel can have it), subscribed on its first remote ask.
 *
 * Control texts start with a NUL character, which no JSON frame does, and never reach a
 * socket. The asking node keeps its own timer (the timeout and a grace for the trip back), so
 * a node that dies with the request leaves no promise hanging; at most `maxRelayedRequests`
 * wait at once on a node.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { BrokerConnection } from '../broker/types.js'
import {
  BrokerUnavailableError, ClientRequestError, DisconnectedError, NoSocketError, RequestTimeoutError, TooManyRequestsError,
  UnserializableDataError
} from '../errors.js'
import { askTimeout, maxPendingRequests, type AskOptions } from './pending.js'

/** requests a node may have waiting on other nodes at once */
export const maxRelayedRequests = 10_000
/** ms the asking node waits past the timeout for the holder's answer (which reports the timeout itself) */
export const relayGraceMs = 1000

const controlMark = '\u0000'
const topicPrefix = ' node:'

/** What the relay needs of a local socket. */
export interface Askable {
  ask (event: string, data?: unknown, options?: AskOptions): Promise<unknown>
}

/** The reply topic of `nodeId` (see the header). */
export function replyTopic (nodeId: string): string {
  return topicPrefix + nodeId
}

export function isReplyTopic (channel: string): boolean {
  return channel.charCodeAt(0) === 32 && channel.startsWith(topicPrefix)
}

/** Whether a frame handed to the node is a control text (a relayed request or its answer). */
export function isControl (frame: string): boolean {
  return frame.charCodeAt(0) === 0
}

interface AskCommand { ask: number, from: string, event: string, timeout: number, data?: unknown }
interface Outcome { answer: number, data?: unknown, error?: { code: string, clientCode?: string, message: string } }

interface Waiting {
  sessionId: string
  event: string
  timeout: number
  resolve (value: unknown): void
  reject (error: Error): void
  timer: NodeJS.Timeout
}

function parse (text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text.slice(1))
    return value !== null && typeof value === 'object' ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

export class RequestRelay {
  private readonly waiting = new Map<number, Waiting>()
  private lastId = 0
  private subscribed: Promise<void> | undefined

  constructor (
    private readonly nodeId: string,
    private readonly broker: () => BrokerConnection | undefined,
    private readonly local: (sessionId: string) => Askable | undefined,
    private readonly log: FastifyBaseLogger
  ) {}

  async ask (sessionId: string, event: string, data: unknown, options?: AskOptions): Promise<unknown> {
    const timeout = askTimeout(event, options)
    const socket = typeof sessionId === 'string' ? this.local(sessionId) : undefined
    if (socket !== undefined) return await socket.ask(event, data, options)
    const broker = this.broker()
    if (typeof sessionId !== 'string' || broker === undefined) throw new NoSocketError(String(sessionId))
    if (this.waiting.size >= maxRelayedRequests) throw new TooManyRequestsError(maxRelayedRequests)
    const command: AskCommand = { ask: 0, from: this.nodeId, event, timeout, data }
    let text: string
    try {
      command.ask = this.lastId = this.lastId >= Number.MAX_SAFE_INTEGER ? 1 : this.lastId + 1
      text = controlMark + JSON.stringify(command)
    } catch (err) {
      throw new UnserializableDataError((err as Error).message)
    }
    try {
      this.subscribed ??= broker.subscribe(replyTopic(this.nodeId)).catch((err: unknown) => {
        this.subscribed = undefined
        throw err
      })
      await this.subscribed
    } catch (err) {
      throw new BrokerUnavailableError(sessionId, (err as Error).message)
    }
    const id = command.ask
    const answered = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        reject(new RequestTimeoutError(event, timeout))
      }, timeout + relayGraceMs)
      this.waiting.set(id, { sessionId, event, timeout, resolve, reject, timer })
    })
    answered.catch(() => {}) // settled below when the send fails; awaited otherwise
    let found: boolean
    try {
      found = await broker.sendToSession(sessionId, text)
    } catch (err) {
      this.drop(id)
      throw new BrokerUnavailableError(sessionId, (err as Error).message)
    }
    if (!found) {
      this.drop(id)
      throw new NoSocketError(sessionId)
    }
    return await answered
  }

  private drop (id: number): void {
    const waiting = this.waiting.get(id)
    if (waiting === undefined) return
    clearTimeout(waiting.timer)
    this.waiting.delete(id)
  }

  /** On the holding node: a relayed request for the local session `sessionId`. */
  receiveRequest (sessionId: string, text: string): void {
    const command = parse(text) as Partial<AskCommand> | undefined
    if (command === undefined || typeof command.ask !== 'number' || typeof command.from !== 'string' ||
      typeof command.event !== 'string' || typeof command.timeout !== 'number') return
    const { ask, from, event, timeout, data } = command
    const answer = (outcome: Omit<Outcome, 'answer'>): void => {
      const broker = this.broker()
      if (broker === undefined) return
      let frame: string
      try {
        frame = controlMark + JSON.stringify({ answer: ask, ...outcome })
      } catch (err) {
        frame = controlMark + JSON.stringify({ answer: ask, error: { code: 'FST_CHANNELS_UNSERIALIZABLE', message: (err as Error).message } })
      }
      broker.publish({ kind: 'channels', channels: [replyTopic(from)], frames: [frame] }).catch((err: unknown) => {
        this.log.warn({ err }, 'channels: the answer to a request from another node could not be published')
      })
    }
    const socket = this.local(sessionId)
    if (socket === undefined) return answer({ error: { code: 'FST_CHANNELS_NO_SOCKET', message: sessionId } })
    socket.ask(event, data, { timeout }).then((value) => answer({ data: value }), (err: Error & { code?: string, clientCode?: string }) => {
      answer({ error: { code: String(err.code), clientCode: err.clientCode, message: err.message } })
    })
  }

  /** On the asking node: the outcome of one of its requests, from the holding node. */
  receiveAnswer (text: string): void {
    const outcome = parse(text) as Partial<Outcome> | undefined
    if (outcome === undefined || typeof outcome.answer !== 'number') return
    const waiting = this.waiting.get(outcome.answer)
    if (waiting === undefined) return // timed out here already
    this.drop(outcome.answer)
    const { error } = outcome
    if (error === undefined) return waiting.resolve(outcome.data)
    waiting.reject(this.rebuilt(waiting, error))
  }

  /** The holder's error as the same coded error a local ask rejects with. */
  private rebuilt ({ sessionId, event, timeout }: Waiting, error: NonNullable<Outcome['error']>): Error {
    switch (error.code) {
      case 'FST_CHANNELS_CLIENT_ERROR': return new ClientRequestError(String(error.clientCode), String(error.message))
      case 'FST_CHANNELS_REQUEST_TIMEOUT': return new RequestTimeoutError(event, timeout)
      case 'FST_CHANNELS_NO_SOCKET': return new NoSocketError(sessionId)
      case 'FST_CHANNELS_TOO_MANY_REQUESTS': return new TooManyRequestsError(maxPendingRequests)
      case 'FST_CHANNELS_UNSERIALIZABLE': return new UnserializableDataError(String(error.message))
      default: return new DisconnectedError(event)
    }
  }

  /** The node is closing: what waits rejects with DISCONNECTED. */
  close (): void {
    for (const [id, waiting] of [...this.waiting]) {
      this.drop(id)
      waiting.reject(new DisconnectedError(waiting.event))
    }
  }
}
