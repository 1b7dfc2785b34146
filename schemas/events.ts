/**
 * Event maps: one description of an app's events, shared by the server (whose message
 * handlers validate with the schemas) and the client (whose `send`, `request` and `on` are
 * typed by them). Types only: nothing here exists at run time.
 *
 * ```ts
 * export const chatEvents = {
 *   chat: { send: ChatMessage, receive: ChatLine, reply: Ok },   // one schema per direction
 *   typing: { receive: Typing },                                // server → client only
 *   ping: Ping,                                                 // one schema, both ways
 *   confirm: { ask: Question, answer: Confirmed }               // server → client request (client.handle)
 * }
 * export type ChatEvents = EventMap<typeof chatEvents>
 *
 * app.channels.on('message', { event: 'chat', schema: chatEvents.chat.send }, handler)   // server
 * const client = connect<ChatEvents>('/ws')                                             // client
 * ```
 */
import type { Static, TSchema } from '@sinclair/typebox'

/**
 * The types of one event as the client sees them: what it may `send` (the payload a server
 * handler's schema accepts), what it may `receive` (what `on` listeners get) and what the ack
 * of a `request` carries (`reply`). A missing key means "not in that direction".
 */
export interface EventTypes {
  send?: unknown
  receive?: unknown
  reply?: unknown
  /** server → client requests (`socket.ask`): the data the server asks with */
  ask?: unknown
  /** server → client requests: what the client's `handle()` handler answers */
  answer?: unknown
}

/**
 * What `connect<Events>()` takes: event name → its types. Written as a bound on `E` itself
 * (`E extends EventTypeMap<E>`), so a map declared as an interface qualifies too.
 */
export type EventTypeMap<E = Record<string, EventTypes>> = { [K in keyof E]: EventTypes }

/** Any event, any payload: the map of a client that was given none. */
export type AnyEvents = Record<string, { send: unknown, receive: unknown, reply: unknown, ask: unknown, answer: unknown }>

/** The schemas of one event: one schema for both directions, or one per direction. */
export type EventSchemas = TSchema | { send?: TSchema, receive?: TSchema, reply?: TSchema, ask?: TSchema, answer?: TSchema }

type Directions = 'send' | 'receive' | 'reply' | 'ask' | 'answer'

type FromSchemas<S> = S extends TSchema
  ? { send: Static<S>, receive: Static<S>, reply: unknown }
  : { [D in keyof S & Directions]: S[D] extends TSchema ? Static<S[D]> : never } &
    ('reply' extends keyof S ? unknown : { reply: unknown }) &
    ('ask' extends keyof S ? ('answer' extends keyof S ? unknown : { answer: unknown }) : unknown)

/**
 * Derives an event map from TypeBox schemas, so the client's types follow the very schemas
 * the server validates with. A request to an event with no `reply` schema resolves `unknown`.
 */
export type EventMap<T extends Record<string, EventSchemas>> = {
  [K in keyof T & string]: FromSchemas<T[K]>
}

/** The events a client may send (and request): those with a `send` type. */
export type SendEvent<E> = {
  [K in keyof E & string]: E[K] extends { send: unknown } ? K : never
}[keyof E & string]

/** The events a client may listen to: those with a `receive` type. */
export type ReceiveEvent<E> = {
  [K in keyof E & string]: E[K] extends { receive: unknown } ? K : never
}[keyof E & string]

export type SendData<E, K extends keyof E> = E[K] extends { send: infer D } ? D : never
export type ReceiveData<E, K extends keyof E> = E[K] extends { receive: infer D } ? D : never
export type ReplyData<E, K extends keyof E> = E[K] extends { reply: infer D } ? D : unknown

/** The events the server may ask the client (`client.handle`): those with an `ask` type. */
export type AskEvent<E> = {
  [K in keyof E & string]: E[K] extends { ask: unknown } ? K : never
}[keyof E & string]

export type AskData<E, K extends keyof E> = E[K] extends { ask: infer D } ? D : never
export type AnswerData<E, K extends keyof E> = E[K] extends { answer: infer D } ? D : unknown
