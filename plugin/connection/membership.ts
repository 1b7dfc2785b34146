/**
 * The one join path and the one leave path of a socket. Everything that subscribes or
 * unsubscribes goes through here: a client's `subscribe`/`unsubscribe` frame (dispatch.ts),
 * a server-side `socket.subscribe()`/`socket.unsubscribe()` (connection.ts), and the
 * disconnect sequence (below). Callers check the channel name first (`checkedChannel` in node/server.ts).
 *
 * Join:  maxChannels → `subscribe` handlers → member of the channel (and the broker relays it)
 *        → `subscribed` → the after-join steps → `subscribed` handlers.
 * Leave: out of the channel → the on-leave steps → `unsubscribe` handlers → `unsubscribed`.
 *
 * The after-join / on-leave steps are `ChannelStep`s registered on the server
 * (`server.channelSteps`): channel history answers the join in `answerJoin` (`subscribed`
 * with its epoch and offset, then the `last`/`since` replay, in one step), presence sends
 * the channel's `presence` state in `afterJoin` and untracks the socket in `onLeave` (which
 * also runs for a disconnect and for a refused socket's silent cleanup).
 */
import type { SubscribeFrame, UnsubscribeFrame } from '../../schemas/protocol.js'
import { ChannelError, isChannelError } from '../errors.js'
import { runReportingErrors, reportError } from '../handlers/report.js'
import type { Member } from '../channel-steps.js'
import type { DisconnectInfo } from '../types.js'

/**
 * Joins `channel` (already a valid name) and answers `subscribed`. Rejects with a ChannelError
 * carrying the code the client gets: a thrown ChannelError's own, else FORBIDDEN.
 */
export async function join (socket: Member, channel: string, frame?: SubscribeFrame): Promise<void> {
  const joined = await admit(socket, channel)
  const steps = socket.server.channelSteps
  if (!joined || steps.length === 0 || !await answered(socket, channel, frame)) socket.sendControl({ type: 'subscribed', channel, id: frame?.id })
  if (!joined) return // already held: no second replay, no second presence state
  // History replay and the presence state go here: after `subscribed`, in `afterJoin` steps.
  for (const step of socket.server.channelSteps) {
    if (step.afterJoin === undefined) continue
    try {
      await step.afterJoin(socket, channel, frame)
    } catch (err) {
      reportError(socket, err, channel)
    }
  }
  // The socket holds the channel and has its state (presence, replay): `track()` works here.
  // A failure is reported like an `unsubscribe` handler's; the subscription stands.
  for (const entry of socket.handlers.forChannel('subscribed', channel)) {
    if (!socket.subscriptions.has(channel)) return // it left while an earlier handler ran
    await runReportingErrors(socket, entry, channel, channel)
  }
}

/** Lets the first step that answers joins (history) send `subscribed`; false when none did. */
async function answered (socket: Member, channel: string, frame: SubscribeFrame | undefined): Promise<boolean> {
  for (const step of socket.server.channelSteps) {
    if (step.answerJoin === undefined) continue
    try {
      if (await step.answerJoin(socket, channel, frame)) return true
    } catch (err) {
      reportError(socket, err, channel)
    }
  }
  return false
}

/** Runs `subscribe` handlers and makes `socket` a member; false when it already was one. */
async function admit (socket: Member, channel: string): Promise<boolean> {
  if (socket.subscriptions.has(channel)) return false
  const { maxChannels } = socket.server.options
  if (socket.subscriptions.size + socket.pendingJoins >= maxChannels) {
    throw new ChannelError('TOO_MANY_CHANNELS', `a socket may hold at most ${maxChannels} channels`)
  }
  socket.pendingJoins++
  try {
    for (const entry of socket.handlers.forChannel('subscribe', channel)) await entry.fn(socket, channel)
  } catch (err) {
    if (isChannelError(err)) throw err
    reportError(socket, err, channel)
    throw new ChannelError('FORBIDDEN', 'subscription refused')
  } finally {
    socket.pendingJoins--
  }
  // A socket that closed while the handlers ran must not join: it would never leave.
  if (!socket.acceptsJoins) throw new ChannelError('FORBIDDEN', 'the socket is closed')
  if (socket.subscriptions.has(channel)) return false
  socket.subscriptions.add(channel)
  await socket.server.addToChannel(channel, socket)
  return true
}

/**
 * Leaves `channel` (idempotent) and answers `unsubscribed` (a no-op once the socket closed).
 * `unsubscribe` handlers run after the channel left `socket.channels`, so a leave notice
 * broadcast to it does not reach the leaver.
 */
export async function leave (socket: Member, channel: string, frame?: UnsubscribeFrame): Promise<void> {
  if (await release(socket, channel)) {
    for (const entry of socket.handlers.forChannel('unsubscribe', channel)) {
      await runReportingErrors(socket, entry, channel, channel)
    }
  }
  socket.sendControl({ type: 'unsubscribed', channel, id: frame?.id })
}

/**
 * Takes `socket` out of `channel` and runs the on-leave steps, without `unsubscribe` handlers:
 * what a refused socket (never connected) gets. False when it did not hold the channel.
 */
export async function release (socket: Member, channel: string): Promise<boolean> {
  if (!socket.subscriptions.delete(channel)) return false
  socket.server.removeFromChannel(channel, socket)
  for (const step of socket.server.channelSteps) {
    if (step.onLeave === undefined) continue
    try {
      await step.onLeave(socket, channel)
    } catch (err) {
      reportError(socket, err, channel)
    }
  }
  return true
}

/**
 * The end of a connection. A socket whose `connect` handlers all succeeded gets the ordered
 * disconnect sequence; a refused one (never connected) is only cleaned up. Which one runs is
 * decided by the connection's state (connection-state.ts).
 */
/**
 * `disconnect` (the socket still holds its channels; a channel-bound handler runs once if any
 * of them matches) → leave each channel (`unsubscribe` handlers) → `finish`, once.
 */
export async function runDisconnectSequence (socket: Member, info: DisconnectInfo): Promise<void> {
  for (const entry of socket.handlers.forAnyChannel('disconnect', socket.subscriptions)) {
    await runReportingErrors(socket, entry, undefined, info)
  }
  for (const channel of [...socket.subscriptions]) await leave(socket, channel)
  for (const entry of socket.handlers.list('finish')) await runReportingErrors(socket, entry, undefined)
}

/** Channels a refused socket holds (a `connect` handler subscribed it) are freed without handlers. */
export async function releaseAll (socket: Member): Promise<void> {
  for (const channel of [...socket.subscriptions]) await release(socket, channel)
}
