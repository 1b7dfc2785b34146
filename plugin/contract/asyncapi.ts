/**
 * `fastify.channels.asyncapi()`: the app's channels API as an AsyncAPI 3.0.0 document, written
 * from the application's side. Every `message` handler is a `receive` operation (what clients
 * send) whose reply is the ack or the error; every `emits` declaration is a `send` operation;
 * the protocol's own frames (asyncapi-protocol.ts) sit in the `protocol` channel.
 *
 * Channels are the handlers' channel filters: a string filter is a channel whose address is
 * that name; a RegExp filter is the parameterised address `{channel}`, its parameter stating
 * the pattern; handlers without a filter share the `anyChannel` channel (address null: any
 * channel, or none). Payloads are the handlers' TypeBox schemas as JSON Schema (json-schema.ts).
 *
 * Building is linear in the handlers and declarations (`KeySpace` numbers keys wanted alike
 * without searching). contract.ts builds the body (`contractBody`) once per registration state
 * and puts the reader's head (`documentHead`: info, servers) in front of it. A schema that
 * cannot be written as JSON fails the build with FST_CHANNELS_INVALID_HANDLER naming its handler.
 */
import type { TSchema } from '@sinclair/typebox'
import { DEFAULT_EVENT } from '../../schemas/protocol.js'
import { InvalidHandlerError } from '../errors.js'
import { protocolDescription, protocolMessages } from './asyncapi-protocol.js'
import type { AsyncApiDocument, AsyncApiOptions } from '../types.js'
import type { EmitDeclaration } from './emits.js'
import type { HandlerEntry } from '../handlers/registry.js'
import { KeySpace, SchemaComponents, UnwritableSchemaError, keyOf, unwritable, type JsonSchema } from './json-schema.js'

export const defaultAsyncApiTitle = 'Channels API'
export const defaultAsyncApiVersion = '1.0.0'
export const defaultAsyncApiHost = 'localhost'

export interface ContractSource {
  handlers: readonly HandlerEntry[]
  emits: readonly EmitDeclaration[]
}

type Filter = string | RegExp | undefined

const frameId = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER }

/** The document's parts that depend on the handlers and declarations only (built once per state). */
export type ContractBody = Pick<AsyncApiDocument, 'channels' | 'operations' | 'components'>
/** The document's parts that depend on the reader (info, the server's host and protocol). */
export type DocumentHead = Omit<AsyncApiDocument, keyof ContractBody>

/** `the "message" handler for event "chat" on /^room-/`: a handler as an error names it. */
function handlerName (handler: HandlerEntry): string {
  const event = handler.event === undefined ? 'any event' : `event "${handler.event}"`
  const channel = handler.channel === undefined ? '' : ` on ${typeof handler.channel === 'string' ? `"${handler.channel}"` : String(handler.channel)}`
  return `the "message" handler for ${event}${channel}`
}

function unwritableHandler (handler: HandlerEntry, reason: string): Error {
  return new InvalidHandlerError(`${handlerName(handler)}: its schema cannot be written as JSON: ${reason}`)
}

/** Throws FST_CHANNELS_INVALID_HANDLER for the first handler whose schema cannot be written as JSON. */
export function checkHandlerSchemas (handlers: readonly HandlerEntry[]): void {
  for (const handler of handlers) {
    if (handler.schema === undefined) continue
    const reason = unwritable(handler.schema.source)
    if (reason !== undefined) throw unwritableHandler(handler, reason)
  }
}

/** The JSON Schema of `schema` (`{}` for none); `refuse` makes the coded error for one that cannot be written. */
function payload (components: SchemaComponents, schema: TSchema | undefined, refuse: (reason: string) => Error): JsonSchema {
  if (schema === undefined) return {}
  try {
    return components.convert(schema)
  } catch (err) {
    if (err instanceof UnwritableSchemaError) throw refuse(err.message)
    throw err
  }
}

const ref = (path: string): JsonSchema => ({ $ref: path })

