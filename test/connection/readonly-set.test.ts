/** The read-only view behind `socket.channels` (plugin/connection/connection.ts). */
import t from 'tap'
import { ReadonlySetView } from '../../plugin/connection/connection.js'

t.test('reads through to the set, live, in insertion order; no way to change it', async (t) => {
  const set = new Set(['a', 'b'])
  const view = new ReadonlySetView(set)
  t.equal(view.size, 2)
  t.ok(view.has('a'))
  set.add('c')
  t.same([...view], ['a', 'b', 'c'], 'live')
  t.same([...view.keys()], [...view.values()])
  t.same([...view.entries()], [['a', 'a'], ['b', 'b'], ['c', 'c']])
  const seen: string[] = []
  view.forEach(function (this: unknown, value, key, owner) {
    t.equal(value, key)
    t.equal(owner, view, 'the view, not the set, is handed out')
    seen.push(value)
  })
  t.same(seen, ['a', 'b', 'c'])
  for (const method of ['add', 'delete', 'clear']) t.notOk(method in view, `no ${method}`)
})
