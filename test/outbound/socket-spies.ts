/**
 * Spies on a server-side TCP socket, shared by the outbound tests: what the plugin hands to
 * `write()`, and what reaches the kernel (one entry per `_write` or `_writev`: its chunk count).
 */
import type { Socket } from 'node:net'

/** Each Buffer written to a TCP socket. */
export function spyWrites (socket: Socket): Buffer[] {
  const writes: Buffer[] = []
  const { write } = socket
  socket.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (Buffer.isBuffer(chunk)) writes.push(chunk)
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
  } as Socket['write']
  return writes
}

/** Counts the syscall-level flushes of a TCP socket: the chunks of each write. */
export function spyFlushes (socket: Socket): number[] {
  const flushes: number[] = []
  const { _write: single, _writev: vector } = socket
  socket._write = function (this: Socket, ...args: Parameters<Socket['_write']>) {
    flushes.push(1)
    return single.apply(this, args)
  }
  socket._writev = function (this: Socket, chunks: Parameters<NonNullable<Socket['_writev']>>[0], cb) {
    flushes.push(chunks.length)
    return (vector as NonNullable<Socket['_writev']>).call(this, chunks, cb)
  }
  return flushes
}