/** The headers schema of a message frame: its fields other than `data`. */
function frameHeaders (event: string | undefined, filter: Filter, fromClient: boolean): JsonSchema {
  const properties: Record<string, JsonSchema> = { type: { type: 'string', const: 'message' } }
  const required = ['type']
  if (event === undefined) {
    properties.event = { type: 'string', minLength: 1, description: `any event (absent means "${DEFAULT_EVENT}")` }
  } else {
    properties.event = { type: 'string', const: event }
    // A client may leave out the default event name; the server always writes it.
    if (!fromClient || event !== DEFAULT_EVENT) required.push('event')
  }
  if (typeof filter === 'string') {
    properties.channel = { type: 'string', const: filter }
    required.push('channel')
  } else if (filter instanceof RegExp) {
    properties.channel = { type: 'string', pattern: filter.source, description: `a channel matching ${String(filter)}` }
    required.push('channel')
  } else {
    properties.channel = { type: 'string', description: fromClient ? 'any channel the connection holds, or none' : 'the channel, if the message was sent to one' }
  }
  if (fromClient) properties.id = { ...frameId, description: 'asks for an answer: an ack or an error with this id' }
  return { type: 'object', properties, required }
}

/** The channels of the document, one per distinct filter, each with the messages it carries. */
class ChannelTable {
  readonly channels: Record<string, JsonSchema> = {}
  private readonly keyByFilter = new Map<string, string>()
  private readonly keys = new KeySpace(['protocol', 'anyChannel'])

  /** The key of the channel for `filter`, made on first use. */
  channelFor (filter: Filter): string {
    const id = filter === undefined ? '' : typeof filter === 'string' ? `s:${filter}` : `r:${String(filter)}`
    const known = this.keyByFilter.get(id)
    if (known !== undefined) return known
    let key: string
    let channel: JsonSchema
    if (filter === undefined) {
      key = 'anyChannel'
      channel = { address: null, title: 'any channel', description: 'Messages on any channel, or on none.' }
    } else if (typeof filter === 'string') {
      key = this.keys.take(keyOf(`channel_${filter}`))
      // `{` and `}` would read as an address parameter: such a name is given in the description only.
      channel = /[{}]/.test(filter)
        ? { address: null, title: filter, description: `The channel "${filter}".` }
        : { address: filter, title: filter }
    } else {
      key = this.keys.take(keyOf(`pattern_${this.keyByFilter.size + 1}`))
      channel = {
        address: '{channel}',
        title: String(filter),
        description: `Every channel whose name matches ${String(filter)}.`,
        parameters: { channel: { description: `a channel name matching ${String(filter)}`, 'x-pattern': filter.source } }
      }
    }
    channel.messages = {}
    this.keyByFilter.set(id, key)
    this.channels[key] = channel
    return key
  }

  /** Lists message `messageKey` in channel `channelKey`; returns its reference there. */
  carry (channelKey: string, messageKey: string): JsonSchema {
    (this.channels[channelKey].messages as Record<string, JsonSchema>)[messageKey] = ref(`#/components/messages/${messageKey}`)
    return ref(`#/channels/${channelKey}/messages/${messageKey}`)
  }
}

