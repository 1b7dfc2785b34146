/**
 * `writeDelayMs`: a socket's frames are gathered for up to that many ms, then handed to the
 * kernel at once. The first frame corks the TCP socket; every later frame, ws's own control
 * frames (ping, close) included, queues behind it in order; when the delay is over one uncork
 * writes them all in one writev.
 *
 * One timer per delay value for the whole process, not one per socket: the first socket
 * gathered arms it, every socket that starts gathering before it fires joins the same batch
 * (so a frame waits at most `writeDelayMs`, often less), and the batch is uncorked together.
 *
 * The slow-consumer check (slow-consumer.ts) counts gathered bytes: they are in ws's
 * `bufferedAmount`; past the limit it hands them to the kernel first and judges what the kernel
 * would not take, as it does for one turn's corked frames. A close (`ws.close`) queues its close
 * frame behind the gathered frames, which go first, within the delay; a terminate (slow consumer,
 * missed heartbeat, a peer that broke the protocol) destroys the socket and drops them.
 */
import type { Socket } from 'node:net'

interface Batch {
  sockets: Socket[]
  armed: boolean
}

const batches = new Map<number, Batch>()

function release (delay: number): void {
  const batch = batches.get(delay) as Batch
  const { sockets } = batch
  batch.sockets = []
  batch.armed = false
  for (let i = 0; i < sockets.length; i++) {
    const socket = sockets[i]
    // Uncorked early (flushNow) or destroyed meanwhile: nothing of ours to release.
    if (socket.writableCorked > 0 && !socket.destroyed) socket.uncork()
  }
}

/** Corks `socket` for `delay` ms unless it is corked already; call before writing a frame to it. */
export function gather (socket: Socket, delay: number): void {
  if (socket.writableCorked > 0) return
  socket.cork()
  let batch = batches.get(delay)
  if (batch === undefined) {
    batch = { sockets: [], armed: false }
    batches.set(delay, batch)
  }
  batch.sockets.push(socket)
  if (!batch.armed) {
    batch.armed = true
    setTimeout(release, delay, delay).unref()
  }
}
