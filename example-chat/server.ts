/**
 * The example chat: rooms are channels, nicknames live in `socket.context`, every message is
 * validated by the TypeBox schemas of `events.ts`, and `private-*` rooms refuse whoever has
 * not sent the password. Rooms are history channels: a joiner asks for the last 50 lines
 * (`last`), and a page that reconnects gets what it missed (`since`), both from the plugin,
 * on any node. Rooms are presence channels too: each socket is tracked under its nick (the
 * connection's user: the nick the page connects with, `?nick=`), so the
 * member lists are the same on every node that shares a Redis broker, two tabs of one nick
 * show once, and the pages tell who joined and left from presence, live: those notices are
 * no publications, so the rooms' history keeps the conversation, not the comings and goings.
 * Its whole channels API is described at /asyncapi.json (AsyncAPI 3).
 *
 *   npm start    builds, then serves http://127.0.0.1:3000
 *
 * The environment it reads (PORT, HOST, REDIS_URL, NATS_URL, CHAT_REDIS_PREFIX, CHAT_PASSWORD,
 * CHAT_ORIGINS, LOG_LEVEL, LOG_FORMAT) is listed in README.md beside it.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fastifyChannels, { ChannelError, natsBroker, redisBroker, type ChannelSocket, type ChannelsOptions } from '../plugin/index.js'
import type { Static } from '@sinclair/typebox'
import {
  AnnounceBody, chatEvents, maxRoomLength, type MemberMeta, Nick, privatePrefix, RoomHistory, RoomList, RoomParams, roomPattern
} from './events.js'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Rooms } from './rooms.js'
import { buildOrExplain, chatLogger, envOrigins, envPort, exitOnStartFailure, listenOrExplain } from './run.js'

declare module '../plugin/types.js' {
  interface ChannelContext {
    nick?: string
    /** the private rooms whose password this connection sent */
    unlocked?: Set<string>
  }
}

export interface ChatOptions {
  /** Fastify's logger option [false] */
  logger?: FastifyServerOptions['logger']
  /** the password of every `private-*` room [env CHAT_PASSWORD, else 'letmein'] */
  password?: string
  /** the rooms listed on the page [lobby, random, private-lounge] */
  rooms?: string[]
  /** publications a room keeps for newcomers and reconnecting pages (the plugin's history size) [50] */
  historySize?: number
  /** the token of the admin page at /channels/admin?token=... [env ADMIN_TOKEN, else no admin page] */
  adminToken?: string
  /** options of fastify-channels */
  channels?: ChannelsOptions
}

const here = dirname(fileURLToPath(import.meta.url))

/**
 * Fastify logs two info lines per request; the chat one debug line once it is answered (a
 * failed request keeps Fastify's error line). At the default level, `npm start` logs what
 * happens in the chat (listening, sockets, closing), not every page asset it serves.
 */
class RequestLog extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error !== null && error !== undefined) {
      super.requestCompleted(error, request, reply)
      return
    }
    request.log.debug(`${request.method} ${request.url} ${reply.statusCode} (${Math.round(reply.elapsedTime)} ms)`)
  }
}

/** The page's files: beside this module when run from the sources, in the source tree when run from dist/. */
export function publicDir (): string {
  const candidates = [join(here, 'public'), join(here, '..', '..', 'example-chat', 'public')]
  const found = candidates.find((dir) => existsSync(join(dir, 'index.html')))
  if (found === undefined) throw new Error(`example-chat: no public/index.html in ${candidates.join(' or ')}`)
  return found
}

const nickCheck = TypeCompiler.Compile(Nick)
function isNick (value: unknown): value is string {
  return nickCheck.Check(value)
}

function isRoom (name: string): boolean {
  return name.length <= maxRoomLength && roomPattern.test(name)
}

/** Compares without leaking, through timing, how much of the password was right. */
function samePassword (given: string, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(given), digest(expected))
}

