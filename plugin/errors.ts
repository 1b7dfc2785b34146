/**
 * Every error the plugin throws or rejects with. Server-side errors are made with
 * `@fastify/error` so that users and tests assert on `err.code`, never on message text.
 * `ChannelError` is the one error whose code and message reach the client unchanged.
 */
import createError from '@fastify/error'
import type { ErrorCode } from '../schemas/protocol.js'

export const InvalidOptionError = createError(
  'FST_CHANNELS_INVALID_OPTION', 'fastify-channels: invalid option %s', 500, TypeError)

export const InvalidHandlerError = createError(
  'FST_CHANNELS_INVALID_HANDLER', 'fastify-channels: %s', 500, TypeError)

/** A wrong argument to a method of `fastify.channels` (e.g. `history()`'s `last`); still a TypeError. */
export const InvalidArgumentError = createError(
  'FST_CHANNELS_INVALID_ARGUMENT', 'fastify-channels: %s', 500, TypeError)

export const NoSocketError = createError(
  'FST_CHANNELS_NO_SOCKET', 'no connected socket has session id %s', 404)

export const BrokerUnavailableError = createError(
  'FST_CHANNELS_BROKER_UNAVAILABLE', 'the broker could not be asked where session %s is: %s', 503)

export const InvalidChannelError = createError(
  'FST_CHANNELS_INVALID_CHANNEL', 'invalid channel name: %s', 400, TypeError)

/** A broker engine that cannot be reached when a node starts: the plugin's registration fails with it. */
export const BrokerUnreachableError = createError(
  'FST_CHANNELS_BROKER_UNREACHABLE', 'fastify-channels: cannot connect to %s: %s', 503)

export const MissingIoredisError = createError(
  'FST_CHANNELS_MISSING_IOREDIS', 'redisBroker needs the optional peer dependency "ioredis": npm install ioredis', 500)

export const MissingNatsError = createError(
  'FST_CHANNELS_MISSING_NATS',
  'natsBroker needs the optional peer dependencies "@nats-io/transport-node", "@nats-io/jetstream" and "@nats-io/kv": npm install @nats-io/transport-node @nats-io/jetstream @nats-io/kv',
  500)

/**
 * An error meant for the client: thrown from any handler, its `code` and `message` reach
 * the client as they are (`{"type":"error","code":...,"message":...}`).
 */
export class ChannelError extends Error {
  readonly code: ErrorCode | (string & {})

  constructor (code: ErrorCode | (string & {}), message: string) {
    super(message)
    this.name = 'ChannelError'
    this.code = code
  }
}

export function isChannelError (err: unknown): err is ChannelError {
  return err instanceof ChannelError
}

export const UnserializableDataError = createError(
  'FST_CHANNELS_UNSERIALIZABLE', 'the message data cannot be encoded as JSON: %s', 500, TypeError)

// ---- history (docs/history.md)
export const NoHistoryError = createError(
  'FST_CHANNELS_NO_HISTORY', 'channel "%s" has no history: add it to the `history` option', 400, TypeError)

export const InjectRefusedError = createError(
  'FST_CHANNELS_INJECT_REFUSED', 'the injected upgrade was refused with HTTP %s: %s', 500)

export const InjectFailedError = createError(
  'FST_CHANNELS_INJECT_FAILED', 'the injected client could not connect: %s', 500)

/** A `socket.track()` the plugin cannot honour: a channel without presence, a bad key or meta. */
export const InvalidPresenceError = createError(
  'FST_CHANNELS_INVALID_PRESENCE', 'fastify-channels presence: %s', 400, TypeError)

// ---- observability (docs/observability.md)
export const MissingPromClientError = createError(
  'FST_CHANNELS_MISSING_PROM_CLIENT', 'the metrics option needs the optional peer dependency "prom-client": npm install prom-client', 500)

// ---- server → client requests (docs/users-and-requests.md)
/** `socket.ask()`: no reply within its timeout. */
export const RequestTimeoutError = createError(
  'FST_CHANNELS_REQUEST_TIMEOUT', 'the client did not answer the request "%s" within %s ms', 504)

/** `socket.ask()`: the connection closed before the reply came. */
export const DisconnectedError = createError(
  'FST_CHANNELS_DISCONNECTED', 'the connection closed before the client answered the request "%s"', 503)

/** `socket.ask()`: the socket has `maxPendingRequests` requests waiting already. */
export const TooManyRequestsError = createError(
  'FST_CHANNELS_TOO_MANY_REQUESTS', 'the socket has %s requests waiting for a reply already', 429)

const ClientErrorBase = createError('FST_CHANNELS_CLIENT_ERROR', '%s', 502)

/**
 * `socket.ask()`: the client's handler threw, or it has none for the event (`clientCode`
 * `NO_HANDLER`). `clientCode` and `message` are the client's.
 */
export class ClientRequestError extends ClientErrorBase {
  readonly clientCode: string

  constructor (clientCode: string, message: string) {
    super(message)
    this.clientCode = clientCode
  }
}
