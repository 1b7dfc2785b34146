/**
 * Session ids (plugin/node/session-id.ts): 18 CSPRNG bytes in base64url, drawn from a pool.
 */
import t from 'tap'
import { sessionId } from '../../plugin/node/session-id.js'

t.test('a session id is 24 base64url characters: 18 bytes', async (t) => {
  const id = sessionId()
  t.match(id, /^[A-Za-z0-9_-]{24}$/)
  t.equal(Buffer.from(id, 'base64url').length, 18)
})

t.test('ids never repeat, across many refills of the pool', async (t) => {
  const seen = new Set<string>()
  for (let i = 0; i < 100_000; i++) seen.add(sessionId())
  t.equal(seen.size, 100_000, '100,000 ids (390 pools), all distinct')
})

t.test('the bytes are random: every byte value shows up, none far more often than the others', async (t) => {
  const counts = new Array<number>(256).fill(0)
  for (let i = 0; i < 20_000; i++) for (const byte of Buffer.from(sessionId(), 'base64url')) counts[byte]++
  // 360,000 bytes: about 1,406 of each value (sd 37)
  t.ok(Math.min(...counts) > 1200 && Math.max(...counts) < 1600, `byte counts ${Math.min(...counts)}–${Math.max(...counts)}`)
})
