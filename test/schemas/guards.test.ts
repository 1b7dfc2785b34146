/** schemas/guards.ts: each guard accepts what its TypeBox keyword accepts (server-frames.test.ts checks them together). */
import t from 'tap'
import { anything, arrayOf, boolean, exactly, fields, integer, isObject, optional, recordOf, text } from '../../schemas/guards.js'

t.test('scalars and their bounds', async (t) => {
  t.ok(anything(undefined) && anything(null) && anything({}))
  t.same(['', 'a', 'ab', 'abc', 1, null].map(text(1, 2)), [false, true, true, false, false, false])
  t.same([0, 1, 2, 3, 1.5, '1', Number.NaN, Infinity].map(integer(1, 2)), [false, true, true, false, false, false, false, false])
  t.same([true, false, 0, 'true'].map(boolean), [true, true, false, false])
  t.same(['ack', 'ackx', 1].map(exactly('ack')), [true, false, false])
  t.same([undefined, 1, 0, null].map(optional(integer(1))), [true, true, false, false])
})

t.test('objects, arrays and records', async (t) => {
  t.same([{}, [], null, 'x'].map(isObject), [true, false, false, false])
  t.same([[], [1, 2], [1, 'x'], {}].map(arrayOf(integer())), [true, true, false, false])
  t.same([{}, { a: 'x' }, { a: 1 }, ['x'], null].map(recordOf(text())), [true, true, false, false, false])
  const point = fields({ x: integer(), label: optional(text()) })
  t.ok(point({ x: 1 }))
  t.ok(point({ x: 1, label: 'a', extra: true }), 'extra keys are allowed, as in a TypeBox object')
  t.notOk(point({ label: 'a' }), 'a required key is missing')
  t.notOk(point({ x: 1, label: 2 }))
  t.notOk(point([1]))
  t.notOk(fields({ toString: anything, constructor: text() })({}), 'inherited keys do not count as present')
})
