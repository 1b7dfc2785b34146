/**
 * The AsyncAPI document: it passes @asyncapi/parser with no error, for the example chat and
 * for a fixture with every kind of filter and schema, and its payloads are the handlers'
 * schemas as JSON Schema.
 */
import t from 'tap'
import { Parser, DiagnosticSeverity } from '@asyncapi/parser'
import type { AsyncApiDocument } from '../../plugin/index.js'
import { buildChatApp } from '../../example-chat/server.js'
import { chatEvents, roomPattern } from '../../example-chat/events.js'
import { buildContractApp, Chat, Joined, Moderated, Reaction, Shape, Typing } from './fixtures/contract-app.js'

/** A JSON document read by path (a missing key fails the assertion that reads it, not the compiler). */
interface Json { [key: string]: Json }

/** The schema as JSON (what a document can hold): Symbol keys gone. */
const asJson = (schema: unknown): unknown => JSON.parse(JSON.stringify(schema))

async function parse (document: AsyncApiDocument): Promise<{ errors: string[], warnings: string[] }> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(document))
  const describe = (severity: DiagnosticSeverity): string[] => diagnostics
    .filter((diagnostic) => diagnostic.severity === severity)
    .map((diagnostic) => `${diagnostic.code}: ${diagnostic.message} at ${diagnostic.path.join('/')}`)
  return { errors: describe(DiagnosticSeverity.Error), warnings: describe(DiagnosticSeverity.Warning) }
}

/** The message an operation carries (following the document's own references). */
function messageOf (document: AsyncApiDocument, operationKey: string): Json {
  const operation = document.operations[operationKey] as unknown as Json | undefined
  if (operation === undefined) throw new Error(`no operation ${operationKey}`)
  const inChannel = (operation.messages[0].$ref as unknown as string).split('/')
  const channel = document.channels[inChannel[2]] as unknown as Json
  const key = (channel.messages[inChannel[4]].$ref as unknown as string).split('/').pop() as string
  return document.components.messages[key] as unknown as Json
}

t.test('the fixture app: zero parser errors, every handler and declaration an operation', async (t) => {
  const app = await buildContractApp()
  t.teardown(() => app.close())
  const document = app.channels.asyncapi({ info: { title: 'Fixture', version: '2.0.0' }, host: 'example.com:8080', protocol: 'wss' })
  const { errors, warnings } = await parse(document)
  t.same(errors, [], 'no parser errors')
  t.same(warnings, [], 'no parser warnings')

  t.equal(document.asyncapi, '3.0.0')
  t.same(document.info, { title: 'Fixture', version: '2.0.0' })
  t.match(document.servers.channels, { host: 'example.com:8080', protocol: 'wss', pathname: '/socket' })

  const operations = document.operations as unknown as Record<string, Json>
  t.same(Object.keys(operations).filter((key) => key.startsWith('receive_') || key.startsWith('send_')), [
    'receive_chat', 'receive_chat_2', 'receive_react', 'receive_tree', 'receive_path', 'receive_shape', 'receive_ping', 'receive_anyEvent',
    'send_chat', 'send_typing', 'send_joined', 'send_tree'
  ], 'one operation per handler and per declaration, in registration order')
  for (const [key, operation] of Object.entries(operations)) {
    if (key.startsWith('receive_')) {
      t.equal(operation.action, 'receive', key)
      t.match(operation.reply.messages, [{ $ref: /protocolAck$/ }, { $ref: /protocolError$/ }], `${key}: answered by an ack or an error`)
    }
    if (key.startsWith('send_')) t.equal(operation.action, 'send', key)
  }
})

t.test('payloads are the schemas as JSON Schema; headers describe the frame', async (t) => {
  const app = await buildContractApp()
  t.teardown(() => app.close())
  const document = app.channels.asyncapi()
  t.same(messageOf(document, 'receive_chat').payload, asJson(Chat), 'optional fields')
  t.same(messageOf(document, 'receive_chat_2').payload, asJson(Moderated), 'a second schema on the same event')
  t.same(messageOf(document, 'receive_react').payload, asJson(Reaction), 'unions and literals')
  const shapeWithoutIds: unknown = JSON.parse(JSON.stringify(Shape), (key, value: unknown) => key === '$id' ? undefined : value)
  t.same(messageOf(document, 'receive_shape').payload, shapeWithoutIds, 'an embedded schema with its own $id stays inline, without the $id')
  t.same(messageOf(document, 'receive_ping').payload, {}, 'no schema: any data')
  t.same(messageOf(document, 'receive_anyEvent').payload, {}, 'no filter, no schema')
  t.same(messageOf(document, 'send_typing').payload, asJson(Typing))
  t.same(messageOf(document, 'send_joined').payload, asJson(Joined))

  const chat = messageOf(document, 'receive_chat')
  t.same(chat.headers.properties.event, { type: 'string', const: 'chat' })
  t.same(chat.headers.properties.channel, { type: 'string', pattern: '^room-\\d+$', description: 'a channel matching /^room-\\d+$/' })
  t.same(chat.headers.required, ['type', 'event', 'channel'])
  t.same(messageOf(document, 'receive_react').headers.properties.channel, { type: 'string', const: 'lobby' })
  t.same(messageOf(document, 'receive_anyEvent').headers.required, ['type'], 'any event, any channel or none')
  t.notOk('id' in messageOf(document, 'send_joined').headers.properties, 'server messages carry no id')
})

