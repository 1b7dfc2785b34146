/**
 * The end of a connection. A socket whose `connect` handlers all succeeded gets the ordered
 * disconnect sequence; a refused one (never connected) is only cleaned up. Which one runs is
 * decided by the connection's state (connection-state.ts).
 */
import { leave, release, type Member } from './membership.js'
import { runReportingErrors } from './report.js'
import type { DisconnectInfo } from './types.js'

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
