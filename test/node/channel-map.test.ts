import t from 'tap'
import { ChannelMap } from '../../plugin/node/channel-map.js'

t.test('a channel exists while it has members', async (t) => {
  const map = new ChannelMap<string>()
  t.equal(map.add('room', 'a'), true, 'first member')
  t.equal(map.add('room', 'b'), false)
  t.equal(map.add('room', 'a'), false, 'adding twice is harmless')
  t.same([...map.get('room') ?? []], ['a', 'b'])
  t.equal(map.size, 1)
  t.equal(map.remove('room', 'a'), false, 'b is still there')
  t.equal(map.remove('room', 'a'), false, 'removing twice is harmless')
  t.equal(map.remove('room', 'b'), true, 'last member')
  t.equal(map.get('room'), undefined, 'the entry is gone')
  t.equal(map.size, 0)
  t.equal(map.remove('never', 'a'), false)
})
