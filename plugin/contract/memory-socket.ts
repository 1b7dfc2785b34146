/**
 * Two connected in-memory streams, the ends of a loopback "TCP connection" without a port:
 * what one end writes, the other reads. They behave like `net.Socket`s where the HTTP server,
 * the HTTP client and ws look: an end that is ended by its peer ends its own side too (no half
 * open connection), and once both directions are done each end is destroyed and emits 'close'
 * (an in-memory stream would otherwise never close, and ws reports a connection closed only
 * on 'close'). Destroying one end is a dropped connection: the other reads what was already
 * written, then EOF. What is written arrives on a later tick, never inside the writer's call,
 * as from a network: ws, for one, is not written to be re-entered from its own `close()` by
 * the peer's answer.
 */
import { Duplex } from 'node:stream'

/** The loopback address the server end reports, as `request.ip` and `request.socket.remoteAddress`. */
export const injectedAddress = '127.0.0.1'

/** A peer that is gone drops what arrives, as the kernel does for a reset connection. */
function deliverTo (peer: MemoryEnd | undefined, chunk: Buffer | null): void {
  if (peer === undefined || peer.destroyed || peer.ended) return
  if (chunk === null) peer.ended = true
  peer.push(chunk)
}

class MemoryEnd extends Duplex {
  peer: MemoryEnd | undefined
  /** EOF was pushed: nothing more may be */
  ended = false
  remoteAddress: string | undefined
  remotePort: number | undefined

  constructor () {
    super({ allowHalfOpen: false, decodeStrings: true })
  }

  override _read (): void {
    // Data is pushed by the peer's writes; there is nothing to pull.
  }

  /** Hands `chunk` (null: EOF) to the peer on a later tick; ticks run in order, so bytes stay in order. */
  private deliver (chunk: Buffer | null): void {
    process.nextTick(deliverTo, this.peer, chunk)
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.deliver(chunk)
    callback()
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.deliver(null)
    callback()
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    // EOF for the peer after what it has not read yet; its own end follows (no half open).
    this.deliver(null)
    callback(error)
  }

  // net.Socket methods that the HTTP server, the HTTP client and ws call when present.
  setNoDelay (): this { return this }
  setKeepAlive (): this { return this }
  setTimeout (): this { return this }
  ref (): this { return this }
  unref (): this { return this }
}

export interface MemoryConnection {
  /** the end a client writes to (handed to the HTTP client) */
  client: Duplex
  /** the end a server reads from (handed to the HTTP server) */
  server: Duplex
}

export function memoryConnection (): MemoryConnection {
  const client = new MemoryEnd()
  const server = new MemoryEnd()
  client.peer = server
  server.peer = client
  server.remoteAddress = injectedAddress
  server.remotePort = 0
  return { client, server }
}
