/**
 * The Redis envelope: frames travel verbatim, header fields round-trip, unreadable text is
 * refused, and the multi-channel dedupe memory is bounded.
 */
import t from 'tap'
import { RecentIds, decodeEnvelope, encodePublication, encodeSessionSend } from '../../../plugin/broker/redis/envelope.js'
import { encodeMessage } from '../../../schemas/codec.js'

const frame = encodeMessage('chat', 'room', { text: 'two\nlines "quoted" \u2028 ok' })

t.test('a broadcast round-trips, with and without except', async (t) => {
  t.same(decodeEnvelope(encodePublication('node1', { kind: 'all', frame }, 1)),
    { nodeId: 'node1', delivery: { kind: 'all', frame, except: undefined } })
  t.same(decodeEnvelope(encodePublication('node1', { kind: 'all', frame, except: 'sess' }, 2)),
    { nodeId: 'node1', delivery: { kind: 'all', frame, except: 'sess' } })
  t.ok(encodePublication('n', { kind: 'all', frame }, 1).endsWith(frame), 'the frame is carried as it is, not re-encoded')
})

t.test('a one-channel publication needs no dedupe key', async (t) => {
  const decoded = decodeEnvelope(encodePublication('n', { kind: 'channels', channels: ['room'], frames: [frame] }, 7))
  t.same(decoded, { nodeId: 'n', dedupeKey: undefined, delivery: { kind: 'channels', channels: ['room'], frames: [frame], except: undefined } })
})

t.test('a multi-channel publication carries every channel and frame, and a key shared by its copies', async (t) => {
  const frames = ['c1', 'c2', 'c:3'].map((channel) => encodeMessage('e', channel, [1, '\n']))
  const text = encodePublication('n', { kind: 'channels', channels: ['c1', 'c2', 'c:3'], frames, except: 's' }, 42)
  t.same(decodeEnvelope(text), {
    nodeId: 'n',
    dedupeKey: 'n:42',
    delivery: { kind: 'channels', channels: ['c1', 'c2', 'c:3'], frames, except: 's' }
  })
})

t.test('a direct send round-trips', async (t) => {
  t.same(decodeEnvelope(encodeSessionSend('abc', frame)), { delivery: { kind: 'session', sessionId: 'abc', frame } })
})

t.test('text this version cannot read is refused, not half-delivered', async (t) => {
  for (const text of ['', 'x\n1', 'a\nnode', 'c\nn\n\n\n2\nc1\nc2\nf1', 'c\nn\n\n\nzero\n', 'c\nn\n\n\n0\n', 's\nonly']) {
    t.equal(decodeEnvelope(text), undefined, JSON.stringify(text))
  }
})

t.test('RecentIds remembers a bounded number of keys', async (t) => {
  const recent = new RecentIds(2)
  t.equal(recent.firstTime('a'), true)
  t.equal(recent.firstTime('a'), false)
  t.equal(recent.firstTime('b'), true)
  t.equal(recent.firstTime('c'), true, 'evicts the oldest')
  t.equal(recent.firstTime('a'), true, 'a was forgotten')
  t.equal(recent.firstTime('c'), false)
})

t.test('RecentIds forgets a key after its window, however few keys came since', async (t) => {
  let now = 1000
  const recent = new RecentIds(100, 500, () => now)
  t.equal(recent.firstTime('a'), true)
  now += 499
  t.equal(recent.firstTime('a'), false, 'a repeat within the window: a late copy from another shard')
  t.equal(recent.firstTime('b'), true)
  now += 1
  t.equal(recent.firstTime('a'), true, 'a was forgotten after 500 ms')
  t.equal(recent.firstTime('b'), false, 'b is younger')
})
