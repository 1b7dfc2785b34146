// @ts-check
// Load-client connection for variants (a) and (b): a raw `ws` client speaking wire protocol v1.
// It skips frames until {"type":"subscribed","id":1} (fastify-channels sends a welcome first;
// the hand-written server does not), then hands every frame to the sink undecoded, so that
// counting deliveries costs the client as little as possible.
import WebSocket from 'ws'

/**
 * @typedef {object} Conn
 * @property {number} n deliveries counted in the current round
 * @property {(buf: Buffer) => boolean} sendRaw writes pre-encoded frames to the TCP socket
 * @property {() => void} close
 */

/**
 * @param {{ url: string, channel: string, timeoutMs: number, localAddress?: string, headers?: Record<string, string>,
 *   onTick: (conn: Conn, msg: any) => void, onClose: (conn: Conn, code: number, reason: string) => void }} opts
 * @returns {Promise<Conn>}
 */
export function connectOne ({ url, channel, timeoutMs, localAddress, headers, onTick, onClose }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, localAddress, headers })
    let subscribed = false
    /** @type {Conn} */
    const conn = {
      n: 0,
      // Bypasses ws's per-frame masking and writes: the inbound case writes many frames at once
      // so that the load generator, not the server under test, is never the bottleneck.
      sendRaw: (buf) => /** @type {any} */ (ws)._socket.write(buf),
      close: () => ws.terminate()
    }
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`frames client: no 'subscribed' within ${timeoutMs} ms`))
    }, timeoutMs)

    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', channel, id: 1 })))
    ws.on('message', (raw) => {
      if (subscribed) return onTick(conn, raw)
      const frame = JSON.parse(raw.toString())
      if (frame.type === 'subscribed' && frame.id === 1) {
        subscribed = true
        clearTimeout(timer)
        resolve(conn)
      } else if (frame.type === 'error') {
        clearTimeout(timer)
        ws.terminate()
        reject(new Error(`frames client: subscribe refused: ${raw.toString()}`))
      }
    })
    ws.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`frames client: ${err.message}`))
    })
    ws.on('close', (code, reason) => {
      clearTimeout(timer)
      if (!subscribed) reject(new Error(`frames client: closed before subscribed (${code} ${reason})`))
      else onClose(conn, code, reason.toString())
    })
  })
}

/**
 * Decodes a delivered frame to its payload, or undefined if it is not a 'tick' message.
 * @param {Buffer} raw
 */
export function decodeTick (raw) {
  const frame = JSON.parse(raw.toString())
  return frame.type === 'message' && frame.event === 'tick' ? frame.data : undefined
}

/**
 * `count` copies of one client frame, masked as RFC 6455 requires of clients (with an
 * all-zero key, which servers accept and which leaves the payload bytes as they are).
 * @param {string} text
 * @param {number} count
 */
export function encodeFrames (text, count) {
  const payload = Buffer.from(text)
  const len = payload.length
  const header = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff])
  if (len > 0xffff) throw new Error('frame too large for this encoder')
  const one = Buffer.concat([header, Buffer.alloc(4), payload])
  return Buffer.concat(Array.from({ length: count }, () => one))
}