/** The channels, operations and components of the app's handlers and declarations. */
export function contractBody (source: ContractSource): ContractBody {
  const components = new SchemaComponents()
  const messages: Record<string, JsonSchema> = {}
  const operations: Record<string, JsonSchema> = {}
  const table = new ChannelTable()
  const protocol = protocolMessages(components)
  for (const { key, message } of Object.values(protocol)) messages[key] = message

  // ---- the protocol's own frames
  table.channels.protocol = {
    address: null,
    title: 'protocol',
    description: 'The frames of the protocol itself, on every connection.',
    messages: Object.fromEntries(Object.values(protocol).filter(({ key }) => key !== protocol.ack.key)
      .map(({ key }) => [key, ref(`#/components/messages/${key}`)]))
  }
  const inProtocol = (name: keyof typeof protocol): JsonSchema => ref(`#/channels/protocol/messages/${protocol[name].key}`)
  const protocolChannel = ref('#/channels/protocol')
  const protocolOperation = (action: 'send' | 'receive', title: string, summary: string, sent: JsonSchema[], reply?: JsonSchema[]): JsonSchema => ({
    action,
    channel: protocolChannel,
    title,
    summary,
    messages: sent,
    ...(reply === undefined ? {} : { reply: { channel: protocolChannel, messages: reply } })
  })
  operations.subscribe = protocolOperation('receive', 'subscribe', 'A client joins a channel.',
    [inProtocol('subscribe')], [inProtocol('subscribed'), inProtocol('error')])
  operations.unsubscribe = protocolOperation('receive', 'unsubscribe', 'A client leaves a channel.',
    [inProtocol('unsubscribe')], [inProtocol('unsubscribed')])
  operations.welcome = protocolOperation('send', 'welcome', 'Sent first on every connection.', [inProtocol('welcome')])
  operations.serverSubscriptions = protocolOperation('send', 'server-side subscriptions',
    'The server subscribed or unsubscribed the connection itself.', [inProtocol('subscribed'), inProtocol('unsubscribed')])
  operations.notices = protocolOperation('send', 'notices', 'Errors no frame asked for (e.g. RATE_LIMITED).', [inProtocol('error')])
  operations.serverRequests = protocolOperation('send', 'server requests',
    'The server asks the client (socket.ask); the client answers with a reply.', [inProtocol('request')], [inProtocol('reply')])

  const keys = new KeySpace([...Object.keys(operations), ...Object.keys(messages)])

  // ---- what clients send: one receive operation per message handler, answered by an ack or an error
  for (const handler of source.handlers) {
    const channelKey = table.channelFor(handler.channel)
    const key = keys.take(keyOf(`receive_${handler.event ?? 'anyEvent'}`))
    messages[key] = {
      name: handler.event ?? 'anyEvent',
      title: handler.event ?? 'any event',
      summary: handler.schema === undefined ? 'Any data.' : 'Data that fails the schema is answered VALIDATION_FAILED, and no handler runs.',
      contentType: 'application/json',
      headers: frameHeaders(handler.event, handler.channel, true),
      payload: payload(components, handler.schema?.source, (reason) => unwritableHandler(handler, reason)),
      correlationId: { location: '$message.header#/id' }
    }
    const channel = ref(`#/channels/${channelKey}`)
    operations[key] = {
      action: 'receive',
      channel,
      title: handler.event ?? 'any event',
      summary: 'A message frame that this handler runs for. Every handler that matches a frame runs, so its data must satisfy each of their schemas.',
      messages: [table.carry(channelKey, key)],
      reply: { channel, messages: [table.carry(channelKey, protocol.ack.key), table.carry(channelKey, protocol.error.key)] }
    }
  }

  // ---- what the server sends: one send operation per emits declaration
  for (const declaration of source.emits) {
    const channelKey = table.channelFor(declaration.channel)
    const key = keys.take(keyOf(`send_${declaration.event}`))
    messages[key] = {
      name: declaration.event,
      title: declaration.event,
      contentType: 'application/json',
      headers: frameHeaders(declaration.event, declaration.channel, false),
      payload: payload(components, declaration.schema,
        (reason) => new InvalidHandlerError(`emits "${declaration.event}": the schema cannot be written as JSON: ${reason}`))
    }
    operations[key] = {
      action: 'send',
      channel: ref(`#/channels/${channelKey}`),
      title: declaration.event,
      messages: [table.carry(channelKey, key)]
    }
  }

  return { channels: table.channels, operations, components: { messages, schemas: components.schemas } }
}

/** The document's head: its info and the server entry as `options` name them. */
export function documentHead (path: string, options: AsyncApiOptions = {}): DocumentHead {
  const info = options.info ?? {}
  return {
    asyncapi: '3.0.0',
    info: {
      title: info.title ?? defaultAsyncApiTitle,
      version: info.version ?? defaultAsyncApiVersion,
      ...(info.description === undefined ? {} : { description: info.description })
    },
    defaultContentType: 'application/json',
    servers: {
      channels: {
        host: options.host ?? defaultAsyncApiHost,
        protocol: options.protocol ?? 'ws',
        pathname: path,
        title: 'fastify-channels',
        description: protocolDescription
      }
    }
  }
}
