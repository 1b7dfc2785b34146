/**
 * Two connected in-memory streams, the ends of a loopback "TCP connection" without a port:
 * what one end writes, the other reads. They behave like `net.Socket`s where the HTTP server,
 * the HTTP client and ws look: an end that is ended by its peer ends its own side too (no half
 * open connection), and once both directions are done each end is destroyed and emits 'close'
 * (an in-memory stream would otherwise never close, and ws reports a connection closed only
 * on 'close'). Destroying one end is a dropped connection: the other reads what was already
 * written, then EOF.
 */
import { Duplex } from 'node:stream'

/** The loopback address the server end reports, as `request.ip` and `request.socket.remoteAddress`. */
export const injectedAddress = '127.0.0.1'

class MemoryEnd extends Duplex {
  peer: MemoryEnd | undefined
  remoteAddress: string | undefined
  remotePort: number | undefined

  constructor () {
    super({ allowHalfOpen: false, decodeStrings: true })
  }

  override _read (): void {
    // Data is pushed by the peer's writes; there is nothing to pull.
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // A peer that is gone drops what is written, as the kernel does for a reset connection.
    const peer = this.peer
    if (peer !== undefined && !peer.destroyed && !peer.readableEnded) peer.push(chunk)
    callback()
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.peer?.push(null)
    callback()
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer
    // EOF for the peer after what it has not read yet; its own end follows (no half open).
    if (peer !== undefined && !peer.destroyed && !peer.readableEnded) peer.push(null)
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
