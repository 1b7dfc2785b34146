/**
 * Type tests of the contract API: checked by `tsc --noEmit` (npm test) and by
 * test/types/contract.test.ts, which also proves that every `@ts-expect-error` below fails for
 * its own line. Nothing here runs. `notAny(value, true)` does not compile when `value` is `any`.
 */
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import fastifyChannels, { type AsyncApiDocument, type InjectOptions } from '../../plugin/index.js'
import type { ChannelsClient, EventMap } from '../../client/index.js'

type IsAny<T> = 0 extends 1 & T ? true : false
function notAny<T> (_value: T, _proof: IsAny<T> extends true ? never : true): void {}

const Chat = Type.Object({ text: Type.String({ minLength: 1 }) })
const Line = Type.Object({ nick: Type.String(), text: Type.String() })
const Ok = Type.Object({ ok: Type.Boolean() })
const Typing = Type.Object({ nick: Type.String() })
const events = {
  chat: { send: Chat, receive: Line, reply: Ok },
  typing: { receive: Typing }
}
type Events = EventMap<typeof events>

export async function contract (): Promise<void> {
  const app = Fastify()
  await app.register(fastifyChannels, { asyncapi: '/asyncapi.json' })
  await app.register(fastifyChannels, { asyncapi: false })
  // @ts-expect-error the asyncapi option is a route path or false
  await app.register(fastifyChannels, { asyncapi: true })

  // ---- handler data and emits: typed by the same schemas
  app.channels
    .on('message', { event: 'chat', channel: /^room-/, schema: events.chat.send }, (_socket, data) => {
      notAny(data, true)
      const text: string = data.text
      // @ts-expect-error the handler's data is typed by its schema: no nick
      return { ok: text.length > 0, nick: data.nick }
    })
    .emits('chat', { channel: /^room-/, schema: events.chat.receive })
    .emits('typing', { schema: events.typing.receive })
    .on('connect', (socket) => { notAny(socket, true) })
  // @ts-expect-error emits needs a schema
  app.channels.emits('chat', { channel: 'lobby' })
  // @ts-expect-error a channel filter is a string or a RegExp
  app.channels.emits('chat', { channel: 42, schema: Line })
  // @ts-expect-error the event is a string
  app.channels.emits(7, { schema: Line })
  // @ts-expect-error no such option
  app.channels.emits('chat', { schema: Line, reply: Ok })

  // ---- the document
  const document: AsyncApiDocument = app.channels.asyncapi({ info: { title: 'Chat' }, host: 'example.com' })
  const version: '3.0.0' = document.asyncapi
  notAny(document.operations, true)
  // @ts-expect-error the server protocol is ws or wss
  app.channels.asyncapi({ protocol: 'http' })

  // ---- the injected client: typed by the event map, as connect<Events>()
  const options: InjectOptions = { headers: { authorization: 'Bearer x' }, query: { room: 'a' }, timeout: 1000, reconnect: false }
  const client: ChannelsClient<Events> = await app.channels.inject<Events>(options)
  notAny(client, true)
  await client.subscribe('room-1')
  const reply = await client.request('chat', { text: 'hi' }, { channel: 'room-1' })
  notAny(reply, true)
  const ok: boolean = reply.ok
  // @ts-expect-error the reply is typed by the reply schema
  const wrongReply: string = reply.ok
  client.on('chat', (line, meta) => {
    notAny(line, true)
    const nick: string = line.nick
    const event: 'chat' = meta.event
    return [nick, event]
  })
  client.on('typing', (typing) => typing.nick.toUpperCase())
  // @ts-expect-error what the client sends is what the handler's schema accepts
  client.send('chat', { nick: 'x' })
  // @ts-expect-error typing is server → client only
  client.send('typing', { nick: 'x' })
  // @ts-expect-error an event the map does not have
  client.on('nope', () => {})
  // @ts-expect-error query values are strings
  await app.channels.inject({ query: { n: 1 } })
  // @ts-expect-error the WebSocket is the injector's own
  await app.channels.inject({ WebSocket: class {} })

  // ---- without an event map: unknown payloads, never any
  const untyped = await app.channels.inject()
  const anything = await untyped.request('x', 1)
  notAny(anything, true)
  // @ts-expect-error unknown, not any
  void anything.field
  untyped.on('news', (data) => { notAny(data, true) })
  client.close()
  return void [version, ok, wrongReply]
}
