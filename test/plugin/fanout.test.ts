import t from 'tap'
import { deliverToAll, deliverToChannels, type Recipient } from '../../plugin/fanout.js'

function recipient (id: string): Recipient & { got: string[] } {
  const got: string[] = []
  return { id, deliveryStamp: 0, got, sendFrame (frame: string) { got.push(frame) } }
}

t.test('deliverToAll skips the excepted recipient', async (t) => {
  const [a, b, c] = ['a', 'b', 'c'].map(recipient)
  t.equal(deliverToAll([a, b, c], 'f', 'b'), 2)
  t.same([a.got, b.got, c.got], [['f'], [], ['f']])
})

t.test('deliverToChannels: each recipient once, with the frame of its first channel', async (t) => {
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(recipient)
  const members = new Map([['x', [a, b]], ['y', [b, c, d]], ['z', [d]]])
  const count = deliverToChannels((channel) => members.get(channel), ['y', 'x', 'z', 'missing'], ['fy', 'fx', 'fz', 'fm'], 'c')
  t.equal(count, 3)
  t.same(a.got, ['fx'])
  t.same(b.got, ['fy'], 'in y and x: gets the frame of y, first in the sender\'s order')
  t.same(c.got, [], 'excepted')
  t.same(d.got, ['fy'])
  // a second delivery is a new one: everyone can get it again
  deliverToChannels((channel) => members.get(channel), ['x', 'y'], ['gx', 'gy'])
  t.same(b.got, ['fy', 'gx'])
})
