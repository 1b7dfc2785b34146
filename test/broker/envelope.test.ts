/**
 * The one envelope codec: every kind round-trips, frames travel verbatim, the bytes an engine
 * writes itself (a history position, a reaped node's refs) decode as their kind, and text of
 * another kind, version or shape is refused rather than half-delivered.
 */
import t from 'tap'
import {
  decodeEnvelope, decodeHistoryEntry, encodePresence, encodePublication, encodeSessionSend, envelopeVersion, historyAppend,
  positionedEnvelope, presenceLeavesHead, withOffset
} from '../../plugin/broker/envelope.js'
import { encodeMessage } from '../../schemas/codec.js'

const frame = encodeMessage('chat', 'room', { text: 'two\nlines "quoted" \u2028 ok' })

t.test('a broadcast round-trips, with and without except, its frame carried as it is', async (t) => {
  t.same(decodeEnvelope(encodePublication('node1', { kind: 'all', frame }, 1)),
    { kind: 'all', nodeId: 'node1', delivery: { kind: 'all', frame, except: undefined } })
  t.same(decodeEnvelope(encodePublication('node1', { kind: 'all', frame, except: 'sess' }, 2)),
    { kind: 'all', nodeId: 'node1', delivery: { kind: 'all', frame, except: 'sess' } })
  t.ok(encodePublication('n', { kind: 'all', frame }, 1).endsWith(frame), 'not re-encoded')
  t.ok(encodePublication('n', { kind: 'all', frame }, 1).startsWith(`a${envelopeVersion}\n`), 'the first line names the kind and the version')
})

t.test('a one-channel publication needs no dedupe key', async (t) => {
  const decoded = decodeEnvelope(encodePublication('n', { kind: 'channels', channels: ['room'], frames: [frame] }, 7))
  t.same(decoded, { kind: 'channels', nodeId: 'n', dedupeKey: undefined, delivery: { kind: 'channels', channels: ['room'], frames: [frame], except: undefined } })
})

t.test('a multi-channel publication carries every channel and frame, and a key shared by its copies', async (t) => {
  const frames = ['c1', 'c2', 'c:3'].map((channel) => encodeMessage('e', channel, [1, '\n']))
  const text = encodePublication('n', { kind: 'channels', channels: ['c1', 'c2', 'c:3'], frames, except: 's' }, 42)
  t.same(decodeEnvelope(text), {
    kind: 'channels',
    nodeId: 'n',
    dedupeKey: 'n:42',
    delivery: { kind: 'channels', channels: ['c1', 'c2', 'c:3'], frames, except: 's' }
  })
})

t.test('a direct send round-trips', async (t) => {
  t.same(decodeEnvelope(encodeSessionSend('abc', frame)), { kind: 'session', delivery: { kind: 'session', sessionId: 'abc', frame } })
})

t.test('a history publication: the store writes its position between the head and the entry', async (t) => {
  const append = historyAppend('h-room', frame, 'sender')
  const text = positionedEnvelope(append, { offset: 17, epoch: 'ep0ch' })
  t.equal(text, `${append.head}17\nep0ch\n${append.entry}`, 'what a script concatenates alike')
  t.same(decodeEnvelope(text), {
    kind: 'history',
    publication: { channel: 'h-room', offset: 17, epoch: 'ep0ch', frame: withOffset(frame, 17), except: 'sender' }
  })
  const plain = decodeEnvelope(positionedEnvelope(historyAppend('h-room', frame, undefined), { offset: 1, epoch: 'e' }))
  t.same(plain, { kind: 'history', publication: { channel: 'h-room', offset: 1, epoch: 'e', frame: withOffset(frame, 1) } }, 'no except')
  t.same(JSON.parse(withOffset(frame, 17)), { ...JSON.parse(frame) as object, offset: 17 }, 'the offset is the frame\'s last key')
})

t.test('a stored history entry decodes to its frame with its offset and the session it skipped', async (t) => {
  t.same(decodeHistoryEntry(3, historyAppend('c', frame, 'sender').entry), { offset: 3, frame: withOffset(frame, 3), except: 'sender' })
  t.same(decodeHistoryEntry(4, historyAppend('c', frame, undefined).entry), { offset: 4, frame: withOffset(frame, 4) })
  t.equal(decodeHistoryEntry(5, 'no line feed'), undefined, 'not an entry this version wrote')
})

t.test('a presence change round-trips; a reaped node\'s leaves are its head and the refs', async (t) => {
  const changes = {
    joins: [{ ref: 'r1', key: 'ann\nsmith "x"', meta: '{"a":"line\\nbreak"}' }, { ref: 'r2', key: 'bob', meta: '{}' }],
    leaves: ['r0', 'r9']
  }
  t.same(decodeEnvelope(encodePresence('node-1', 'room', changes)), { kind: 'presence', nodeId: 'node-1', channel: 'room', changes })
  t.same(decodeEnvelope(encodePresence('n', 'c', { joins: [], leaves: ['x'] })), { kind: 'presence', nodeId: 'n', channel: 'c', changes: { joins: [], leaves: ['x'] } })
  t.same(decodeEnvelope(encodePresence('n', 'c', { joins: [], leaves: [] })), { kind: 'presence', nodeId: 'n', channel: 'c', changes: { joins: [], leaves: [] } })
  t.same(decodeEnvelope(`${presenceLeavesHead('dead', 'room')}r1\nr2`),
    { kind: 'presence', nodeId: 'dead', channel: 'room', changes: { joins: [], leaves: ['r1', 'r2'] } })
})

