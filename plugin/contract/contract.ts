/**
 * The contract members of `fastify.channels`: `emits` (declarations), `asyncapi` (the
 * document) and `inject` (a test client), plus the route that serves the document when the
 * `asyncapi` option names one.
 *
 * The document is built once per registration state: its body (channels, operations,
 * components) is kept, as JSON text too, until a `message` handler or an `emits` declaration is
 * added (both lists only grow, so their lengths name the state); a call or a GET only puts its
 * own head (info, the server's host and protocol) in front. A build that failed is kept as well,
 * so a broken schema costs one attempt per state, not one per request.
 */
import type { FastifyInstance } from 'fastify'
import { checkHandlerSchemas, contractBody, documentHead, type ContractBody } from './asyncapi.js'
import { EmitRegistry } from './emits.js'
import type { HandlerRegistry } from '../handlers/registry.js'
import { InjectedClients } from './inject.js'
import { InvalidHandlerError } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import type { AsyncApiDocument, AsyncApiOptions, ChannelsRegistry } from '../types.js'

export type ContractMembers = Pick<ChannelsRegistry, 'emits' | 'asyncapi' | 'inject'>

interface Built {
  /** `<message handlers>/<declarations>` when it was built */
  state: string
  /** the body's JSON text without its opening brace: `"channels":…}` */
  tail?: string
  /** why it could not be built */
  error?: Error
}

/** The document's body for the current registration state, built on first use after a change. */
class DocumentCache {
  private built: Built | undefined

  constructor (
    private readonly path: string,
    private readonly handlers: HandlerRegistry,
    private readonly emits: EmitRegistry
  ) {}

  /** The body's JSON text without its opening brace; throws the build's error. */
  tail (): string {
    const handlers = this.handlers.list('message')
    const emits = this.emits.list()
    const state = `${handlers.length}/${emits.length}`
    if (this.built?.state !== state) {
      this.built = { state }
      try {
        const body: ContractBody = contractBody({ handlers, emits })
        this.built.tail = JSON.stringify(body).slice(1)
      } catch (err) {
        this.built.error = err as Error
      }
    }
    if (this.built.error !== undefined) throw this.built.error
    return this.built.tail as string
  }

  /** The whole document as JSON text, with the head `options` name. */
  text (options?: AsyncApiOptions): string {
    const tail = this.tail()
    return `${JSON.stringify(documentHead(this.path, options)).slice(0, -1)},${tail}`
  }

  /** The whole document, a fresh copy each call (the caller may change it). */
  document (options?: AsyncApiOptions): AsyncApiDocument {
    return JSON.parse(this.text(options)) as AsyncApiDocument
  }
}

export function contractMembers (
  fastify: FastifyInstance, handlers: HandlerRegistry, options: ResolvedOptions, registry: () => ChannelsRegistry
): ContractMembers {
  const emits = new EmitRegistry()
  // The WebSocket route's URL, under the prefix of the context the plugin was registered in.
  const path = fastify.prefix + options.path
  const injected = new InjectedClients(fastify, path)
  const cache = new DocumentCache(path, handlers, emits)

  const members: ContractMembers = {
    emits (event, declaration) {
      emits.declare(event, declaration)
      return registry()
    },
    asyncapi: (documentOptions) => cache.document(documentOptions),
    inject: (injectOptions) => injected.inject(injectOptions)
  }

  // A handler schema no document could hold (a cycle in a `default`) fails `ready()`, named;
  // `emits` refuses its own at once. One registered after ready fails the document instead.
  fastify.addHook('onReady', async () => { checkHandlerSchemas(handlers.list('message')) })

  if (options.asyncapi !== false) {
    // Handlers registered after the plugin are in it, and the server entry names the host the
    // reader reached.
    fastify.get(options.asyncapi, async (request, reply) => {
      let text: string
      try {
        text = cache.text({ host: request.host, protocol: request.protocol === 'https' ? 'wss' : 'ws' })
      } catch (err) {
        // Only a registration can break the build (a schema no JSON can hold). Fastify logs the
        // error with its cause; the reader gets the code and a message that tells nothing more.
        throw new InvalidHandlerError('the AsyncAPI document could not be built (the cause is in the server log)', { cause: err })
      }
      return await reply.type('application/json; charset=utf-8').send(text)
    })
  }
  return members
}
