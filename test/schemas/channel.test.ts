import t from 'tap'
import { channelNameProblem, isValidChannelName, MAX_CHANNEL_LENGTH } from '../../schemas/channel.js'

t.test('valid names', async (t) => {
  for (const name of ['a', 'room-42', 'private-x', 'ünïcode✓', 'a/b:c.d', 'x'.repeat(MAX_CHANNEL_LENGTH)]) {
    t.equal(channelNameProblem(name), undefined, name)
    t.ok(isValidChannelName(name))
  }
})

t.test('invalid names', async (t) => {
  const bad: unknown[] = ['', 'x'.repeat(MAX_CHANNEL_LENGTH + 1), 'a b', 'tab\there', 'nl\n', 'nul\u0000', 'del\u007f',
    'c1\u0085', 'c1\u009f', 'nbsp\u00a0', 'em\u2003space', 'ls\u2028', 'bom\ufeff', 42, null, undefined, {}]
  for (const [index, name] of bad.entries()) {
    // labelled by index: some names (U+2028) would break the TAP stream if printed
    t.type(channelNameProblem(name), 'string', `bad name #${index}`)
    t.notOk(isValidChannelName(name))
  }
})

t.test('length counts UTF-16 code units', async (t) => {
  const astral = '😀'.repeat(100) // 200 code units
  t.equal(channelNameProblem(astral), undefined)
  t.type(channelNameProblem(astral + 'x'), 'string')
})

t.test('each problem says which rule the name broke', async (t) => {
  t.equal(channelNameProblem(42), 'channel must be a string')
  t.equal(channelNameProblem(''), 'channel must not be empty')
  t.equal(channelNameProblem('x'.repeat(MAX_CHANNEL_LENGTH + 1)), `channel must be at most ${MAX_CHANNEL_LENGTH} characters`)
  t.equal(channelNameProblem('a b'), 'channel must not contain control or white-space characters')
})
