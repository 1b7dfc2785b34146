/**
 * Server → client requests on the client's side: the handlers registered with
 * `client.handle(event, fn)` and the `reply` each `request` frame gets. A request with no
 * handler for its event is answered with the error `NO_HANDLER`; a handler that throws (or
 * rejects) answers with its error's `code` (`HANDLER_ERROR` when it has none) and message;
 * what it returns is the reply's `data`. A reply JSON cannot carry answers `UNSERIALIZABLE`.
 * Replies are written at once (never queued): a request from a connection that is gone has
 * been rejected on the server already.
 */
import type { ReplyFrame, RequestFrame } from '../schemas/protocol.js'
import { encodeFrame } from '../schemas/wire.js'

export type RequestHandler = (data: unknown) => unknown

/** What a reply error may carry: the protocol's bounds. */
const maxCodeLength = 200
const maxMessageLength = 10_000

function errorOf (err: unknown): { code: string, message: string } {
  const { code, message } = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown, message?: unknown }
  return {
    code: typeof code === 'string' && code.length > 0 && code.length <= maxCodeLength ? code : 'HANDLER_ERROR',
    message: (typeof message === 'string' ? message : String(err)).slice(0, maxMessageLength)
  }
}

export class RequestHandlers {
  private readonly handlers = new Map<string, RequestHandler>()

  /** `write` sends a frame's text now (false when offline: the reply is dropped). */
  constructor (private readonly write: (text: string) => boolean) {}

  /** Registers the handler of `event` (replacing one before it); returns the function that removes it. */
  handle (event: string, handler: RequestHandler): () => void {
    if (typeof event !== 'string' || event.length === 0) throw new TypeError('fastify-channels: handle() needs an event name')
    if (typeof handler !== 'function') throw new TypeError('fastify-channels: handle() needs a handler function')
    this.handlers.set(event, handler)
    return () => {
      if (this.handlers.get(event) === handler) this.handlers.delete(event)
    }
  }

  /** Answers a `request` frame. */
  async received ({ rid, event, data }: RequestFrame): Promise<void> {
    const handler = this.handlers.get(event)
    let reply: ReplyFrame
    if (handler === undefined) {
      reply = { type: 'reply', rid, error: { code: 'NO_HANDLER', message: `no handler for the request "${event}"` } }
    } else {
      try {
        reply = { type: 'reply', rid, data: await handler(data) }
      } catch (err) {
        reply = { type: 'reply', rid, error: errorOf(err) }
      }
    }
    let text: string
    try {
      text = encodeFrame(reply)
    } catch (err) {
      text = encodeFrame({ type: 'reply', rid, error: { code: 'UNSERIALIZABLE', message: `the reply JSON cannot carry: ${(err as Error).message}` } })
    }
    this.write(text)
  }
}