export async function buildChatApp (options: ChatOptions = {}): Promise<FastifyInstance> {
  const password = options.password ?? process.env.CHAT_PASSWORD ?? 'letmein'
  const listed = options.rooms ?? ['lobby', 'random', `${privatePrefix}lounge`]
  const historySize = options.historySize ?? 50
  const adminToken = options.adminToken ?? process.env.ADMIN_TOKEN ?? ''
  const rooms = new Rooms()
  const app = Fastify({ logger: options.logger ?? false, logController: new RequestLog() })

  await app.register(fastifyChannels, {
    path: '/ws',
    history: { channel: roomPattern, size: historySize },
    presence: roomPattern,
    asyncapi: '/asyncapi.json',
    // Prometheus metrics at /metrics (docs/observability.md): connections, messages, deliveries, broker health.
    metrics: true,
    // The admin page, behind the token (docs/admin.md); none without one.
    ...(adminToken === ''
      ? {}
      : { admin: { authorize: (request: FastifyRequest) => samePassword(String((request.query as { token?: unknown }).token ?? ''), adminToken) } }),
    // A member is a user: the nickname the page connects with (`?nick=`), so every tab and device
    // of one nick is one member, tracked once per connection (the page shows the device count).
    user: (request) => {
      const { nick } = request.query as { nick?: unknown }
      return isNick(nick) ? nick : undefined
    },
    ...options.channels
  })
  await app.register(fastifyStatic, { root: publicDir(), prefix: '/' })

  const nickOf = (socket: ChannelSocket): string => socket.context.nick ?? 'guest'

  /**
   * Present in `channel` under the socket's nick, with what the page shows of each device: under
   * its user (no key) while the nick is the one it connected with, under the new nick after a rename.
   */
  const track = async (socket: ChannelSocket, channel: string): Promise<void> => {
    const since = rooms.seat(channel, socket.id)?.since ?? Date.now()
    const nick = nickOf(socket)
    const meta: Static<typeof MemberMeta> = { nick, since }
    await socket.track(channel, nick === socket.user ? undefined : nick, meta)
  }

  /** People in a room over every node: distinct nicks, however many tabs each has open. */
  const headCount = async (channel: string): Promise<number> => Object.keys(await app.channels.presence(channel)).length

  app.channels.on('connect', (socket) => {
    socket.context.nick = socket.user ?? `guest-${socket.id.replace(/[^a-z0-9]/gi, '').slice(0, 4).toLowerCase()}`
    socket.context.unlocked = new Set()
  })

  // ---- subscriptions: the room rules, then the seat and the track (handlers run in this order)
  app.channels.on('subscribe', (_socket, channel) => {
    if (!isRoom(channel)) throw new ChannelError('INVALID_ROOM', 'room names are lowercase letters, digits and dashes (at most 32)')
  })
  app.channels.on('subscribe', { channel: new RegExp(`^${privatePrefix}`) }, (socket, channel) => {
    if (socket.context.unlocked?.has(channel) !== true) {
      throw new ChannelError('FORBIDDEN', 'this room is private: send its password first')
    }
  })
  app.channels.on('subscribe', (socket, channel) => {
    rooms.join(channel, socket.id, nickOf(socket))
    // No join notice is published: a publication to a history channel is stored, and a reload
    // or a restart would fill the room's last 50 lines with them. The track (`subscribed`) is the
    // notice: every page in the room gets it as a presence diff, live, on every node. The
    // joiner's view comes from the plugin: the room's lines from its history (the page
    // subscribes with `last`), who is there from the `presence` frame that follows `subscribed`.
  })
  // `subscribed` runs once the socket holds the channel (after its `subscribed` and `presence`
  // frames): the track is the join notice every page in the room gets as a presence diff.
  app.channels.on('subscribed', async (socket, channel) => {
    await track(socket, channel)
  })
  app.channels.on('unsubscribe', (socket, channel) => {
    // Leaving untracks by itself: the member lists, and the pages' leave notices, follow through presence.
    rooms.leave(channel, socket.id)
  })
  app.channels.on('finish', (socket) => { rooms.forget(socket.id) })

  // ---- what the server sends, declared for the contract document served at /asyncapi.json
  app.channels
    .emits('chat', { channel: roomPattern, schema: chatEvents.chat.receive })
    .emits('renamed', { channel: roomPattern, schema: chatEvents.renamed.receive })
    .emits('announce', { channel: roomPattern, schema: chatEvents.announce.receive })

  // ---- messages, each validated by its schema
  app.channels.on('message', { event: 'nick', schema: chatEvents.nick.send }, async (socket, { nick }) => {
    const from = nickOf(socket)
    socket.context.nick = nick
    if (from === nick) return { nick }
    for (const channel of socket.channels) {
      rooms.rename(channel, socket.id, nick)
      // The key is the nick: a leave under the old and a join under the new, in one presence
      // diff, with the same `since`: the pages show the `renamed` line below, not a leave and a join.
      await track(socket, channel)
      await app.broadcastChannel(channel, { from, to: nick }, { event: 'renamed' })
    }
    return { nick }
  })

  app.channels.on('message', { event: 'unlock', schema: chatEvents.unlock.send }, (socket, { room, password: given }) => {
    if (!room.startsWith(privatePrefix)) throw new ChannelError('NOT_PRIVATE', `"${room}" needs no password`)
    if (!samePassword(given, password)) throw new ChannelError('WRONG_PASSWORD', 'wrong password')
    socket.context.unlocked?.add(room)
    return { ok: true }
  })

  app.channels.on('message', { event: 'chat', channel: roomPattern, schema: chatEvents.chat.send }, async (socket, { text }, meta) => {
    const channel = meta.channel as string // the filter only matches channel messages
    const line = { nick: nickOf(socket), text: text.trim(), at: Date.now() }
    await socket.sendAndBroadcastChannel(line, { channel, event: 'chat' })
    return { ok: true }
  })

  // ---- HTTP
  app.get('/rooms', { schema: { response: { 200: RoomList } } }, async () => {
    const names = [...new Set([...listed, ...[...rooms.active().keys()].sort()])]
    const counts = await Promise.all(names.map(headCount))
    return { rooms: names.map((name, i) => ({ name, members: counts[i], private: name.startsWith(privatePrefix) })) }
  })

  app.post<{ Params: { room: string }, Body: { text: string } }>('/rooms/:room/announce', {
    schema: { params: RoomParams, body: AnnounceBody }
  }, async (request, reply) => {
    const { room } = request.params
    const announcement = { text: request.body.text.trim(), at: Date.now() }
    await app.broadcastChannel(room, announcement, { event: 'announce' })
    return reply.code(202).send({ ok: true, room, members: await headCount(room) })
  })

  // What a page reloads when it could not recover what it missed (`recovered: false`).
  app.get<{ Params: { room: string } }>('/rooms/:room/history', {
    schema: { params: RoomParams, response: { 200: RoomHistory } }
  }, async (request, reply) => {
    const { room } = request.params
    const given = request.headers['x-room-password']
    if (room.startsWith(privatePrefix) && (typeof given !== 'string' || !samePassword(given, password))) {
      return await reply.code(403).send({ error: 'this room is private: send its password in x-room-password' })
    }
    return await app.channels.history(room, { last: historySize })
  })

  return app
}

