/**
 * The error every failed client promise rejects with. `code` is the server's error code
 * (`FORBIDDEN`, `VALIDATION_FAILED`, an app's own `ChannelError` code, ...) or one of the
 * client's own codes below; assert on `code`, never on message text.
 */
import type { ErrorCode, ValidationIssue } from '../schemas/protocol.js'

/** Codes the client itself produces. */
export const ClientErrorCodes = {
  /** the connection dropped while the request was on the wire: it may or may not have run */
  DISCONNECTED: 'DISCONNECTED',
  /** no answer within the timeout */
  TIMEOUT: 'TIMEOUT',
  /** offline and the send queue is full: the request was never sent */
  QUEUE_FULL: 'QUEUE_FULL',
  /** the client was closed (`close()`, or the server refused it with 1008) */
  CLOSED: 'CLOSED',
  /** `unsubscribe()` was called while the subscription was still waiting to be sent */
  CANCELLED: 'CANCELLED',
  /** thrown by `connect()` (a TypeError): no WebSocket class here, and none was passed */
  NO_WEBSOCKET: 'NO_WEBSOCKET',
  /** thrown by `connect()` (a TypeError): a URL that cannot be resolved, or not ws(s)/http(s) */
  INVALID_URL: 'INVALID_URL',
  /** thrown by `send()`, rejected by `request()` (a TypeError): data JSON cannot carry (a BigInt, a cycle) */
  UNSERIALIZABLE: 'UNSERIALIZABLE'
} as const
export type ClientErrorCode = typeof ClientErrorCodes[keyof typeof ClientErrorCodes]

export class ChannelsClientError extends Error {
  readonly code: ErrorCode | ClientErrorCode | (string & {})
  /** for VALIDATION_FAILED: what was wrong, as `{ path, message }` */
  readonly errors?: ValidationIssue[]
  /** the channel concerned, when there is one */
  readonly channel?: string

  constructor (code: ChannelsClientError['code'], message: string, details: { errors?: ValidationIssue[], channel?: string } = {}) {
    super(message)
    this.name = 'ChannelsClientError'
    this.code = code
    if (details.errors !== undefined) this.errors = details.errors
    if (details.channel !== undefined) this.channel = details.channel
  }
}

/** A misuse (of `connect()`, or data JSON cannot carry): a TypeError, as a wrong argument is, with a code to assert on. */
export function usageError (code: typeof ClientErrorCodes.NO_WEBSOCKET | typeof ClientErrorCodes.INVALID_URL | typeof ClientErrorCodes.UNSERIALIZABLE, message: string): TypeError & { code: string } {
  return Object.assign(new TypeError(message), { code })
}
