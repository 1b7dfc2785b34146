/**
 * Type tests of the public server API: `npm test` type-checks this file (it is never run).
 * Each `@ts-expect-error` must meet an error, or the check fails (TS2578).
 */
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import fastifyChannels, {
  ChannelError, NoSocketError, memoryBroker, type Broker, type ChannelSocket, type ChannelsOptions, type MessageMeta
} from '../../plugin/index.js'

declare module '../../plugin/types.js' {
  interface ChannelContext {
    nick?: string
  }
}

const app = Fastify()
await app.register(fastifyChannels, { path: '/ws', maxChannels: 10, rateLimit: { max: 5 }, heartbeat: false })
// @ts-expect-error: unknown option
await app.register(fastifyChannels, { pth: '/ws' })
const options: ChannelsOptions = { broker: memoryBroker(), client: false }
void options
const gated: ChannelsOptions[] = [
  { origins: ['https://app.example.com', /https:\/\/[a-z]+\.example\.com/], maxConnections: 10000 },
  { origins: '*' },
  { origins: [] }
]
void gated
// @ts-expect-error: one origin is written as a list
await app.register(fastifyChannels, { origins: 'https://app.example.com' })
// @ts-expect-error: origins are strings or RegExps
await app.register(fastifyChannels, { origins: [42] })
// @ts-expect-error: a number of connections
await app.register(fastifyChannels, { maxConnections: '100' })

const Chat = Type.Object({ text: Type.String({ minLength: 1 }), to: Type.Optional(Type.String()) })

app.channels.on('message', { event: 'chat', channel: /^room-/, schema: Chat }, (socket, data, meta) => {
  const text: string = data.text
  const to: string | undefined = data.to
  // @ts-expect-error: data is typed by the schema, no such field
  void data.nope
  // @ts-expect-error: text is a string
  const wrong: number = data.text
  const channel: string | undefined = meta.channel
  const id: number | undefined = meta.id
  void [text, to, wrong, channel, id, socket.context.nick]
  socket.sendAndBroadcastChannel({ nick: socket.context.nick, text }, { channel: meta.channel, event: 'chat' })
  return { ok: true }
})

app.channels.on('message', (_socket, data, meta: MessageMeta) => {
  // @ts-expect-error: data without a schema is unknown until validated
  void data.text
  void meta.event
})

app.channels.on('message', { event: 'plain' }, async (_socket, data) => {
  if (typeof data === 'string') return data.toUpperCase()
})

// @ts-expect-error: unknown event
app.channels.on('nope', () => {})
// @ts-expect-error: connect takes no channel filter
app.channels.on('connect', { channel: 'a' }, () => {})
// @ts-expect-error: only message handlers take a schema
app.channels.on('subscribe', { schema: Chat }, () => {})

app.channels
  .on('connect', (socket: ChannelSocket) => { socket.context.nick = 'anon' })
  .on('subscribe', { channel: /^private-/ }, (socket, channel) => {
    const name: string = channel
    if (socket.request.headers.authorization === undefined) throw new ChannelError('FORBIDDEN', `members only: ${name}`)
  })
  .on('unsubscribe', { channel: 'room-1' }, () => {})
  .on('error', (_socket, error) => { const message: string = error.message; void message })
  .on('disconnect', (_socket, { code, reason }) => { const c: number = code; const r: string = reason; void [c, r] })
  .on('finish', (socket) => { const held: ReadonlySet<string> = socket.channels; void held })

app.channels.on('connect', (socket) => {
  // @ts-expect-error: channels is read-only
  socket.channels.add('x')
  // @ts-expect-error: the id is read-only
  socket.id = 'mine'
  const nick: string | undefined = socket.context.nick
  void nick
})

const done: Promise<void> = app.broadcast({ any: 'json' }, { event: 'news' })
void done
void app.broadcastChannel('room-1', { text: 'hi' }, { event: 'chat' })
// @ts-expect-error: the channel comes first
void app.broadcastChannel({ text: 'hi' }, 'room-1')
void app.send('session-id', 'hi', { event: 'dm', channel: 'room-1' })
// @ts-expect-error: a session id is a string
void app.send(42, 'hi')

app.send('x', 1).catch((err: unknown) => {
  if (err instanceof NoSocketError) {
    const code: string = err.code
    void code
  }
})

const custom: Broker = memoryBroker()
void custom.connect

// ---- presence
await app.register(fastifyChannels, { presence: true })
await app.register(fastifyChannels, { presence: /^room-/ })
// @ts-expect-error: presence is a boolean, a channel name or a RegExp
await app.register(fastifyChannels, { presence: 42 })
app.channels.on('subscribe', async (socket: ChannelSocket, channel) => {
  await socket.track(channel, 'ann', { name: 'Ann' })
  await socket.track(channel, 'ann')
  // @ts-expect-error: the key is a string
  await socket.track(channel, 7)
  await socket.untrack(channel)
})
const people = await app.channels.presence('room-1')
const firstRef: string | undefined = people.ann?.[0]?.ref
const firstMeta: unknown = people.ann?.[0]?.meta
void [firstRef, firstMeta]
