/**
 * The AsyncAPI document in detail (plugin/contract/asyncapi.ts), without the parser (asyncapi.test.ts
 * runs it): defaults, channel keys and titles, frame headers of client and server messages,
 * and the words a reader of the document gets.
 */
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import fastifyChannels, { type AsyncApiDocument } from '../../plugin/index.js'

/** A JSON document read by path. */
interface Json { [key: string]: Json }

async function build (t: { teardown (fn: () => unknown): void }, setup: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false })
  setup(app)
  t.teardown(() => app.close())
  return app
}

const parts = (document: AsyncApiDocument): { channels: Record<string, Json>, operations: Record<string, Json>, messages: Record<string, Json> } => ({
  channels: document.channels as unknown as Record<string, Json>,
  operations: document.operations as unknown as Record<string, Json>,
  messages: document.components.messages as unknown as Record<string, Json>
})

t.test('defaults: title, version, host, protocol; info.description only when given', async (t) => {
  const app = await build(t, () => {})
  const document = app.channels.asyncapi()
  t.same(document.info, { title: 'Channels API', version: '1.0.0' })
  t.same(Object.keys(document.info), ['title', 'version'], 'no description key without one')
  t.match(document.servers.channels, { host: 'localhost', protocol: 'ws', pathname: '/ws', title: 'fastify-channels', description: /^JSON text frames/ })
  t.equal(document.defaultContentType, 'application/json')
  t.same(app.channels.asyncapi({ info: { description: 'Chat.' } }).info, { title: 'Channels API', version: '1.0.0', description: 'Chat.' })
  t.same(document.components.schemas, {}, 'nothing referenced')
})

t.test('client messages: the default event may be left out, an id asks for an answer; server messages always name their event', async (t) => {
  const app = await build(t, (app) => {
    app.channels.on('message', { event: 'message', channel: 'lobby' }, () => 1)
    app.channels.on('message', { channel: /^r-/ }, () => 1)
    app.channels.on('message', { event: 'say', schema: Type.String() }, () => 1)
    app.channels.emits('message', { schema: Type.String() })
  })
  const { channels, operations, messages } = parts(app.channels.asyncapi())
  t.same(messages.receive_message.headers, {
    type: 'object',
    properties: {
      type: { type: 'string', const: 'message' },
      event: { type: 'string', const: 'message' },
      channel: { type: 'string', const: 'lobby' },
      id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'asks for an answer: an ack or an error with this id' }
    },
    required: ['type', 'channel']
  })
  t.same(messages.receive_anyEvent.headers.properties.event, { type: 'string', minLength: 1, description: 'any event (absent means "message")' })
  t.same(messages.receive_anyEvent.headers.required, ['type', 'channel'])
  t.match(messages.receive_anyEvent, { name: 'anyEvent', title: 'any event', summary: 'Any data.', contentType: 'application/json', correlationId: { location: '$message.header#/id' } })
  t.same(messages.receive_anyEvent.payload, {}, 'no schema: any payload')
  t.match(operations.receive_anyEvent, { action: 'receive', title: 'any event', summary: /^A message frame that this handler runs for\. Every handler that matches/ })
  t.match(messages.receive_say, { name: 'say', title: 'say', summary: /^Data that fails the schema is answered VALIDATION_FAILED/ })
  t.same(messages.receive_say.headers.properties.channel, { type: 'string', description: 'any channel the connection holds, or none' })
  t.same(messages.send_message.headers, {
    type: 'object',
    properties: {
      type: { type: 'string', const: 'message' },
      event: { type: 'string', const: 'message' },
      channel: { type: 'string', description: 'the channel, if the message was sent to one' }
    },
    required: ['type', 'event']
  })
  t.same(messages.send_message, { name: 'message', title: 'message', contentType: 'application/json', headers: messages.send_message.headers, payload: { type: 'string' } })
  t.same(operations.send_message, { action: 'send', channel: { $ref: '#/channels/anyChannel' }, title: 'message', messages: [{ $ref: '#/channels/anyChannel/messages/send_message' }] })
  t.same(operations.receive_message.reply, {
    channel: { $ref: '#/channels/channel_lobby' },
    messages: [{ $ref: '#/channels/channel_lobby/messages/protocolAck' }, { $ref: '#/channels/channel_lobby/messages/protocolError' }]
  })
  t.same(channels.channel_lobby.messages, {
    receive_message: { $ref: '#/components/messages/receive_message' },
    protocolAck: { $ref: '#/components/messages/protocolAck' },
    protocolError: { $ref: '#/components/messages/protocolError' }
  })
  t.same(channels.anyChannel, {
    address: null,
    title: 'any channel',
    description: 'Messages on any channel, or on none.',
    messages: {
      receive_say: { $ref: '#/components/messages/receive_say' },
      protocolAck: { $ref: '#/components/messages/protocolAck' },
      protocolError: { $ref: '#/components/messages/protocolError' },
      send_message: { $ref: '#/components/messages/send_message' }
    }
  })
})

