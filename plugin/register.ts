/**
 * The plugin body: options, the node, the upgrade route, the decorators, the hooks that
 * shut everything down on `fastify.close()`.
 */
import fastifyWebsocket from '@fastify/websocket'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type WebSocket from 'ws'
import { CloseCodes, DEFAULT_EVENT } from '../schemas/protocol.js'
import { memoryBroker } from './broker/memory/broker.js'
import { capConnections } from './http/connection-cap.js'
import { Connection } from './connection/connection.js'
import { contractMembers } from './contract/contract.js'
import { InvalidArgumentError, InvalidOptionError, NoHistoryError } from './errors.js'
import { startHeartbeat } from './node/heartbeat.js'
import { resolveOptions, type ChannelsOptions } from './options.js'
import { checkOrigin } from './http/origins.js'
import { checkedChannel } from './node/server.js'
import { ChannelServer } from './node/server.js'
import { serveClient } from './http/static.js'
import { serveAdmin } from './admin/routes.js'
import { endRefusedUpgrades } from './http/upgrades.js'
import { releaseUpgradeLeftovers, rememberUpgradeResponse } from './http/upgrade-leftovers.js'
import { defaultWireSettings, perMessageDeflateOptions, prepareSocket } from './outbound/socket-settings.js'
import { observe, refusalEvents } from './observability/observe.js'
import type { AskOptions, BroadcastChannelFn, BroadcastFn, ChannelsRegistry, SendFn } from './types.js'

/**
 * ws reports a peer's protocol violation (invalid UTF-8, an oversize or malformed frame) as an
 * error once it has sent the close frame with the matching code (1007, 1009, 1002). That is the
 * peer's doing, not a server fault: it is logged at info, so a hostile peer cannot flood the
 * error log, and the socket is dropped, as @fastify/websocket's default handler does.
 */
function onSocketError (error: Error & { code?: unknown }, socket: WebSocket, request: FastifyRequest): void {
  if (typeof error.code === 'string' && error.code.startsWith('WS_ERR_')) {
    request.log.info({ err: error }, 'channels: peer broke the WebSocket protocol')
  } else {
    request.log.error({ err: error }, 'channels: socket error')
  }
  socket.terminate()
}

