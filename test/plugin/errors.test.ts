/**
 * The plugin's errors (plugin/errors.ts): each server-side error's code, HTTP status, class and
 * message (what an app logs or answers with), and ChannelError, whose code and message reach
 * the client as they are.
 */
import t from 'tap'
import {
  BrokerUnavailableError, ChannelError, InjectFailedError, InjectRefusedError, InvalidChannelError, InvalidHandlerError,
  InvalidOptionError, InvalidPresenceError, isChannelError, MissingIoredisError, NoHistoryError, NoSocketError,
  UnserializableDataError
} from '../../plugin/errors.js'

t.test('each server-side error: its code, status, class and message', async (t) => {
  const cases: Array<[Error & { code: string, statusCode?: number }, string, number, boolean, string]> = [
    [new InvalidOptionError('path: bad'), 'FST_CHANNELS_INVALID_OPTION', 500, true, 'fastify-channels: invalid option path: bad'],
    [new InvalidHandlerError('no such event'), 'FST_CHANNELS_INVALID_HANDLER', 500, true, 'fastify-channels: no such event'],
    [new NoSocketError('abc'), 'FST_CHANNELS_NO_SOCKET', 404, false, 'no connected socket has session id abc'],
    [new BrokerUnavailableError('abc', 'down'), 'FST_CHANNELS_BROKER_UNAVAILABLE', 503, false,
      'the broker could not be asked where session abc is: down'],
    [new InvalidChannelError('too long'), 'FST_CHANNELS_INVALID_CHANNEL', 400, true, 'invalid channel name: too long'],
    [new MissingIoredisError(), 'FST_CHANNELS_MISSING_IOREDIS', 500, false,
      'redisBroker needs the optional peer dependency "ioredis": npm install ioredis'],
    [new UnserializableDataError('cycle'), 'FST_CHANNELS_UNSERIALIZABLE', 500, true, 'the message data cannot be encoded as JSON: cycle'],
    [new NoHistoryError('room'), 'FST_CHANNELS_NO_HISTORY', 400, true, 'channel "room" has no history: add it to the `history` option'],
    [new InjectRefusedError(401, 'Unauthorized'), 'FST_CHANNELS_INJECT_REFUSED', 500, false,
      'the injected upgrade was refused with HTTP 401: Unauthorized'],
    [new InjectFailedError('reset'), 'FST_CHANNELS_INJECT_FAILED', 500, false, 'the injected client could not connect: reset'],
    [new InvalidPresenceError('no key'), 'FST_CHANNELS_INVALID_PRESENCE', 400, true, 'fastify-channels presence: no key']
  ]
  for (const [error, code, status, isTypeError, message] of cases) {
    t.equal(error.code, code)
    t.equal(error.statusCode, status, `${code}: HTTP ${status}`)
    t.equal(error instanceof TypeError, isTypeError, `${code}: ${isTypeError ? '' : 'not '}a TypeError`)
    t.equal(error.message, message)
    t.notOk(isChannelError(error), `${code} is not for the client`)
  }
})

t.test('ChannelError carries its code and message; isChannelError tells it apart', async (t) => {
  const error = new ChannelError('PAYMENT_REQUIRED', 'vip costs extra')
  t.ok(error instanceof Error)
  t.equal(error.name, 'ChannelError')
  t.equal(error.code, 'PAYMENT_REQUIRED')
  t.equal(error.message, 'vip costs extra')
  t.ok(isChannelError(error))
  t.notOk(isChannelError(Object.assign(new Error('look-alike'), { code: 'FORBIDDEN' })), 'a look-alike is not one')
  t.notOk(isChannelError(undefined))
})
