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
  t.same(Object.keys(operations), ['subscribe', 'unsubscribe', 'welcome', 'serverSubscriptions', 'notices'])
  t.match(operations.subscribe.reply.messages, [{ $ref: '#/channels/protocol/messages/protocolSubscribed' }, { $ref: '#/channels/protocol/messages/protocolError' }])
  t.match(document.servers.channels, { host: 'localhost', protocol: 'ws', pathname: '/ws' })
  t.match(document.servers.channels.description, /1008/, 'the close codes are stated')
  t.same(messages.protocolAck.headers.required, ['type', 'id'], 'the ack: its id in the headers, its data the payload')
  t.same(messages.protocolAck.correlationId, { location: '$message.header#/id' })
})
