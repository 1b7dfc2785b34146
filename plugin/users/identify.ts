/**
 * The `user` option at work: reads a connection's user id from its upgrade request (after the
 * app's hooks ran). A lookup that throws, or returns something other than a user id or
 * `undefined`, refuses the connection (closed with 1008, as a throwing `connect` handler):
 * the app meant to know who it is and could not.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { userIdProblem, type UserLookup } from './directory.js'

/** What identification needs of a connection. */
export interface Identifiable {
  readonly id: string
  readonly request: FastifyRequest
  readonly log: FastifyBaseLogger
  user: string | undefined
}

/** Sets `connection.user`; resolves the close reason when the connection is refused. */
export async function identify (connection: Identifiable, lookup: UserLookup): Promise<string | undefined> {
  let user: unknown
  try {
    user = await lookup(connection.request)
  } catch (err) {
    connection.log.error({ err, sessionId: connection.id }, 'channels: the user option failed; connection refused')
    return 'user lookup failed'
  }
  if (user === undefined) return undefined
  const problem = userIdProblem(user)
  if (problem !== undefined) {
    connection.log.error({ sessionId: connection.id }, `channels: the user option returned no user id (${problem}); connection refused`)
    return 'user lookup failed'
  }
  connection.user = user as string
  return undefined
}
