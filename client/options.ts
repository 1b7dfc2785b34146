/**
 * The client's options, with their defaults, and what `onSubscribed` listeners get.
 */
import type { WebSocketConstructor } from './socket.js'
import type { Backoff } from './timer.js'

export const defaultTimeout = 10_000
export const defaultMaxQueue = 100
export const defaultHeartbeat = 25_000
export const defaultReconnectJitter = 5000

export interface ClientOptions {
  /** the WebSocket class [globalThis.WebSocket]; in Node < 22 pass `ws`'s: `{ WebSocket }` */
  WebSocket?: WebSocketConstructor
  /** query parameters added to the URL on every (re)connect; a function is called each time */
  params?: Record<string, string> | (() => Record<string, string>)
  /** reconnect after a close the client did not ask for (except 1008) [true] */
  reconnect?: boolean
  /** ms to wait before reconnect try number n [exponentialBackoff(): 125–250 ms, doubling, up to 5–10 s] */
  backoff?: Backoff
  /**
   * After a close that says the server is going away or busy (1001 shutting down, 1012
   * restarting, 1013 try again later), the first reconnect waits a random time between 0 and
   * this many ms (full jitter) [5000], so that the clients of a node that shuts down do not all
   * come back at the same moment. Tries that fail after it follow `backoff`.
   */
  reconnectJitter?: number
  /** ms a request or subscription waits for its answer [10000] */
  timeout?: number
  /** sends and requests held while offline [100]; past it `send` returns false and `request` rejects QUEUE_FULL */
  maxQueue?: number
  /**
   * ms without any frame before the client pings, and ms it then waits for any frame before it
   * drops the connection as dead and reconnects [25000]; `false` turns pings off
   */
  heartbeat?: number | false
}

/** What `onSubscribed` listeners get (history fields only on history channels). */
export interface SubscribedInfo {
  /** on a resubscription with `since`: whether every missed publication follows */
  recovered?: boolean
  /** the channel stream's epoch */
  epoch?: string
  /** the top offset when the socket joined */
  offset?: number
}