t.test('text of another kind, version or shape is refused, not half-delivered', async (t) => {
  const refused = [
    '', 'x\n1', 'a1', 'a1\nnode', 'a2\nn\n\nf', 'a\nn\n\nf', '1a\nn\n\nf',
    'c1\nn\n\n\n2\nc1\nc2\nf1', 'c1\nn\n\n\nzero\n', 'c1\nn\n\n\n0\n', 's1\nonly',
    'h1\nc\n0\ne\n\n{}', 'h1\nc\nx\ne\n\n{}', 'h1\nc\n1\ne',
    'p1', 'p1\nn\nc', 'p1\nn\nc\nx', 'p1\nn\nc\n2\nr\n"k"\n{}', 'p1\nn\nc\n1\nr\n{bad\n{}', 'p1\nn\nc\n-1'
  ]
  for (const text of refused) t.equal(decodeEnvelope(text), undefined, JSON.stringify(text))
  t.equal(decodeEnvelope('a\nnode\n\n{"type":"message"}'), undefined, 'the unversioned envelope of an older release')
})

t.test('a volatile publication or session send carries its flag in a +v annotation; without it nothing changes', async (t) => {
  const all = encodePublication('n', { kind: 'all', frame, except: 's', volatile: true }, 1)
  t.ok(all.startsWith('+v\na1\n'))
  t.same(decodeEnvelope(all), { kind: 'all', nodeId: 'n', delivery: { kind: 'all', frame, except: 's', volatile: true } })
  const channels = encodePublication('n', { kind: 'channels', channels: ['a', 'b'], frames: [frame, frame], volatile: true }, 4)
  t.same(decodeEnvelope(channels), {
    kind: 'channels', nodeId: 'n', dedupeKey: 'n:4', delivery: { kind: 'channels', channels: ['a', 'b'], frames: [frame, frame], except: undefined, volatile: true }
  })
  t.same(decodeEnvelope(encodeSessionSend('abc', frame, true)), { kind: 'session', delivery: { kind: 'session', sessionId: 'abc', frame, volatile: true } })
  t.equal(encodePublication('n', { kind: 'all', frame, volatile: false }, 1), encodePublication('n', { kind: 'all', frame }, 1), 'not volatile: the plain envelope')
  t.equal(encodeSessionSend('abc', frame, false), encodeSessionSend('abc', frame))
  t.same(decodeEnvelope(encodeSessionSend('abc', frame)), { kind: 'session', delivery: { kind: 'session', sessionId: 'abc', frame } }, 'no volatile key')
})

t.test('a traced volatile publication: the trace annotation, then the volatile one; read in either order', async (t) => {
  const traceContext = '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01'
  const text = encodePublication('n', { kind: 'all', frame, volatile: true, traceContext }, 1)
  t.ok(text.startsWith(`+t ${traceContext}\n+v\na1\n`))
  const both = { kind: 'all', nodeId: 'n', delivery: { kind: 'all', frame, except: undefined, volatile: true, traceContext } }
  t.same(decodeEnvelope(text), both)
  t.same(decodeEnvelope(`+v\n+t ${traceContext}\n${encodePublication('n', { kind: 'all', frame }, 1)}`), both)
})

t.test('an annotation this version does not know is skipped: a later release\'s message is delivered, not dropped', async (t) => {
  const plain = encodePublication('n', { kind: 'all', frame, except: 's' }, 1)
  const expected = { kind: 'all', nodeId: 'n', delivery: { kind: 'all', frame, except: 's' } }
  t.same(decodeEnvelope(`+z\n${plain}`), expected, 'a bare one')
  t.same(decodeEnvelope(`+q some value, spaces and all\n${plain}`), expected, 'one with a value')
  t.same(decodeEnvelope(`+q one\n+v\n+r two\n${plain}`), { ...expected, delivery: { ...expected.delivery, volatile: true } }, 'among known ones')
  t.same(decodeEnvelope(`+q\n${encodeSessionSend('abc', frame)}`), { kind: 'session', delivery: { kind: 'session', sessionId: 'abc', frame } }, 'on a session send')
  const history = positionedEnvelope(historyAppend('room', frame, undefined), { offset: 3, epoch: 'e' })
  t.match(decodeEnvelope(`+q\n${history}`), { kind: 'history' }, 'on a history publication')
  t.match(decodeEnvelope(`+\n${plain}`), { kind: 'all' }, 'even without a letter')
  t.equal(decodeEnvelope('+q\n'), undefined, 'nothing after it')
  t.equal(decodeEnvelope('+q'), undefined, 'not even its line feed')
  t.same(decodeEnvelope(`${'+q\n'.repeat(16)}${plain}`), expected, '16 are read')
  t.equal(decodeEnvelope(`${'+q\n'.repeat(17)}${plain}`), undefined, 'past 16 annotations: not an envelope')
})

t.test('a known annotation malformed, repeated or on a kind that cannot carry it is refused', async (t) => {
  const history = positionedEnvelope(historyAppend('room', frame, undefined), { offset: 3, epoch: 'e' })
  t.equal(decodeEnvelope(`+v\n${history}`), undefined, 'a history publication cannot be volatile')
  t.equal(decodeEnvelope(`+v\n${encodePresence('n', 'c', { joins: [], leaves: ['x'] })}`), undefined)
  t.equal(decodeEnvelope(`+v\n+v\n${encodeSessionSend('abc', frame)}`), undefined, 'twice')
  t.equal(decodeEnvelope(`+v yes\n${encodeSessionSend('abc', frame)}`), undefined, '+v takes no value')
  t.equal(decodeEnvelope('+v\n'), undefined, 'nothing after it')
  t.equal(decodeEnvelope('+v\na1\nn'), undefined, 'a malformed envelope after it')
  t.equal(decodeEnvelope('v1\na1\nn\n\n{}'), undefined, 'the prefix line of an earlier build of this release is not an annotation')
})
