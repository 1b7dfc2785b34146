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
  ChannelError, NoSocketError, BrokerUnavailableError, BrokerUnreachableError, InvalidOptionError, InvalidHandlerError, InvalidArgumentError,
  InvalidChannelError, MissingIoredisError, MissingNatsError, UnserializableDataError, NoHistoryError, InvalidPresenceError, MissingPromClientError
} from './errors.js'
export { ClientRequestError, DisconnectedError, RequestTimeoutError, TooManyRequestsError } from './errors.js'
export { memoryBroker, memoryEngine } from './broker/memory/broker.js'
export { composeBroker } from './broker/compose.js'
export { positionedEnvelope } from './broker/envelope.js'
export type {
  BrokerEngine, EngineNode, EngineParts, Topic, Transport, RegistryStore, HistoryStore, HistoryAppend, StoredEntry, StreamPosition,
  StreamRead, PresenceStore, PresenceWrite, PresenceChannelWrite
} from './broker/parts.js'
export { redisBroker, redisEngine } from './broker/redis/broker.js'
export type { RedisBrokerOptions, DuplicableRedis } from './broker/redis/broker.js'
export { natsBroker, natsEngine } from './broker/nats/broker.js'
export type { NatsBrokerOptions, NatsConnectionLike } from './broker/nats/broker.js'
export type {
  Broker, BrokerConnection, BrokerNode, Delivery, Publication, BroadcastDelivery, ChannelsDelivery, SessionDelivery
} from './broker/types.js'
export type { ChannelsOptions, RateLimitOptions, MetricsOptions } from './options.js'
export type { MetricsRegistry } from './observability/metrics.js'
export type {
  ChannelsEvents, EventChannel, RefusalReason, ConnectionOpenEvent, ConnectionRefusedEvent, ConnectionCloseEvent, FrameEvent, MessageReceivedEvent,
  ErrorSentEvent, HandlerRunEvent, PublicationKind, PublicationEvent, DeliveryEvent, SlowConsumerEvent, RateLimitedEvent, BrokerDownEvent,
  BrokerUpEvent, RecoveryEvent
} from './observability/events.js'
export type {
  HistoryConnection, HistoryEntry, HistoryLimits, HistoryNode, HistoryPublication, HistoryQuery, HistoryRead
} from './broker/types.js'
export type { HistoryOptions } from './options.js'
export { InjectFailedError, InjectRefusedError } from './errors.js'
export type { AsyncApiDocument, AsyncApiOptions } from './types.js'
export type { InjectOptions, InjectRefusal } from './contract/inject.js'
export type * from './types.js'
export { CloseCodes, ErrorCodes, PROTOCOL_VERSION } from '../schemas/protocol.js'
export type { ErrorCode } from '../schemas/protocol.js'
export type { PresenceState, PresenceEntry } from '../schemas/protocol.js'
export type { PresenceBroker, PresenceChanges, PresenceTrack } from './broker/types.js'
export { sharesPresence } from './broker/types.js'
