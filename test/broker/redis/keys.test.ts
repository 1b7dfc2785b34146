/**
 * RedisKeys: every node-wide name in one slot (so one script may touch the session registry
 * and publish to a node), every name of one app channel in one slot of its own, different
 * channels in different slots, and the same for channel names with braces in them.
 */
import t from 'tap'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { keySlot } from '../../../plugin/broker/redis/slot.js'

const keys = new RedisKeys('app')

t.test('node-wide names share the {prefix} slot', async (t) => {
  const names = [keys.nodes, keys.alive('n1'), keys.sessions('n1'), keys.all, keys.direct('n1'), keys.direct('n2'), keys.presenceNodes, keys.presenceNode('n1')]
  t.same(new Set(names.map(keySlot)), new Set([keySlot('app')]))
  t.equal(keys.all, '{app}:all')
  const odd = new RedisKeys('}odd')
  t.equal(new Set([odd.nodes, odd.alive('n'), odd.direct('n'), odd.all].map(keySlot)).size, 1, 'a prefix that starts with }')
})

t.test('the names of one channel share its slot; channels spread', async (t) => {
  for (const channel of ['room-1', 'a}b', '{x}', 'weird{', '}', '}}a', '{}', '房间']) {
    const names = [keys.channel(channel), keys.historyMeta(channel), keys.historyLog(channel), keys.presence(channel)]
    t.equal(new Set(names.map(keySlot)).size, 1, JSON.stringify(channel))
  }
  const slots = new Set(Array.from({ length: 100 }, (_, i) => keySlot(keys.channel(`room-${i}`))))
  t.ok(slots.size > 90, `100 channels in ${slots.size} slots`)
  t.equal(keys.channel('room'), 'app:ch:{room}')
  t.equal(keys.channel('}x'), 'app:ch:{ }x}', 'a leading } would empty the tag: a space goes first')
})

t.test('two prefixes: two node-wide slots (usually), names never shared', async (t) => {
  const other = new RedisKeys('app2')
  t.not(other.all, keys.all)
  t.not(other.channel('room'), keys.channel('room'))
})
