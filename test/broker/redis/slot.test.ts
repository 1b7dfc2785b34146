/**
 * The key slot the broker groups its calls by: the same as ioredis' (cluster-key-slot, the
 * library ioredis routes with) and Redis' own CLUSTER KEYSLOT, hash tags and multi-byte
 * characters included.
 */
import t from 'tap'
import { createRequire } from 'node:module'
import { keySlot } from '../../../plugin/broker/redis/slot.js'

// ioredis' own dependency (no type declarations of its own)
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number

const samples = [
  '', 'a', '123456789', 'fastify-channels:ch:{room-1}', '{fastify-channels}:all', '{}x', 'x{}y', '{a}{b}', 'a{b', 'a}b{c}',
  'élan', '房间', '🎉 party', '{房间}:x', 'x'.repeat(300)
]

t.test('keySlot agrees with cluster-key-slot', async (t) => {
  for (const key of samples) t.equal(keySlot(key), calculateSlot(key), JSON.stringify(key))
  t.equal(keySlot('123456789'), 0x31c3 % 16384, 'the XMODEM check value')
})
