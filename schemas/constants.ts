/**
 * The protocol's plain constants, apart from the TypeBox schemas so that the browser client
 * can import them without pulling TypeBox into its bundle. `protocol.ts` re-exports them.
 */
export const PROTOCOL_VERSION = 1

/** Error codes a server sends in `error` frames. */
export const ErrorCodes = [
  'BAD_FRAME',
  'VALIDATION_FAILED',
  'NO_HANDLER',
  'NOT_SUBSCRIBED',
  'FORBIDDEN',
  'INVALID_CHANNEL',
  'TOO_MANY_CHANNELS',
  'RATE_LIMITED',
  'HANDLER_ERROR'
] as const
export type ErrorCode = typeof ErrorCodes[number]

/** Close codes the server uses (RFC 6455 numbers). */
export const CloseCodes = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  /** never sent: reported locally when a connection ended without a close frame */
  ABNORMAL_CLOSURE: 1006,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  TRY_AGAIN_LATER: 1013
} as const

/** The default event name of a message frame that names none. */
export const DEFAULT_EVENT = 'message'
