/**
 * Type tests of the client's end-to-end types: checked by `tsc --noEmit` (npm test) and by
 * test/client/types.test.ts, which also proves that every `@ts-expect-error` below fails for
 * its own line. Nothing here runs.
 */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { connect, type ChannelsClient, type EventMap, type Status } from '../../../client/index.js'
import '../../../plugin/index.js'

function use (..._values: unknown[]): void {}

// ---- one description of the events, shared by server and client ------------------------
const ChatMessage = Type.Object({ text: Type.String({ minLength: 1 }) })
const ChatLine = Type.Object({ nick: Type.String(), text: Type.String(), at: Type.Number() })
const Ok = Type.Object({ ok: Type.Literal(true) })
const Typing = Type.Object({ nick: Type.String() })
const Ping = Type.Object({ n: Type.Integer() })

const events = {
  chat: { send: ChatMessage, receive: ChatLine, reply: Ok },
  typing: { receive: Typing },
  report: { send: Type.String() },
  ping: Ping
}
type Events = EventMap<typeof events>

// The server validates with the same schemas: its handler's data is typed by them.
export function server (app: FastifyInstance): void {
  app.channels.on('message', { event: 'chat', schema: events.chat.send }, (_socket, data) => {
    const text: string = data.text
    // @ts-expect-error the server handler's data has no `nick`
    return { ok: true, length: text.length + data.nick.length }
  })
}

export async function client (): Promise<void> {
  // The documented lines compile under `strict`, with `ws` and with the DOM's WebSocket alike.
  const client = connect<Events>('ws://127.0.0.1:3000/ws', { WebSocket })
  connect('ws://127.0.0.1:3000/ws', { WebSocket: globalThis.WebSocket }).close()
  // @ts-expect-error not a WebSocket class
  connect('ws://127.0.0.1:3000/ws', { WebSocket: Map })

  client.send('chat', { text: 'hi' }, { channel: 'room-1' })
  // @ts-expect-error a wrong payload type
  client.send('chat', { text: 42 }, { channel: 'room-1' })
  // @ts-expect-error a missing field
  client.send('chat', {}, { channel: 'room-1' })
  // @ts-expect-error an unknown event name
  client.send('chta', { text: 'hi' })
  // @ts-expect-error an event the client may only receive
  client.send('typing', { nick: 'x' })
  client.send('report', 'a string payload')
  client.send('ping', { n: 1 })

  const reply = await client.request('chat', { text: 'hi' }, { channel: 'room-1', timeout: 1000 })
  const ok: true = reply.ok
  // @ts-expect-error the reply is typed by its schema
  const wrong: string = reply.ok
  const untypedReply = await client.request('report', 'x')
  // @ts-expect-error without a reply schema the ack's data is unknown
  untypedReply.anything = 1
  // @ts-expect-error a wrong request payload
  await client.request('chat', { text: null })

  const off = client.on('chat', (line, meta) => {
    const nick: string = line.nick
    const at: number = line.at
    const event: 'chat' = meta.event
    const channel: string | undefined = meta.channel
    // @ts-expect-error no such field on a ChatLine
    return [nick, at, event, channel, line.colour]
  })
  off()
  client.on('typing', (typing) => typing.nick.toUpperCase())
  client.on('ping', (ping) => ping.n.toFixed())
  // @ts-expect-error an event the client only sends
  client.on('report', () => {})
  // @ts-expect-error an unknown event
  client.on('chatt', () => {})

  const status: Status = client.status
  const sessionId: string | undefined = client.sessionId
  // @ts-expect-error statuses are a closed set
  const bad: 'disconnected' = client.status
  client.onStatus((now) => now === 'reconnecting')
  client.onError((error) => error.code === 'DISCONNECTED' && error.errors?.[0].path)
  await client.subscribe('room-1')
  await client.unsubscribe('room-1')
  client.close()
  return use(ok, wrong, status, sessionId, bad)
}

// An event map may be written by hand, as an interface too.
interface HandWritten {
  hello: { send: { name: string }, reply: string }
  news: { receive: { headline: string } }
}
export async function handWritten (client: ChannelsClient<HandWritten>): Promise<void> {
  const greeting: string = await client.request('hello', { name: 'Ada' })
  client.on('news', (news) => news.headline.trim())
  // @ts-expect-error wrong field name
  client.send('hello', { nom: 'Ada' })
  use(greeting)
}

// Without an event map: any event name, unknown payloads.
export async function untyped (): Promise<void> {
  const client = connect('ws://127.0.0.1:3000/ws', { WebSocket })
  client.send('anything', { at: 'all' })
  const reply = await client.request('whatever', 1)
  client.on('news', (data) => data)
  // @ts-expect-error an untyped reply is unknown, not any
  reply.field = 1
}