export async function channelsPlugin (fastify: FastifyInstance, opts: ChannelsOptions): Promise<void> {
  const options = resolveOptions(opts)
  const server = new ChannelServer(options, fastify.log)
  const broker = options.broker ?? memoryBroker()
  const connection = await broker.connect(server)
  if (options.history !== undefined && (connection.publishHistory === undefined || connection.readHistory === undefined)) {
    await connection.close()
    throw new InvalidOptionError('history: this broker keeps no history (its connection has no publishHistory/readHistory)')
  }
  server.useBroker(connection)
  if (server.history !== undefined) server.channelSteps.push(server.history)
  const stopObserving = await observe(fastify, options, {
    nodeId: server.nodeId,
    connections: () => server.sockets.size,
    subscriptions: () => {
      let held = 0
      for (const socket of server.sockets.values()) held += (socket as Connection).subscriptions.size
      return held
    },
    holds: (sessionId) => server.sockets.has(sessionId)
  }).catch(async (err: unknown) => {
    await connection.close()
    throw err
  })

  // Added before @fastify/websocket's own preClose, so our sockets close with 1001, not 1005.
  fastify.addHook('preClose', async () => {
    server.closing = true
    // Stop accepting first: Fastify closes the listener only after every preClose hook, so
    // during the drain the kernel would go on completing handshakes (and queueing them in the
    // listen backlog) for connections this node would only refuse. Closed now, a new
    // connection is refused by the kernel and a load balancer or client tries another node.
    // Fastify's own server.close() later finds it closed, which it expects.
    if (fastify.server.listening) fastify.server.close()
    await server.closeAll()
  })
  let stopHeartbeat = (): void => {}
  fastify.addHook('onClose', async () => {
    stopHeartbeat()
    stopObserving()
    await server.closeBroker()
  })

  // Reuse an app's own @fastify/websocket: then its options (maxPayload, preClose) apply.
  const ownWebsocket = !fastify.hasDecorator('websocketServer')
  if (ownWebsocket) {
    // compression: permessage-deflate without context takeover (outbound/socket-settings.ts)
    const perMessageDeflate = options.compression === false ? false : perMessageDeflateOptions(options.compression.threshold)
    await fastify.register(fastifyWebsocket, { options: { maxPayload: options.maxPayload, perMessageDeflate }, errorHandler: onSocketError })
  }
  const wire = options.compression === false && options.writeDelayMs === 0
    ? defaultWireSettings
    : Object.freeze({ threshold: options.compression === false ? undefined : options.compression.threshold, writeDelayMs: options.writeDelayMs })
  endRefusedUpgrades(fastify)

  const registry: ChannelsRegistry = {
    on (event: Parameters<ChannelsRegistry['on']>[0], optionsOrHandler: unknown, handler?: unknown) {
      server.handlers.on(event, optionsOrHandler, handler)
      return registry
    },
    stats: () => server.stats.snapshot(),
    nodes: async () => await server.stats.nodes(),
    async history (channel: string, historyOptions: { last?: number } = {}) {
      checkedChannel(channel)
      const { last } = historyOptions
      if (last !== undefined && (!Number.isSafeInteger(last) || last < 0)) {
        throw new InvalidArgumentError(`history: last must be a non-negative integer, got ${String(last)}`)
      }
      if (server.history?.covers(channel) !== true) throw new NoHistoryError(channel)
      return await server.history.view(channel, last)
    },
    presence: async (channel: string) => await server.presence.presence(checkedChannel(channel)),
    user: (userId: string) => server.users.handle(userId, (data, { event, channel }) =>
      server.encodeMessage(event ?? DEFAULT_EVENT, channel === undefined ? undefined : checkedChannel(channel), data)),
    ask: async (sessionId: string, event: string, data?: unknown, askOptions?: AskOptions) => await server.requests.ask(sessionId, event, data, askOptions),
    ...contractMembers(fastify, server.handlers, options, () => registry)
  } as ChannelsRegistry
  fastify.decorate('channels', registry)
  const broadcast: BroadcastFn = (data, sendOptions) => server.broadcast(data, sendOptions)
  const broadcastChannel: BroadcastChannelFn = async (channel, data, sendOptions) => {
    await server.broadcastToChannels([checkedChannel(channel)], data, sendOptions)
  }
  const send: SendFn = (sessionId, data, sendOptions) => server.sendTo(sessionId, data, sendOptions)
  fastify.decorate('broadcast', broadcast)
  fastify.decorate('broadcastChannel', broadcastChannel)
  fastify.decorate('send', send)

  // Refusals before any WebSocket exists; they run after the app's own onRequest hooks.
  const refusals = refusalEvents(server.nodeId, () => server.closing)
  const gates = [refusals.gate(checkOrigin(options.origins), 'origin'), refusals.gate(capConnections(options.maxConnections, () => server.closing).onRequest, 'cap')]
  gates.push(rememberUpgradeResponse)
  fastify.get(options.path, { websocket: true, onRequest: gates, onResponse: refusals.onResponse }, (socket, request) => {
    if (server.closing) {
      // Its upgrade passed the gates just before `fastify.close()` began.
      socket.close(CloseCodes.GOING_AWAY, 'server shutting down')
      return
    }
    releaseUpgradeLeftovers(socket, request, ownWebsocket ? onSocketError : undefined)
    prepareSocket(socket, wire)
    const connection = new Connection(server, socket, request)
    connection.start().catch((err: unknown) => connection.reportError(err, undefined))
  })

  if (options.heartbeat !== false) stopHeartbeat = startHeartbeat(server.sockets, options.heartbeat)
  if (options.client !== false) await serveClient(fastify, options.client)
  if (options.admin !== false) await serveAdmin(fastify, server, options.admin)
}
