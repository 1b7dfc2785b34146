/**
 * The contract members of `fastify.channels`: `emits` (declarations), `asyncapi` (the
 * document) and `inject` (a test client), plus the route that serves the document when the
 * `asyncapi` option names one.
 */
import type { FastifyInstance } from 'fastify'
import { asyncapiDocument } from './asyncapi.js'
import { EmitRegistry } from './emits.js'
import type { HandlerRegistry } from '../handlers/registry.js'
import { InjectedClients } from './inject.js'
import type { ResolvedOptions } from '../options.js'
import type { ChannelsRegistry } from '../types.js'

export type ContractMembers = Pick<ChannelsRegistry, 'emits' | 'asyncapi' | 'inject'>

export function contractMembers (
  fastify: FastifyInstance, handlers: HandlerRegistry, options: ResolvedOptions, registry: () => ChannelsRegistry
): ContractMembers {
  const emits = new EmitRegistry()
  // The WebSocket route's URL, under the prefix of the context the plugin was registered in.
  const path = fastify.prefix + options.path
  const injected = new InjectedClients(fastify, path)

  const members: ContractMembers = {
    emits (event, declaration) {
      emits.declare(event, declaration)
      return registry()
    },
    asyncapi: (documentOptions) => asyncapiDocument({ path, handlers: handlers.list('message'), emits: emits.list() }, documentOptions),
    inject: (injectOptions) => injected.inject(injectOptions)
  }

  if (options.asyncapi !== false) {
    // Built per request: handlers registered after the plugin are in it, and the server entry
    // names the host the reader reached.
    fastify.get(options.asyncapi, async (request) =>
      members.asyncapi({ host: request.host, protocol: request.protocol === 'https' ? 'wss' : 'ws' }))
  }
  return members
}
