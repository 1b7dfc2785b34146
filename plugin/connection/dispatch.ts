/**
 * From one inbound text frame to its answer: decode → check the channel name once → the
 * join/leave path (subscribe, unsubscribe) or the message handlers → ack or error frame.
 * Errors here are answered, never thrown: a ChannelError reaches the client as it is, any
 * other failure is reported and answered `HANDLER_ERROR`.
 */
import { channelNameProblem } from '../../schemas/channel.js'
import { decodeClientFrame, encodeFrame } from '../../schemas/codec.js'
import { DEFAULT_EVENT, type ErrorFrame, type MessageFrame, type ReplyFrame } from '../../schemas/protocol.js'
import { isChannelError } from '../errors.js'
import type { OutboundFrame } from '../outbound/frame-writer.js'
import type { HandlerEntry } from '../handlers/registry.js'
import { join, leave } from './membership.js'
import type { Member, MembershipServer } from '../channel-steps.js'
import { events, handlerRunEnd, handlerRunStart, type HandlerRunEvent } from '../observability/events.js'
import { isThenable, reportError } from '../handlers/report.js'
import type { MessageMeta } from '../types.js'

/** What dispatch needs of a connection. */
export interface DispatchTarget extends Member {
  readonly server: MembershipServer & { readonly nodeId: string }
  /** a client's answer to a server request (socket.ask) */
  reply (frame: ReplyFrame): void
  sendFrame (frame: string | OutboundFrame): void
  sendError (code: string, message: string, id?: number, errors?: ErrorFrame['errors']): void
}

/** Handles one frame; returns a promise only when a handler went async (it holds the inbox). */
export function dispatch (socket: DispatchTarget, text: string): Promise<void> | void {
  const decoded = decodeClientFrame(text)
  if (!decoded.ok) return socket.sendError(decoded.code, decoded.message, decoded.id)
  const { frame } = decoded
  // Liveness: answered at once, in order with everything else this socket gets.
  if (frame.type === 'ping') return socket.sendControl({ type: 'pong', id: frame.id })
  // Replies are taken before the inbox (connection.ts); one written with escapes lands here.
  if (frame.type === 'reply') return socket.reply(frame)
  // The one check of a client-given channel name, for every frame type.
  if (frame.channel !== undefined) {
    const problem = channelNameProblem(frame.channel)
    if (problem !== undefined) return socket.sendError('INVALID_CHANNEL', problem, frame.id)
  }
  switch (frame.type) {
    case 'subscribe':
      return join(socket, frame.channel, frame).catch((refusal: unknown) => answerRefusal(socket, refusal, frame.id))
    case 'unsubscribe':
      return leave(socket, frame.channel, frame)
    case 'message':
      return onMessage(socket, frame)
  }
}

/** A refused join rejects with a ChannelError (membership.ts): its code is the answer. */
function answerRefusal (socket: DispatchTarget, refusal: unknown, id: number | undefined): void {
  if (isChannelError(refusal)) return socket.sendError(refusal.code, refusal.message, id)
  reportError(socket, refusal, undefined)
  socket.sendError('FORBIDDEN', 'subscription refused', id)
}

function onMessage (socket: DispatchTarget, { event = DEFAULT_EVENT, channel, data, id }: MessageFrame): Promise<void> | void {
  if (channel !== undefined && !socket.subscriptions.has(channel)) {
    return socket.sendError('NOT_SUBSCRIBED', `not subscribed to channel "${channel}"`, id)
  }
  const handlers = socket.handlers.forMessage(event, channel)
  if (events.messageReceived.hasSubscribers) {
    events.messageReceived.publish({ nodeId: socket.server.nodeId, sessionId: socket.id, event, channel, handled: handlers.length > 0 })
  }
  if (handlers.length === 0) return socket.sendError('NO_HANDLER', `no handler for event "${event}"`, id)
  for (const entry of handlers) {
    if (entry.schema !== undefined && !entry.schema.check(data)) {
      return socket.sendError('VALIDATION_FAILED', 'the message data does not match the schema', id, entry.schema.issues(data))
    }
  }
  const meta: MessageMeta = channel === undefined ? { event, id } : { event, channel, id }
  return runMessageHandlers(socket, handlers, data, meta, handlerRunStart(socket.server.nodeId, socket.id, event, channel))
}

/**
 * Runs matching handlers in order; the ack carries the first value other than undefined.
 * Stays synchronous until a handler returns a promise, so sync handlers cost no microtask.
 */
function runMessageHandlers (
  socket: DispatchTarget, handlers: HandlerEntry[], data: unknown, meta: MessageMeta, run: HandlerRunEvent | undefined
): Promise<void> | void {
  let reply: unknown
  for (let i = 0; i < handlers.length; i++) {
    let result: unknown
    try {
      result = handlers[i].fn(socket, data, meta)
    } catch (err) {
      if (run !== undefined) handlerRunEnd(run, true)
      return messageFailed(socket, err, meta)
    }
    if (isThenable(result)) return finishMessageHandlers(socket, handlers, i, result, reply, data, meta, run)
    if (reply === undefined) reply = result
  }
  if (run !== undefined) handlerRunEnd(run, false)
  acknowledge(socket, meta, reply)
}

async function finishMessageHandlers (
  socket: DispatchTarget, handlers: HandlerEntry[], index: number, pending: PromiseLike<unknown>,
  reply: unknown, data: unknown, meta: MessageMeta, run: HandlerRunEvent | undefined
): Promise<void> {
  try {
    let result = await pending
    if (reply === undefined) reply = result
    for (let i = index + 1; i < handlers.length; i++) {
      result = handlers[i].fn(socket, data, meta)
      if (isThenable(result)) result = await result
      if (reply === undefined) reply = result
    }
  } catch (err) {
    if (run !== undefined) handlerRunEnd(run, true)
    return messageFailed(socket, err, meta)
  }
  if (run !== undefined) handlerRunEnd(run, false)
  acknowledge(socket, meta, reply)
}

/** A ChannelError reaches the client as it is; anything else only as HANDLER_ERROR. */
function messageFailed (socket: DispatchTarget, err: unknown, meta: MessageMeta): void {
  if (isChannelError(err)) return socket.sendError(err.code, err.message, meta.id)
  reportError(socket, err, meta.channel)
  socket.sendError('HANDLER_ERROR', 'the handler failed', meta.id)
}

function acknowledge (socket: DispatchTarget, meta: MessageMeta, reply: unknown): void {
  if (meta.id === undefined) return
  let ack: string
  try {
    ack = encodeFrame({ type: 'ack', id: meta.id, data: reply })
  } catch (err) {
    reportError(socket, err, meta.channel)
    return socket.sendError('HANDLER_ERROR', 'the handler failed', meta.id)
  }
  socket.sendFrame(ack)
}
