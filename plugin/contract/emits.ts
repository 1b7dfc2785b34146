/**
 * `fastify.channels.emits(event, { channel?, schema })`: the server → client events an app
 * declares for its contract document. A declaration changes nothing at run time (what the
 * server sends is not validated); it is checked once, like a handler registration, so the
 * document never holds a schema the server could not validate with, nor one it cannot write.
 */
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { InvalidHandlerError } from '../errors.js'
import { normaliseFilter } from '../handlers/registry.js'
import { unwritable } from './json-schema.js'
import type { EmitsOptions } from '../types.js'

export interface EmitDeclaration {
  readonly event: string
  readonly channel: string | RegExp | undefined
  readonly schema: TSchema
}

export class EmitRegistry {
  private readonly declared: EmitDeclaration[] = []

  /** Records a declaration; throws FST_CHANNELS_INVALID_HANDLER on a wrong one. */
  declare (event: unknown, options: unknown): void {
    if (typeof event !== 'string' || event.length === 0) throw new InvalidHandlerError('emits: the event must be a non-empty string')
    if (options === null || typeof options !== 'object') throw new InvalidHandlerError(`emits "${event}": expected { channel?, schema }`)
    const { channel, schema, ...rest } = options as Partial<EmitsOptions>
    const unknownKeys = Object.keys(rest)
    if (unknownKeys.length > 0) throw new InvalidHandlerError(`emits "${event}": unknown option ${unknownKeys.join(', ')}`)
    if (schema === null || typeof schema !== 'object') throw new InvalidHandlerError(`emits "${event}": the schema must be a TypeBox schema`)
    try {
      TypeCompiler.Compile(schema) // an unresolvable Type.Ref fails here, not in the document
    } catch (err) {
      throw new InvalidHandlerError(`emits "${event}": the schema does not compile: ${err instanceof Error ? err.message : String(err)}`)
    }
    const unwritableBecause = unwritable(schema) // a cycle in a `default`: no document could hold it
    if (unwritableBecause !== undefined) throw new InvalidHandlerError(`emits "${event}": the schema cannot be written as JSON: ${unwritableBecause}`)
    this.declared.push({ event, channel: normaliseFilter(channel), schema })
  }

  list (): readonly EmitDeclaration[] {
    return this.declared
  }
}