t.test('channel keys: one per filter, made unique; names with braces are no address', async (t) => {
  const app = await build(t, (app) => {
    app.channels.on('message', { event: 'a', channel: 'a b' }, () => 1)
    app.channels.on('message', { event: 'b', channel: 'a_b' }, () => 1)
    app.channels.on('message', { event: 'c', channel: 'a b' }, () => 1)
    app.channels.on('message', { event: 'd', channel: '{x}' }, () => 1)
    app.channels.on('message', { event: 'e', channel: /^x/ }, () => 1)
    app.channels.on('message', { event: 'f', channel: /^y/i }, () => 1)
    app.channels.on('message', { event: 'g', channel: /^x/ }, () => 1)
    app.channels.on('message', { event: 'a b', channel: 'a b' }, () => 1)
    app.channels.on('message', { event: 'a_b', channel: 'a b' }, () => 1)
    app.channels.on('message', { event: 'h', channel: 'a?b' }, () => 1)
    app.channels.on('message', { event: 'i', channel: 'a  b' }, () => 1)
    app.channels.on('message', { event: 'j', channel: '/^x/' }, () => 1)
  })
  const { channels, operations } = parts(app.channels.asyncapi())
  t.same(Object.keys(channels), ['protocol', 'channel_a_b', 'channel_a_b_2', 'channel__x_', 'pattern_4', 'pattern_5', 'channel_a_b_3', 'channel_a_b_4', 'channel__x__2'],
    'a run of other characters is one "_"; a third and fourth name alike count on; a name spelled like a RegExp is a channel of its own')
  t.match(channels.channel__x__2, { address: '/^x/', title: '/^x/' })
  t.same(Object.keys(channels.channel__x__2.messages), ['receive_j', 'protocolAck', 'protocolError'])
  t.same(channels.channel_a_b.title, 'a b')
  t.same(channels.channel_a_b_2.address, 'a_b')
  t.match(channels.channel__x_, { address: null, title: '{x}', description: 'The channel "{x}".' })
  t.match(channels.pattern_4, { address: '{channel}', title: '/^x/', description: 'Every channel whose name matches /^x/.' })
  t.match(channels.pattern_5.parameters, { channel: { description: 'a channel name matching /^y/i', 'x-pattern': '^y' } })
  t.same(Object.keys(channels.pattern_4.messages), ['receive_e', 'protocolAck', 'protocolError', 'receive_g'])
  t.same(Object.keys(operations).filter((key) => key.startsWith('receive_a')), ['receive_a', 'receive_a_b', 'receive_a_b_2'], 'operation keys made unique too')
  t.same([operations.receive_a_b.title, operations.receive_a_b_2.title], ['a b', 'a_b'])
})

t.test('the protocol operations: what each answers', async (t) => {
  const app = await build(t, () => {})
  const { channels, operations } = parts(app.channels.asyncapi())
  t.match(channels.protocol, { address: null, title: 'protocol', description: 'The frames of the protocol itself, on every connection.' })
  const protocol = (key: string): Json => ({ $ref: `#/channels/protocol/messages/${key}` }) as unknown as Json
  t.same(operations.subscribe, {
    action: 'receive',
    channel: { $ref: '#/channels/protocol' },
    title: 'subscribe',
    summary: 'A client joins a channel.',
    messages: [protocol('protocolSubscribe')],
    reply: { channel: { $ref: '#/channels/protocol' }, messages: [protocol('protocolSubscribed'), protocol('protocolError')] }
  })
  t.same(operations.unsubscribe, {
    action: 'receive',
    channel: { $ref: '#/channels/protocol' },
    title: 'unsubscribe',
    summary: 'A client leaves a channel.',
    messages: [protocol('protocolUnsubscribe')],
    reply: { channel: { $ref: '#/channels/protocol' }, messages: [protocol('protocolUnsubscribed')] }
  })
  t.same(operations.welcome, { action: 'send', channel: { $ref: '#/channels/protocol' }, title: 'welcome', summary: 'Sent first on every connection.', messages: [protocol('protocolWelcome')] })
  t.match(operations.serverSubscriptions, { action: 'send', title: 'server-side subscriptions', summary: 'The server subscribed or unsubscribed the connection itself.', messages: [protocol('protocolSubscribed'), protocol('protocolUnsubscribed')] })
  t.match(operations.notices, { action: 'send', title: 'notices', summary: 'Errors no frame asked for (e.g. RATE_LIMITED).', messages: [protocol('protocolError')] })
  t.notOk('reply' in operations.welcome)
  t.same(Object.keys(channels.protocol.messages), ['protocolWelcome', 'protocolSubscribe', 'protocolSubscribed', 'protocolUnsubscribe', 'protocolUnsubscribed', 'protocolError', 'protocolRequest', 'protocolReply'],
    'the ack is carried by the channels of the handlers that answer it')
})
