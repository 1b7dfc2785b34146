import t from 'tap'
import { ChannelMirror } from '../../plugin/presence/mirror.js'

const track = (ref: string, key = ref, meta = '{}'): { ref: string, key: string, meta: string } => ({ ref, key, meta })
const refs = (map: Map<string, unknown>): string[] => [...map.keys()].sort()

t.test('the window keeps the net change against the last flush', async (t) => {
  const mirror = new ChannelMirror<string>()
  mirror.load([track('a'), track('b')])
  t.notOk(mirror.dirty, 'the first load is the state itself, not a change')
  t.same(refs(mirror.base()), ['a', 'b'], 'a first observer starts from all of it')
  mirror.apply({ joins: [track('c')], leaves: ['a'] })
  mirror.apply({ joins: [track('d')], leaves: ['c'] })
  t.same(refs(mirror.base()), ['a', 'b'], 'base: the state at the last flush')
  const diff = mirror.takeDiff()
  t.same(refs(diff.joins), ['d'], 'c came and went: in neither half')
  t.same(refs(diff.leaves), ['a'])
  t.notOk(mirror.dirty)
  t.same(refs(mirror.base()), ['b', 'd'])
})

t.test('a second load (after an outage) is a change against what observers have', async (t) => {
  const mirror = new ChannelMirror<string>()
  mirror.load([track('a')])
  mirror.observers.add('socket')
  mirror.load([track('b')])
  const diff = mirror.takeDiff()
  t.same(refs(diff.joins), ['b'])
  t.same(refs(diff.leaves), ['a'])
})

t.test('changes that waited for the first load are part of the first state', async (t) => {
  const mirror = new ChannelMirror<string>()
  mirror.apply({ joins: [track('own')], leaves: [] })
  mirror.load([track('a')])
  t.notOk(mirror.dirty)
  t.same(refs(mirror.base()), ['a', 'own'])
})

t.test('repeats, unknown leaves and a track back as it was change nothing', async (t) => {
  const mirror = new ChannelMirror<string>()
  mirror.load([track('a', 'ann', '{"x":1}')])
  mirror.takeDiff()
  mirror.apply({ joins: [track('a', 'ann', '{"x":1}')], leaves: ['nobody'] })
  t.notOk(mirror.dirty, 'a repeated join and a leave of an unknown ref')
  mirror.apply({ joins: [], leaves: ['a'] })
  mirror.apply({ joins: [track('a', 'ann', '{"x":1}')], leaves: [] })
  t.notOk(mirror.dirty, 'left and back as it was within one window (a stalled node re-asserting)')
  t.equal(mirror.size, 1)
})

t.test('changes that arrive while loading wait, in order; a reload becomes one diff', async (t) => {
  const mirror = new ChannelMirror<string>()
  mirror.apply({ joins: [track('late')], leaves: [] })
  mirror.apply({ joins: [], leaves: ['a'] })
  t.equal(mirror.state, 'loading')
  t.equal(mirror.size, 0)
  mirror.load([track('a'), track('b')])
  t.equal(mirror.state, 'ready')
  t.same(mirror.tracks().map((x) => x.ref).sort(), ['b', 'late'], 'the waiting changes apply on top of the loaded state')
  mirror.takeDiff()
  mirror.load([track('b'), track('c')]) // after an outage
  const diff = mirror.takeDiff()
  t.same(refs(diff.joins), ['c'])
  t.same(refs(diff.leaves), ['late'])
})

t.test('a track back within the window with another meta or key is a leave of the old and a join of the new', async (t) => {
  for (const back of [track('a', 'ann', '{"x":2}'), track('a', 'bob', '{"x":1}')]) {
    const mirror = new ChannelMirror<string>()
    mirror.load([track('a', 'ann', '{"x":1}')])
    mirror.takeDiff()
    mirror.apply({ joins: [], leaves: ['a'] })
    mirror.apply({ joins: [back], leaves: [] })
    t.ok(mirror.dirty, `${back.key} ${back.meta}: a change`)
    t.same(mirror.base(), new Map([['a', { key: 'ann', meta: '{"x":1}' }]]), 'base: as it was')
    t.same(mirror.tracks(), [back])
    const diff = mirror.takeDiff()
    t.same(diff.leaves, new Map([['a', { key: 'ann', meta: '{"x":1}' }]]))
    t.same(diff.joins, new Map([['a', { key: back.key, meta: back.meta }]]))
  }
})
