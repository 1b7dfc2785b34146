/**
 * `fastify.channels.inject()`: a connected client for tests, without a port. It is the real
 * client of `fastify-channels/client` over `ws`, whose HTTP upgrade runs over an in-memory
 * connection (memory-socket.ts) handed to the app's HTTP server as an incoming connection: the
 * request is parsed by Node, routed by Fastify, passes the app's hooks and is upgraded by
 * @fastify/websocket exactly as one from the network. An upgrade answered over HTTP (401, 403,
 * 404...) rejects with FST_CHANNELS_INJECT_REFUSED, carrying the status and body.
 */
import type { ClientRequestArgs, OutgoingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { connect, defaultTimeout, type ChannelsClient, type ClientOptions, type WebSocketConstructor } from '../../client/index.js'
import type { AnyEvents, EventTypeMap } from '../../schemas/events.js'
import { InjectFailedError, InjectRefusedError } from '../errors.js'
import { memoryConnection } from './memory-socket.js'

/** Most of a refusal's body kept on the error. */
const maxRefusalBody = 65536

export interface InjectOptions extends Omit<ClientOptions, 'WebSocket' | 'params'> {
  /** headers of the upgrade request (`authorization`, `cookie`, `origin`, `host`...) */
  headers?: OutgoingHttpHeaders
  /** query parameters of the upgrade request (on every reconnect too) */
  query?: Record<string, string>
}

/** What a refused upgrade was answered: on the error as `response`. */
export interface InjectRefusal {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** The injected clients of one app: each is closed for good when the app closes. */
export class InjectedClients {
  private readonly open = new Set<ChannelsClient<AnyEvents>>()

  constructor (private readonly fastify: FastifyInstance, private readonly path: string) {
    fastify.addHook('onClose', async () => { this.closeAll() })
  }

  closeAll (): void {
    for (const client of this.open) client.close()
    this.open.clear()
  }

  async inject<E extends EventTypeMap<E> = AnyEvents> (options: InjectOptions = {}): Promise<ChannelsClient<E>> {
    const { headers, query, ...clientOptions } = options
    const config = this.fastify.initialConfig as { https?: unknown, http2?: unknown }
    if (config.https !== undefined && config.https !== false) throw new InjectFailedError('inject() needs a plain HTTP server, not https')
    if (config.http2 === true) throw new InjectFailedError('inject() needs an HTTP/1.1 server, not http2')
    await this.fastify.ready()

    const server = this.fastify.server
    let refused: ((refusal: InjectRefusal) => void) | undefined
    // The client constructs one of these per (re)connect, each over a new in-memory connection.
    class InjectedWebSocket extends WebSocket {
      constructor (url: string) {
        let serverEnd: Duplex | undefined
        const request: ClientRequestArgs = {
          headers,
          createConnection: (): Duplex => {
            const connection = memoryConnection()
            serverEnd = connection.server
            server.emit('connection', serverEnd)
            return connection.client
          }
        }
        super(url, request)
        // Given up before it opened (a timeout, close(), a refusal): the server's end is dropped
        // too. Node hands an upgrade's socket over unread, so the EOF of the client's end would
        // go unseen, and an upgrade stuck in a hook that never settles would keep both ends.
        let opened = false
        this.once('open', () => { opened = true })
        this.once('close', () => { if (!opened) serverEnd?.destroy() })
        this.on('unexpected-response', (_request, response) => {
          let body = ''
          response.setEncoding('utf8')
          response.on('data', (chunk: string) => { if (body.length < maxRefusalBody) body += chunk })
          response.on('end', () => {
            refused?.({ statusCode: response.statusCode ?? 0, headers: { ...response.headers }, body: body.slice(0, maxRefusalBody) })
            this.terminate()
          })
        })
      }
    }

    const client = connect<E>(`ws://localhost${this.path}`, {
      ...clientOptions,
      WebSocket: InjectedWebSocket as unknown as WebSocketConstructor,
      ...(query === undefined ? {} : { params: query })
    })
    const untyped = client as unknown as ChannelsClient<AnyEvents>
    this.open.add(untyped)
    const forget = client.onStatus((status) => { if (status === 'closed') this.open.delete(untyped) })

    try {
      await new Promise<void>((resolve, reject) => {
        const timeout = clientOptions.timeout ?? defaultTimeout
        const timer = setTimeout(() => settle(new InjectFailedError(`no welcome within ${timeout} ms`)), timeout)
        const settle = (error?: Error): void => {
          clearTimeout(timer)
          refused = undefined
          off()
          if (error === undefined) resolve()
          else reject(error)
        }
        refused = (refusal) => settle(Object.assign(new InjectRefusedError(refusal.statusCode, refusal.body), { response: refusal }))
        const off = client.onStatus((status) => {
          if (status === 'open') settle()
          else if (status === 'closed') settle(new InjectFailedError('the connection closed before the welcome'))
        })
      })
    } catch (err) {
      client.close()
      forget()
      this.open.delete(untyped)
      throw err
    }
    return client
  }
}
