/**
 * The protocol's own frames in the AsyncAPI document: a client author needs nothing else.
 */
import t from 'tap'
import { Parser, DiagnosticSeverity } from '@asyncapi/parser'
import Fastify from 'fastify'
import fastifyChannels, { ErrorCodes, type AsyncApiDocument } from '../../plugin/index.js'

/** A JSON document read by path. */
interface Json { [key: string]: Json }

t.test('the protocol frames are in the document: subscribe, unsubscribe, welcome, error with its codes', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false })
  t.teardown(() => app.close())
  const document: AsyncApiDocument = app.channels.asyncapi()
  const { diagnostics } = await new Parser().parse(JSON.stringify(document))
  t.same(diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).map((d) => d.message), [], 'an app without handlers has a valid document too')
  const messages = document.components.messages as unknown as Record<string, Json>
  t.same(messages.protocolSubscribe.payload.properties.type, { const: 'subscribe', type: 'string' })
  t.same(messages.protocolWelcome.payload.required, ['type', 'sessionId', 'protocol'])
  t.same(messages.protocolError.payload.properties.code.examples, [...ErrorCodes])
  for (const code of ErrorCodes) t.match(messages.protocolError.payload.properties.code.description, code)
  const operations = document.operations as unknown as Record<string, Json>
  t.same(Object.keys(operations), ['subscribe', 'unsubscribe', 'welcome', 'serverSubscriptions', 'notices', 'serverRequests'])
  t.match(operations.serverRequests, { action: 'send', messages: [{ $ref: '#/channels/protocol/messages/protocolRequest' }], reply: { messages: [{ $ref: '#/channels/protocol/messages/protocolReply' }] } })
  t.match(operations.subscribe.reply.messages, [{ $ref: '#/channels/protocol/messages/protocolSubscribed' }, { $ref: '#/channels/protocol/messages/protocolError' }])
  t.match(document.servers.channels, { host: 'localhost', protocol: 'ws', pathname: '/ws' })
  t.match(document.servers.channels.description, /1008/, 'the close codes are stated')
  t.same(messages.protocolAck.headers.required, ['type', 'id'], 'the ack: its id in the headers, its data the payload')
  t.same(Object.keys(messages.protocolAck.headers.properties), ['type', 'id'], 'data is not among the headers')
  t.same(messages.protocolAck.correlationId, { location: '$message.header#/id' })
})

t.test('every protocol message and operation is named and explained for client authors', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { client: false })
  t.teardown(() => app.close())
  const document: AsyncApiDocument = app.channels.asyncapi()
  const messages = document.components.messages as unknown as Record<string, Json>
  const names = { protocolWelcome: 'welcome', protocolSubscribe: 'subscribe', protocolSubscribed: 'subscribed', protocolUnsubscribe: 'unsubscribe', protocolUnsubscribed: 'unsubscribed', protocolError: 'error', protocolRequest: 'request', protocolReply: 'reply', protocolAck: 'ack' }
  t.same(Object.keys(messages), Object.keys(names))
  for (const [key, name] of Object.entries(names)) {
    t.match(messages[key], { name, title: name, contentType: 'application/json', summary: /^[A-Z].{20,}/ }, key)
  }
  const codes = messages.protocolError.payload.properties.code.description as unknown as string
  for (const code of ErrorCodes) t.match(codes, new RegExp(`${code}: \\w[^.]{10,}`), `${code} is explained`)
  t.match(codes, /^One of the protocol codes below, or an application code/)
  t.match(codes, new RegExp(`${ErrorCodes[0]}: [^.]+\\. ${ErrorCodes[1]}: `), 'one sentence per code, apart')
  const operations = document.operations as unknown as Record<string, Json>
  for (const [key, operation] of Object.entries(operations)) t.match(operation, { title: /\w/, summary: /^[A-Z].{10,}/ }, key)
  t.same(Object.keys(document.channels.protocol.messages ?? {}).sort(), Object.keys(names).filter((key) => key !== 'protocolAck').sort(), 'the ack is carried where its handlers are')
  const description = document.servers.channels.description as string
  t.match(description, /is the welcome\. Close codes: /, 'the sentences apart')
  for (const stated of [/protocol version 1\./, /\{"type":"message","event":<event>/, /its payload describes data\./, /a frame that carries the same id:/,
    /an ack \(\{"type":"ack"/, /The first frame of every connection is the welcome\./,
    /Close codes: 1000 normal, 1001 server shutting down, 1008 policy \(refused by a connect handler, or persistent rate-limit abuse\), 1009 frame too large, 1013 slow consumer\./]) {
    t.match(description, stated)
  }
})
