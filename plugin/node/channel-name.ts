/**
 * Where a channel name comes in, it is checked once, against the one rule in
 * schemas/channel.ts. Two entrances, two answers (docs/architecture.md):
 * - a client frame naming a bad channel gets the `INVALID_CHANNEL` error frame (dispatch.ts);
 * - a server-side call (`socket.subscribe`, `socket.send`, `fastify.broadcastChannel`, ...)
 *   throws, or rejects with, `FST_CHANNELS_INVALID_CHANNEL`: a bad name there is a bug in the
 *   app, not something to tell the peer.
 */
import { channelNameProblem } from '../../schemas/channel.js'
import { InvalidChannelError } from '../errors.js'

/** `channel` when it is a valid name; else throws FST_CHANNELS_INVALID_CHANNEL. */
export function checkedChannel (channel: string): string {
  const problem = channelNameProblem(channel)
  if (problem !== undefined) throw new InvalidChannelError(problem)
  return channel
}

export { channelNameProblem }
