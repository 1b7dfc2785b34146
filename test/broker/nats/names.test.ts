/**
 * Names of the NATS engine (no server needed): every channel name, prefix and id becomes one
 * token NATS accepts in a subject, a key and a stream name, two names never share a token, and
 * a token decodes back to its name.
 */
import t from 'tap'
import { decodeToken, encodeToken, NatsNames } from '../../../plugin/broker/nats/names.js'

const token = /^[A-Za-z0-9_-]+$/

t.test('names NATS gives a meaning are encoded, one-to-one and reversibly', async (t) => {
  const names = ['room', 'a.b', 'a_2Eb', 'a*', '>', 'x>y', 'a b', 'tab\there', 'ü', '日本', '😀', '{x}', '_', '__', '-', 'A-z_0', '$KV', 'a/b', '%2E', '~']
  const tokens = names.map(encodeToken)
  t.equal(new Set(tokens).size, names.length, 'no two names share a token')
  for (const [i, name] of names.entries()) {
    t.match(tokens[i], token, `${JSON.stringify(name)} is one plain token`)
    t.equal(decodeToken(tokens[i]), name, `${JSON.stringify(name)} decodes back`)
  }
  t.equal(encodeToken('a.b'), 'a_2Eb')
  t.equal(encodeToken('a_2Eb'), 'a_5F2Eb', 'the escape character is escaped itself')
  t.equal(encodeToken('plain-Name9'), 'plain-Name9', 'letters, digits and - stay')
})

t.test('what no encoding writes does not decode', async (t) => {
  t.equal(decodeToken('a.b'), undefined)
  t.equal(decodeToken('a_2'), undefined)
  t.equal(decodeToken('a_zz'), undefined)
  t.equal(decodeToken('_FF'), undefined, 'not UTF-8')
  t.equal(decodeToken('a b'), undefined, 'a character never left plain')
  t.equal(decodeToken('_2e'), undefined, 'lower-case hex is not written')
  t.equal(decodeToken(''), '', 'the empty token')
  t.equal(decodeToken('_'), undefined, 'the epoch base\'s token is no channel\'s')
  t.equal(encodeToken('_'), '_5F')
})

t.test('subjects, the stream and the buckets under a prefix', async (t) => {
  const names = new NatsNames('my app.v2')
  t.equal(names.all, 'my_20app_2Ev2.a')
  t.equal(names.channelMessages('a.b'), 'my_20app_2Ev2.c.a_2Eb.m')
  t.equal(names.channel('a.b'), 'my_20app_2Ev2.c.a_2Eb.>')
  t.equal(names.history('a.b'), 'my_20app_2Ev2.h.a_2Eb')
  t.equal(names.session('s.1'), 'my_20app_2Ev2.s.s_2E1')
  t.equal(names.historyStream, 'FC-my_20app_2Ev2-history')
  t.equal(names.presenceKey('a.b', 'n1'), 'c.a_2Eb.n1')
  t.not(new NatsNames('a.b').historyStream, new NatsNames('a_2Eb').historyStream, 'prefixes apart')
  t.equal(names.node('n-1'), 'my_20app_2Ev2.n.n-1')
  t.equal(names.historySubjects, 'my_20app_2Ev2.h.*')
  t.equal(names.historyBase, 'my_20app_2Ev2.h._', 'the epoch base: in the stream, no channel\'s subject')
  t.same(names.historyRepublish, { src: 'my_20app_2Ev2.h.*', dest: 'my_20app_2Ev2.c.{{wildcard(1)}}.h' })
  t.equal(names.channelHistory('a.b'), 'my_20app_2Ev2.c.a_2Eb.h', 'where the republish puts a channel\'s entries')
  t.equal(names.nodesBucket, 'FC-my_20app_2Ev2-nodes')
  t.equal(names.presenceBucket, 'FC-my_20app_2Ev2-presence')
  t.equal(names.aliveKey('n.1'), 'alive.n_2E1')
  t.equal(names.presenceNodeKey('n.1'), 'n.n_2E1')
  t.equal(names.kvSubject('B', 'k.x'), '$KV.B.k.x')
  t.same(names.presenceRepublish, { src: '$KV.FC-my_20app_2Ev2-presence.c.*.*', dest: 'my_20app_2Ev2.c.{{wildcard(1)}}.p.{{wildcard(2)}}' })
  t.equal(new NatsNames('x'.repeat(160)).historyStream, `FC-${'x'.repeat(160)}-history`, 'up to 160 characters: readable')
  t.match(new NatsNames('x'.repeat(100) + '.'.repeat(21)).historyStream, /^FCH-/, 'longer once encoded: hashed')
  const long = new NatsNames('ü'.repeat(100))
  t.match(long.historyStream, /^FCH-[0-9a-f]{64}-history$/, 'a prefix too long for a file name is hashed')
  t.ok(long.all.startsWith('_C3_BC'), 'subjects keep it readable')
})
