/**
 * A WebSocket client written against a bare TCP socket, for peers that `ws` will not play:
 * one that writes arbitrary (even invalid) frames, keeps talking after a close frame, or
 * stops reading altogether. Loopback only.
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'

export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const

export interface RawFrame {
  fin: boolean
  opcode: number
  payload: Buffer
}

/** Encodes one client frame (masked, as RFC 6455 requires of clients). */
export function encodeClientFrame (opcode: number, payload: Buffer | string, fin = true): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  const length = body.length
  const header = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10)
  header[0] = (fin ? 0x80 : 0) | opcode
  if (length < 126) {
    header[1] = 0x80 | length
  } else if (length < 65536) {
    header[1] = 0x80 | 126
    header.writeUInt16BE(length, 2)
  } else {
    header[1] = 0x80 | 127
    header.writeBigUInt64BE(BigInt(length), 2)
  }
  const mask = randomBytes(4)
  const masked = Buffer.alloc(length)
  for (let i = 0; i < length; i++) masked[i] = body[i] ^ mask[i & 3]
  return Buffer.concat([header, mask, masked])
}

export class RawClient {
  readonly frames: RawFrame[] = []
  /** resolves when the TCP connection is gone (the server destroyed it or ended it) */
  readonly ended: Promise<void>
  private buffer = Buffer.alloc(0)
  private waiters: Array<() => void> = []

  private constructor (readonly socket: net.Socket, rest: Buffer) {
    this.ended = new Promise((resolve) => socket.once('close', () => {
      resolve()
      this.wake()
    }))
    socket.on('error', () => {}) // a peer that gets cut off is what these tests are about
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    if (rest.length > 0) this.onData(rest)
  }

  /**
   * Opens a TCP connection to 127.0.0.1:port and completes the WebSocket handshake; rejects
   * when the server has not answered it within `timeoutMs`.
   */
  static connect (port: number, path = '/ws', headers: Record<string, string> = {}, timeoutMs = 5000): Promise<RawClient> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const opening = new Promise<RawClient>((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' })
      timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`the server answers the WebSocket handshake: not within ${timeoutMs} ms`))
      }, timeoutMs)
      const key = randomBytes(16).toString('base64')
      let head = Buffer.alloc(0)
      socket.once('error', reject)
      const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`)
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end === -1) return
        socket.removeListener('data', onData)
        socket.removeListener('error', reject)
        const status = head.subarray(0, head.indexOf('\r\n')).toString()
        if (!status.startsWith('HTTP/1.1 101')) {
          socket.destroy()
          reject(new Error(`handshake refused: ${status}`))
          return
        }
        resolve(new RawClient(socket, head.subarray(end + 4)))
      }
      socket.on('data', onData)
    })
    return opening.finally(() => clearTimeout(timer))
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  private onData (chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk])
    for (;;) {
      if (this.buffer.length < 2) break
      const fin = (this.buffer[0] & 0x80) !== 0
      const opcode = this.buffer[0] & 0x0f
      let length = this.buffer[1] & 0x7f
      let offset = 2
      if (length === 126) {
        if (this.buffer.length < 4) break
        length = this.buffer.readUInt16BE(2)
        offset = 4
      } else if (length === 127) {
        if (this.buffer.length < 10) break
        length = Number(this.buffer.readBigUInt64BE(2))
        offset = 10
      }
      if (this.buffer.length < offset + length) break
      this.frames.push({ fin, opcode, payload: this.buffer.subarray(offset, offset + length) })
      this.buffer = this.buffer.subarray(offset + length)
    }
    this.wake()
  }

  /** Writes raw bytes (a frame from `encodeClientFrame`, or garbage). */
  write (bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes)
  }

  sendText (text: string | Buffer): void {
    this.write(encodeClientFrame(Opcode.text, text))
  }

  sendJson (frame: object): void {
    this.sendText(JSON.stringify(frame))
  }

  /** The JSON text frames received so far. */
  json (): Array<Record<string, unknown>> {
    return this.frames.filter((frame) => frame.opcode === Opcode.text)
      .map((frame) => JSON.parse(frame.payload.toString()) as Record<string, unknown>)
  }

  /** The close frame's code, once one arrived. */
  closeCode (): number | undefined {
    const close = this.frames.find((frame) => frame.opcode === Opcode.close)
    return close === undefined || close.payload.length < 2 ? undefined : close.payload.readUInt16BE(0)
  }

  /**
   * Resolves when `predicate()` holds, checked on every frame; rejects after `timeoutMs` or on
   * disconnect, with `expectation` in the message.
   */
  async waitFor (predicate: () => boolean, timeoutMs = 3000, expectation = 'condition not met'): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${expectation}: not within ${timeoutMs} ms`)
      if (this.socket.destroyed) throw new Error(`${expectation}: the connection closed first`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  destroy (): void {
    this.socket.destroy()
  }
}