t.test('channels: a string filter is an address, a RegExp a parameter with its pattern, no filter any channel', async (t) => {
  const app = await buildContractApp()
  t.teardown(() => app.close())
  const channels = app.channels.asyncapi().channels as unknown as Record<string, Json>
  t.same(Object.keys(channels), ['protocol', 'pattern_1', 'channel_lobby', 'anyChannel'])
  t.match(channels.channel_lobby, { address: 'lobby' })
  t.match(channels.pattern_1, {
    address: '{channel}',
    parameters: { channel: { description: 'a channel name matching /^room-\\d+$/', 'x-pattern': '^room-\\d+$' } }
  })
  t.same(Object.keys(channels.pattern_1.messages).sort(),
    ['protocolAck', 'protocolError', 'receive_chat', 'receive_chat_2', 'send_chat', 'send_typing'])
  t.equal(channels.anyChannel.address, null)
  t.equal(channels.protocol.address, null)
})

t.test('recursive and referenced schemas: valid JSON Schema with $ref into components', async (t) => {
  const app = await buildContractApp()
  t.teardown(() => app.close())
  const document = app.channels.asyncapi()
  const tree = { type: 'object', required: ['name', 'children'], properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#/components/schemas/Tree' } } } }
  t.same(messageOf(document, 'receive_tree').payload, tree, 'Type.Recursive: the payload inline, its self-reference into components')
  t.same(messageOf(document, 'send_tree').payload, tree, 'the same schema emitted: the same component')
  t.same(document.components.schemas.Tree, tree)
  t.same(messageOf(document, 'receive_path').payload, { $ref: '#/components/schemas/Path' }, 'a Type.Module import')
  t.same(document.components.schemas.Path, { type: 'object', required: ['start', 'length'], properties: { start: { $ref: '#/components/schemas/Node' }, length: { type: 'integer' } } })
  t.same(document.components.schemas.Node, { type: 'object', required: ['id'], properties: { id: { type: 'string' }, next: { $ref: '#/components/schemas/Node' } } })

  const text = JSON.stringify(document)
  t.notMatch(text, /"\$id"/, 'no $id left')
  t.notMatch(text, /"\$defs"/, 'no $defs left')
  const refs = [...text.matchAll(/"\$ref":"([^"]*)"/g)].map(([, ref]) => ref)
  t.ok(refs.length > 0)
  t.same(refs.filter((ref) => !ref.startsWith('#/')), [], 'every $ref is a JSON pointer into the document')

  // The parser resolves every reference, the circular ones included.
  const { document: parsed } = await new Parser().parse(text)
  t.equal(parsed?.components().schemas().get('Tree')?.type(), 'object')
  t.equal(parsed?.components().schemas().get('Node')?.properties()?.next?.type(), 'object', 'Node.next resolved to Node itself')
})

t.test('the example chat: zero parser errors, its handlers and declared events', async (t) => {
  const app = await buildChatApp({ password: 'x' })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/asyncapi.json', headers: { host: 'chat.example:3000' } })
  t.equal(response.statusCode, 200)
  const document = response.json() as AsyncApiDocument
  t.same((await parse(document)).errors, [])
  t.match(document.servers.channels, { host: 'chat.example:3000', protocol: 'ws', pathname: '/ws' }, 'served with the Host it was asked on')
  t.same(messageOf(document, 'receive_chat').payload, asJson(chatEvents.chat.send))
  t.same(messageOf(document, 'receive_nick').payload, asJson(chatEvents.nick.send))
  t.same(messageOf(document, 'receive_unlock').payload, asJson(chatEvents.unlock.send))
  for (const event of ['chat', 'renamed', 'announce'] as const) {
    const message = messageOf(document, `send_${event}`)
    t.same(message.payload, asJson(chatEvents[event].receive), `${event} is declared with its schema`)
    t.equal(message.headers.properties.channel.pattern, roomPattern.source)
  }
})
