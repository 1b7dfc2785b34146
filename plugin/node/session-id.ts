/**
 * Session ids: 18 random bytes (144 bits) from the CSPRNG, base64url (24 characters),
 * unguessable and unique per connection. The bytes are drawn 256 ids at a time: one
 * `randomFillSync` call costs about what drawing 18 bytes alone does, and a connection's setup
 * is measured in microseconds (bench/README.md, "Connect").
 */
import { randomFillSync } from 'node:crypto'

const idBytes = 18
const pool = Buffer.alloc(idBytes * 256)
let next = pool.length

/** A fresh session id. */
export function sessionId (): string {
  if (next === pool.length) {
    randomFillSync(pool)
    next = 0
  }
  const id = pool.toString('base64url', next, next + idBytes)
  next += idBytes
  return id
}