async function main (): Promise<void> {
  const host = process.env.HOST ?? '127.0.0.1'
  const port = envPort()
  const redisUrl = process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL
  const natsUrl = process.env.NATS_URL === '' ? undefined : process.env.NATS_URL
  const origins = envOrigins()
  const prefix = process.env.CHAT_REDIS_PREFIX ?? 'chat'
  // NATS_URL wins over REDIS_URL; neither: the memory broker
  const broker = natsUrl !== undefined
    ? natsBroker({ servers: natsUrl, prefix })
    : redisUrl === undefined ? undefined : redisBroker({ url: redisUrl, prefix })
  const app = await buildOrExplain(async () => await buildChatApp({
    logger: chatLogger(),
    channels: {
      ...(origins === undefined ? {} : { origins }),
      // The same prefix as cluster.ts: chat processes started either way share their rooms.
      ...(broker === undefined ? {} : { broker })
    }
  }), natsUrl === undefined ? redisUrl : undefined)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, 'closing')
      app.close().then(() => process.exit(0), (err: unknown) => {
        app.log.error({ err }, 'close failed')
        process.exit(1)
      })
    })
  }
  const address = await listenOrExplain(app, host, port)
  // One line for the human who typed `npm start`, whatever the log format.
  const url = new URL(address)
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = 'localhost'
  process.stdout.write(`\nChat running at ${url.origin}/ (open it in two browser tabs; Ctrl-C stops it)\n\n`)
  if (app.hasRoute({ method: 'GET', url: '/channels/admin' })) {
    // the token only for a human at a terminal (development), never into a log collector
    const token = process.stdout.isTTY === true ? `?token=${encodeURIComponent(process.env.ADMIN_TOKEN ?? '')}` : '?token=<ADMIN_TOKEN>'
    process.stdout.write(`Admin page at ${url.origin}/channels/admin${token}\n\n`)
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch(exitOnStartFailure)
}
