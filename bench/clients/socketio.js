// @ts-check
// Load-client connection for variant (c): socket.io-client over the WebSocket transport only,
// one Manager per connection (forceNew), no reconnection. Joins with emit('subscribe', channel, ack).
import { io } from 'socket.io-client'

/** @typedef {import('./frames.js').Conn} Conn */

/**
 * @param {{ url: string, channel: string, timeoutMs: number, localAddress?: string, headers?: Record<string, string>,
 *   onTick: (conn: Conn, msg: any) => void, onClose: (conn: Conn, code: number, reason: string) => void }} opts
 * @returns {Promise<Conn>}
 */
export function connectOne ({ url, channel, timeoutMs, localAddress, headers, onTick, onClose }) {
  return new Promise((resolve, reject) => {
    // engine.io-client hands localAddress and extraHeaders to its Node `ws` transport.
    const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: timeoutMs, localAddress, extraHeaders: headers })
    let subscribed = false
    /** @type {Conn} */
    const conn = {
      n: 0,
      sendRaw: () => { throw new Error('sendRaw is not supported by the socket.io client') },
      close: () => { socket.disconnect() }
    }
    const timer = setTimeout(() => {
      socket.disconnect()
      reject(new Error(`socket.io client: no subscribe ack within ${timeoutMs} ms`))
    }, timeoutMs)

    socket.on('tick', (data) => onTick(conn, data))
    socket.on('connect', () => {
      socket.emit('subscribe', channel, () => {
        subscribed = true
        clearTimeout(timer)
        resolve(conn)
      })
    })
    socket.on('connect_error', (err) => {
      clearTimeout(timer)
      reject(new Error(`socket.io client: ${err.message}`))
    })
    socket.on('disconnect', (reason) => {
      if (subscribed) onClose(conn, 0, reason)
    })
  })
}

/** socket.io-client has already decoded the payload. @param {any} data */
export function decodeTick (data) {
  return data
}
