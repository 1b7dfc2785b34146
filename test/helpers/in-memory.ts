/**
 * For tests where a port is not the point: the app never listens, and raw protocol clients
 * (TestClient) reach it over the in-memory connection that `fastify.channels.inject()` uses,
 * handed to the app's HTTP server, so the upgrade passes Node's parser, Fastify's router and
 * the app's hooks as from the network. Faster than loopback, and no port to race for.
 */
import type { ClientRequestArgs } from 'node:http'
import type { Duplex } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type WebSocket from 'ws'
import fastifyChannels, { memoryBroker, type Broker, type ChannelSocket, type ChannelsOptions } from '../../plugin/index.js'
import { memoryConnection } from '../../plugin/contract/memory-socket.js'
import { recordSockets, TestClient } from './server.js'

/** ws client options whose connection is an in-memory one into `app`'s HTTP server. */
export function inMemory (app: FastifyInstance): ClientRequestArgs {
  return {
    createConnection: (): Duplex => {
      const { client, server } = memoryConnection()
      app.server.emit('connection', server)
      return client
    }
  }
}

export interface InMemoryApp {
  app: FastifyInstance
  /** the WebSocket URL (its host is only the Host header: nothing listens) */
  url: string
  /** TestClient.connect over an in-memory connection */
  connect (options?: WebSocket.ClientOptions): Promise<TestClient>
  /** TestClient.open over an in-memory connection */
  open (options?: WebSocket.ClientOptions): Promise<TestClient>
}

/** Like `startApp` (test/helpers/server.ts), without `listen`. The caller closes the app. */
export async function startInMemory (
  options: ChannelsOptions = {},
  setup?: (app: FastifyInstance) => void | Promise<void>,
  fastifyOptions: FastifyServerOptions = {}
): Promise<InMemoryApp> {
  const app = Fastify({ logger: false, ...fastifyOptions })
  await app.register(fastifyChannels, { client: false, ...options })
  await setup?.(app)
  await app.ready()
  const url = `ws://localhost${options.path ?? '/ws'}`
  // ws takes http.request options too (its types split them): createConnection is one of those.
  const over = (clientOptions: WebSocket.ClientOptions): WebSocket.ClientOptions =>
    ({ ...clientOptions, ...inMemory(app) }) as unknown as WebSocket.ClientOptions
  return {
    app,
    url,
    connect: async (clientOptions = {}) => await TestClient.connect(url, over(clientOptions)),
    open: async (clientOptions = {}) => await TestClient.open(url, over(clientOptions))
  }
}

/**
 * Like `startWithSocket` (test/helpers/server.ts), without `listen`: one client over an
 * in-memory connection, with its server-side socket; the app is closed at the end of the test.
 */
export async function startInMemoryWithSocket (
  t: { teardown (fn: () => unknown): void },
  options: ChannelsOptions = {},
  setup?: (app: FastifyInstance) => void | Promise<void>
): Promise<InMemoryApp & { client: TestClient, server: ChannelSocket }> {
  let sockets = new Map<string, ChannelSocket>()
  const started = await startInMemory(options, async (app) => {
    sockets = recordSockets(app)
    await setup?.(app)
  })
  t.teardown(() => started.app.close())
  const client = await started.connect()
  return { ...started, client, server: sockets.get(client.sessionId) as ChannelSocket }
}

/** A memory broker whose publications `failing()` tells to fail (a broker that went down). */
export function failingBroker (failing: () => boolean): Broker {
  const inner = memoryBroker()
  return {
    async connect (node) {
      const connection = await inner.connect(node)
      return {
        ...connection,
        publish: async (publication) => {
          if (failing()) throw new Error('broker down')
          await connection.publish(publication)
        }
      }
    }
  }
}
