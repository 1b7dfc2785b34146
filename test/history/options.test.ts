/**
 * The `history` option (plugin/options.ts): off, on for every channel, or a filter
 * with a size and a ttl; each wrong value refused with the reason.
 */
import t from 'tap'
import { historyStateTtl } from '../../plugin/broker/types.js'
import { defaultHistorySize, defaultHistoryTtl, resolveHistory } from '../../plugin/options.js'

t.test('off when absent or false; true: every channel, with the default size and ttl', async (t) => {
  t.equal(resolveHistory(undefined), undefined)
  t.equal(resolveHistory(false), undefined)
  const all = resolveHistory(true)
  t.match(all, { size: defaultHistorySize, ttl: defaultHistoryTtl })
  t.same([defaultHistorySize, defaultHistoryTtl], [100, 300_000])
  t.equal(historyStateTtl, 24 * 60 * 60 * 1000, 'an epoch and a top offset outlive the entries by 24 hours')
  t.ok(all?.covers('anything'))
  t.ok(Object.isFrozen(all))
  t.match(resolveHistory({ size: 5, ttl: 1000 }), { size: 5, ttl: 1000 })
})

t.test('a name or a RegExp; a g or y RegExp matches the same every time, its other flags kept', async (t) => {
  const named = resolveHistory({ channel: 'news' })
  t.same([named?.covers('news'), named?.covers('news-2')], [true, false])
  for (const pattern of [/^H-/gi, /^H-/yi]) {
    const policy = resolveHistory({ channel: pattern })
    t.same([policy?.covers('h-1'), policy?.covers('h-1'), policy?.covers('h-2'), policy?.covers('x-h-')], [true, true, true, false], String(pattern))
  }
  t.equal(resolveHistory({ channel: /^h-/ })?.covers('h-1'), true)
})

t.test('delta: false unless true', async (t) => {
  t.equal(resolveHistory(true)?.delta, false)
  t.equal(resolveHistory({ delta: false })?.delta, false)
  t.equal(resolveHistory({ delta: true })?.delta, true)
})

t.test('each wrong value is refused with its reason', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [null, /history: expected true, false or \{ channel\?, size\?, ttl\?, delta\? \}/],
    ['yes', /history: expected true, false or/],
    [[], /history: expected true, false or/],
    [{ nope: 1 }, /history\.nope: unknown option/],
    [{ channel: 5 }, /history\.channel: expected a string or a RegExp/],
    [{ size: 0 }, /history\.size/],
    [{ ttl: 1.5 }, /history\.ttl/],
    [{ delta: 'yes' }, /history\.delta: expected a boolean/],
    [{ delta: 1 }, /history\.delta: expected a boolean/],
    [{ delta: null }, /history\.delta: expected a boolean/]
  ]
  for (const [value, message] of cases) t.throws(() => resolveHistory(value), { code: 'FST_CHANNELS_INVALID_OPTION', message }, JSON.stringify(value))
})
