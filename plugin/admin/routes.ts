/**
 * The admin page's routes, all under the `admin.path` option and all behind `authorize`:
 *
 *   GET  {path}                  the page (page.ts)       GET {path}/admin.js, /admin.css
 *   GET  {path}/api/nodes        every node's stats       GET {path}/api/feed  the same, live (SSE)
 *   GET  {path}/api/channel?name=  a channel's presence and last history entries
 *   POST {path}/api/disconnect   { sessionId }: closes that session (1008) on whichever node holds it;
 *                                { userId }: closes every session of that user, on every node
 *
 * They live in a context of their own, so the `onRequest` gate that calls `authorize` runs on
 * them and on nothing else of the app; a request it does not let through gets 401 and nothing of
 * the page. The feed pushes `nodes()` once a second to every open stream from one timer, which
 * runs only while a stream is open.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CloseCodes } from '../../schemas/protocol.js'
import { channelNameProblem } from '../../schemas/channel.js'
import type { ChannelServer } from '../node/server.js'
import { statsIntervalMs, type NodeStats } from '../node/stats.js'
import type { ResolvedAdmin } from './options.js'
import { adminCss, adminHtml } from './page.js'
import { adminScript } from './page-script.js'

/** the last history entries the channel view shows */
export const historyShown = 10
/** what a disconnected client is told */
export const disconnectReason = 'disconnected by an administrator'

const pageHeaders = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer'
}

/** Lets a request through only when `authorize` resolves `true`; 401 otherwise (a throw included, logged). */
function gate (authorize: ResolvedAdmin['authorize']) {
  return async function adminGate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff')
    let allowed = false
    try {
      allowed = (await authorize(request)) === true
    } catch (err) {
      request.log.error({ err }, 'channels: admin authorize failed')
    }
    if (!allowed) await reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'not authorized' })
  }
}

/**
 * The open live feeds and the one timer that feeds them: a stream whose client left is forgotten,
 * and the timer stops with the last one (an admin page left open and then closed must not keep
 * a timer and its response alive for the node's life).
 */
export class FeedHub {
  private readonly streams = new Set<ServerResponse>()
  private timer: NodeJS.Timeout | undefined

  /** @param nodes what each push sends: every node's stats (`ChannelServer.stats.nodes`) */
  constructor (private readonly nodes: () => Promise<NodeStats[]>) {}

  open (response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
    this.streams.add(response)
    response.on('close', () => {
      this.streams.delete(response)
      if (this.streams.size === 0) this.stop()
    })
    this.push([response]).catch(() => {}) // nodes() does not reject
    this.timer ??= setInterval(() => { this.push(this.streams).catch(() => {}) }, statsIntervalMs).unref()
  }

  private async push (streams: Iterable<ServerResponse>): Promise<void> {
    const nodes = await this.nodes()
    const event = `event: nodes\ndata: ${JSON.stringify({ at: Date.now(), nodes })}\n\n`
    for (const stream of streams) {
      if (!stream.writableEnded) stream.write(event)
    }
  }

  private stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Ends every stream (`fastify.close()` would otherwise wait for them). */
  close (): void {
    this.stop()
    for (const stream of this.streams) stream.end()
    this.streams.clear()
  }
}

/** What a disconnect's body names: `{ sessionId }` or `{ userId }` and nothing else; undefined when it is neither. */
function disconnectTarget (body: unknown): { sessionId: string } | { userId: string } | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined
  const keys = Object.keys(body)
  if (keys.length !== 1) return undefined
  const [key] = keys
  const value: unknown = (body as Record<string, unknown>)[key]
  // a session id is at most 200 characters, a user id (the `user` option) at most 1024
  const longest = key === 'sessionId' ? 200 : key === 'userId' ? 1024 : 0
  if (typeof value !== 'string' || value.length === 0 || value.length > longest) return undefined
  return key === 'sessionId' ? { sessionId: value } : { userId: value }
}

export async function serveAdmin (fastify: FastifyInstance, server: ChannelServer, admin: ResolvedAdmin): Promise<void> {
  const { path } = admin
  const script = adminScript()
  const feeds = new FeedHub(async () => await server.stats.nodes())
  fastify.addHook('preClose', async () => feeds.close())

  await fastify.register(async (scope) => {
    scope.addHook('onRequest', gate(admin.authorize))

    scope.get(path, async (request, reply) => {
      const at = request.url.indexOf('?')
      await reply.headers(pageHeaders).type('text/html; charset=utf-8').send(adminHtml(path, at === -1 ? '' : request.url.slice(at)))
    })
    scope.get(`${path}/admin.js`, async (_request, reply) => {
      await reply.type('text/javascript; charset=utf-8').send(script)
    })
    scope.get(`${path}/admin.css`, async (_request, reply) => {
      await reply.type('text/css; charset=utf-8').send(adminCss)
    })

    scope.get(`${path}/api/nodes`, async () => ({ at: Date.now(), nodes: await fastify.channels.nodes() }))

    scope.get(`${path}/api/feed`, (request, reply) => {
      reply.hijack()
      feeds.open(reply.raw)
    })

    scope.get(`${path}/api/channel`, async (request, reply) => {
      const { name } = request.query as { name?: unknown }
      const problem = channelNameProblem(name)
      if (problem !== undefined || typeof name !== 'string') {
        return await reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: `name: ${problem ?? 'required'}` })
      }
      try {
        return {
          channel: name,
          subscribers: server.channels.get(name)?.size ?? 0,
          presence: server.presence.isPresenceChannel(name) ? await fastify.channels.presence(name) : null,
          history: server.history?.covers(name) === true ? await fastify.channels.history(name, { last: historyShown }) : null
        }
      } catch (err) {
        request.log.warn({ err, channel: name }, 'channels: admin channel view failed')
        return await reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: 'the broker could not be asked' })
      }
    })

    scope.post(`${path}/api/disconnect`, async (request, reply) => {
      // JSON only: a cross-site form (text/plain, urlencoded) cannot post it without a CORS preflight
      if (request.headers['content-type']?.split(';')[0].trim().toLowerCase() !== 'application/json') {
        return await reply.code(415).send({ statusCode: 415, error: 'Unsupported Media Type', message: 'expected application/json' })
      }
      const target = disconnectTarget(request.body)
      if (target === undefined) {
        return await reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'expected { "sessionId": string } or { "userId": string }' })
      }
      if ('userId' in target) {
        try {
          const user = fastify.channels.user(target.userId)
          const sessions = (await user.sessions()).length
          await user.disconnect(CloseCodes.POLICY_VIOLATION, disconnectReason)
          request.log.info({ userId: target.userId, sessions }, 'channels: admin disconnected a user')
          return { sessions }
        } catch (err) {
          request.log.warn({ err, userId: target.userId }, 'channels: admin disconnect could not reach the broker')
          return await reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: 'the broker could not be reached' })
        }
      }
      const { sessionId } = target
      try {
        const here = await server.stats.closeSession(sessionId, CloseCodes.POLICY_VIOLATION, disconnectReason)
        request.log.info({ sessionId, here }, 'channels: admin disconnected a session')
        return { here }
      } catch (err) {
        request.log.warn({ err, sessionId }, 'channels: admin disconnect could not reach the broker')
        return await reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: 'the broker could not be reached' })
      }
    })
  })
}
