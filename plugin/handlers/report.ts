/**
 * Handler failures nobody can be answered about: logged at error level and handed to the
 * `error` handlers whose channel filter matches.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { HandlerEntry, HandlerRegistry } from './registry.js'
import type { ChannelSocket } from '../types.js'

export function isThenable (value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function'
}

/** What reporting needs: the socket handed to `error` handlers, the registry, the request's logger. */
export interface ReportingSocket extends ChannelSocket {
  readonly handlers: HandlerRegistry
  readonly log: FastifyBaseLogger
  /** keeps the failure among the node's recent events (the admin page) */
  noteError? (error: Error, channel: string | undefined): void
}

/** Logs a handler error and hands it to the `error` handlers whose filter matches `channel`. */
export function reportError (socket: ReportingSocket, err: unknown, channel: string | undefined): void {
  const error = err instanceof Error ? err : new Error(String(err))
  socket.log.error({ err: error, sessionId: socket.id, channel }, 'channels: handler failed')
  socket.noteError?.(error, channel)
  for (const entry of socket.handlers.forChannel('error', channel)) {
    try {
      const result = entry.fn(socket, error)
      if (isThenable(result)) {
        Promise.resolve(result).catch((inner: unknown) =>
          socket.log.error({ err: inner, sessionId: socket.id }, 'channels: error handler failed'))
      }
    } catch (inner) {
      socket.log.error({ err: inner, sessionId: socket.id }, 'channels: error handler failed')
    }
  }
}

/** Runs a handler whose failure cannot be answered; a failure goes to `reportError`. */
export async function runReportingErrors (
  socket: ReportingSocket, entry: HandlerEntry, channel: string | undefined, ...args: unknown[]
): Promise<void> {
  try {
    await entry.fn(socket, ...args)
  } catch (err) {
    reportError(socket, err, channel)
  }
}
