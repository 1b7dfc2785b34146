/** Small helpers of the client: safe listener calls, listener sets, the errors it builds. */
import { channelNameProblem } from '../schemas/channel.js'
import { ChannelsClientError, ClientErrorCodes } from './errors.js'

/** Calls a user's listener; its exception is rethrown later, so it cannot break the client. */
export function callSafely<A extends unknown[]> (fn: (...args: A) => void, ...args: A): void {
  try {
    fn(...args)
  } catch (err) {
    queueMicrotask(() => { throw err })
  }
}

export function subscribeTo<T> (set: Set<T>, item: T): () => void {
  set.add(item)
  return () => { set.delete(item) }
}

export function invalidChannel (channel: string): ChannelsClientError | undefined {
  const problem = channelNameProblem(channel)
  return problem === undefined ? undefined : new ChannelsClientError('INVALID_CHANNEL', problem, { channel })
}

export function closedError (): ChannelsClientError {
  return new ChannelsClientError(ClientErrorCodes.CLOSED, 'the client is closed')
}
