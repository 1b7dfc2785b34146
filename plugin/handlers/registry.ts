/**
 * The handler registry behind `fastify.channels.on(...)`: it checks registrations once,
 * compiles schemas once, and answers "which handlers match" on the hot path.
 */
import type { TSchema } from '@sinclair/typebox'
import { InvalidHandlerError } from '../errors.js'
import { compileSchema, type CompiledSchema } from './validate.js'
import type { ChannelEvent, ChannelFilter } from '../types.js'

const events: ReadonlySet<ChannelEvent> = new Set<ChannelEvent>(
  ['connect', 'message', 'subscribe', 'subscribed', 'unsubscribe', 'error', 'disconnect', 'finish'])
const unfiltered: ReadonlySet<ChannelEvent> = new Set<ChannelEvent>(['connect', 'finish'])

type AnyHandler = (...args: any[]) => unknown

export interface HandlerEntry {
  readonly fn: AnyHandler
  /** exact name or pattern (copied without the stateful `g`/`y` flags) */
  readonly channel?: string | RegExp
  /** message handlers only: exact event name */
  readonly event?: string
  /** message handlers only */
  readonly schema?: CompiledSchema
}

export function channelMatches (filter: string | RegExp | undefined, channel: string | undefined): boolean {
  if (filter === undefined) return true
  if (channel === undefined) return false
  return typeof filter === 'string' ? filter === channel : filter.test(channel)
}

export function normaliseFilter (filter: ChannelFilter | undefined): string | RegExp | undefined {
  if (filter === undefined || typeof filter === 'string') return filter
  if (filter instanceof RegExp) {
    // A `g` or `y` RegExp remembers lastIndex between tests: matching would depend on history.
    return filter.global || filter.sticky ? new RegExp(filter.source, filter.flags.replace(/[gy]/g, '')) : filter
  }
  throw new InvalidHandlerError('the channel filter must be a string or a RegExp')
}

export class HandlerRegistry {
  private readonly byEvent = new Map<ChannelEvent, HandlerEntry[]>(
    [...events].map((event) => [event, []]))

  /** Registers a handler; throws FST_CHANNELS_INVALID_HANDLER on a wrong registration. */
  on (event: ChannelEvent, optionsOrHandler: unknown, maybeHandler?: unknown): void {
    if (!events.has(event)) throw new InvalidHandlerError(`unknown event "${String(event)}"`)
    const [options, fn] = typeof optionsOrHandler === 'function'
      ? [{}, optionsOrHandler]
      : [optionsOrHandler, maybeHandler]
    if (typeof fn !== 'function') throw new InvalidHandlerError(`the "${event}" handler must be a function`)
    if (options === null || typeof options !== 'object') throw new InvalidHandlerError(`the "${event}" options must be an object`)
    const { channel, event: eventName, schema, ...rest } = options as { channel?: ChannelFilter, event?: string, schema?: TSchema }
    const unknownKeys = Object.keys(rest)
    if (unknownKeys.length > 0) throw new InvalidHandlerError(`unknown "${event}" option ${unknownKeys.join(', ')}`)
    if (unfiltered.has(event) && channel !== undefined) throw new InvalidHandlerError(`"${event}" handlers take no channel filter`)
    if (event !== 'message' && (eventName !== undefined || schema !== undefined)) {
      throw new InvalidHandlerError('only "message" handlers take an event or a schema')
    }
    if (eventName !== undefined && (typeof eventName !== 'string' || eventName.length === 0)) {
      throw new InvalidHandlerError('the event filter must be a non-empty string')
    }
    if (schema !== undefined && (schema === null || typeof schema !== 'object')) {
      throw new InvalidHandlerError('the schema must be a TypeBox schema')
    }
    ;(this.byEvent.get(event) as HandlerEntry[]).push({
      fn: fn as AnyHandler,
      channel: normaliseFilter(channel),
      event: eventName,
      schema: schema === undefined ? undefined : compileSchema(schema)
    })
  }

  list (event: ChannelEvent): readonly HandlerEntry[] {
    return this.byEvent.get(event) as HandlerEntry[]
  }

  /** The message handlers for `event` on `channel`, in registration order. */
  forMessage (event: string, channel: string | undefined): HandlerEntry[] {
    const matched: HandlerEntry[] = []
    for (const entry of this.list('message')) {
      if ((entry.event === undefined || entry.event === event) && channelMatches(entry.channel, channel)) matched.push(entry)
    }
    return matched
  }

  /** The handlers of a channel-filtered event whose filter matches `channel`. */
  forChannel (event: ChannelEvent, channel: string | undefined): HandlerEntry[] {
    return this.list(event).filter((entry) => channelMatches(entry.channel, channel))
  }

  /** The handlers whose filter matches any of `channels` (each handler once). */
  forAnyChannel (event: ChannelEvent, channels: Iterable<string>): HandlerEntry[] {
    const held = [...channels]
    return this.list(event).filter((entry) =>
      entry.channel === undefined || held.some((channel) => channelMatches(entry.channel, channel)))
  }
}
