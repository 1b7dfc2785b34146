/**
 * fastify-channels: WebSocket channels for Fastify.
 */
import fp from 'fastify-plugin'
import { channelsPlugin } from './register.js'

const fastifyChannels = fp(channelsPlugin, {
  name: 'fastify-channels',
  fastify: '5.x'
})

export default fastifyChannels
export { fastifyChannels }
export {
  ChannelError, NoSocketError, BrokerUnavailableError, InvalidOptionError, InvalidHandlerError,
  InvalidChannelError, MissingIoredisError, UnserializableDataError, InvalidPresenceError
} from './errors.js'
export { memoryBroker } from './broker/memory.js'
export { redisBroker } from './broker/redis.js'
export type { RedisBrokerOptions, DuplicableRedis } from './broker/redis.js'
export type {
  Broker, BrokerConnection, BrokerNode, Delivery, Publication, BroadcastDelivery, ChannelsDelivery, SessionDelivery
} from './broker/types.js'
export type { ChannelsOptions, RateLimitOptions } from './options.js'
export { InjectFailedError, InjectRefusedError } from './errors.js'
export type { AsyncApiDocument, AsyncApiOptions } from './asyncapi-types.js'
export type { InjectOptions, InjectRefusal } from './inject.js'
export type * from './types.js'
export { CloseCodes, ErrorCodes, PROTOCOL_VERSION } from '../schemas/protocol.js'
export type { ErrorCode } from '../schemas/protocol.js'
export type { PresenceState, PresenceEntry } from '../schemas/protocol.js'
export type { PresenceBroker, PresenceChanges, PresenceTrack } from './broker/types.js'
export { sharesPresence } from './broker/types.js'
