import t from 'tap'
import { deliverToAll, deliverToChannels, type Recipient } from '../../plugin/outbound/frame-writer.js'
import { OutboundFrame } from '../../plugin/outbound/frame-writer.js'

function recipient (id: string): Recipient & { got: string[], objects: OutboundFrame[] } {
  const got: string[] = []
  const objects: OutboundFrame[] = []
  return {
    id,
    deliveryStamp: 0,
    got,
    objects,
    sendFrame (frame: OutboundFrame) {
      got.push(frame.text)
      objects.push(frame)
    }
  }
}

t.test('deliverToAll skips the excepted recipient', async (t) => {
  const [a, b, c] = ['a', 'b', 'c'].map(recipient)
  t.equal(deliverToAll([a, b, c], 'f', 'b'), 2)
  t.same([a.got, b.got, c.got], [['f'], [], ['f']])
})

t.test('deliverToAll hands every recipient the same frame object (built once)', async (t) => {
  const recipients = ['a', 'b', 'c', 'd'].map(recipient)
  deliverToAll(recipients, '{"type":"message"}')
  const [first] = recipients[0].objects
  for (const r of recipients) t.equal(r.objects[0], first, `${r.id} got the shared frame`)
  const prepared = new OutboundFrame('x')
  deliverToAll(recipients, prepared)
  for (const r of recipients) t.equal(r.objects[1], prepared, 'a prepared frame is passed through as it is')
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
  t.equal(b.objects[0], d.objects[0], 'one frame object per channel, shared by its members')
  // a second delivery is a new one: everyone can get it again
  deliverToChannels((channel) => members.get(channel), ['x', 'y'], ['gx', 'gy'])
  t.same(b.got, ['fy', 'gx'])
})

t.test('deliverToChannels with one channel goes the deliverToAll way', async (t) => {
  const [a, b] = ['a', 'b'].map(recipient)
  t.equal(deliverToChannels((channel) => channel === 'x' ? [a, b] : undefined, ['x'], ['f'], 'a'), 1)
  t.same([a.got, b.got], [[], ['f']])
  t.equal(deliverToChannels(() => undefined, ['nobody'], ['f']), 0)
})

t.test('a frame given as text is not volatile unless asked, on every path', async (t) => {
  const [a, b] = ['a', 'b'].map(recipient)
  deliverToAll([a], 'plain')
  deliverToAll([a], 'volatile', undefined, true)
  deliverToChannels(() => [b], ['x'], ['one channel'])
  deliverToChannels(() => [b], ['x'], ['one channel, volatile'], undefined, true)
  deliverToChannels((channel) => channel === 'x' ? [b] : [], ['x', 'y'], ['two channels', 'unused'])
  deliverToChannels((channel) => channel === 'x' ? [b] : [], ['x', 'y'], ['two channels, volatile', 'unused'], undefined, true)
  t.same(a.objects.map((frame) => [frame.text, frame.volatile]), [['plain', false], ['volatile', true]])
  t.same(b.objects.map((frame) => [frame.text, frame.volatile]), [
    ['one channel', false], ['one channel, volatile', true], ['two channels', false], ['two channels, volatile', true]
  ])
})

t.test('deliverToChannels asks for the members of the given channels only, and a one-channel delivery stamps nobody', async (t) => {
  const [a, b] = ['a', 'b'].map(recipient)
  const asked: unknown[] = []
  const members = new Map([['x', [a]], ['y', [b]]])
  const membersOf = (channel: string): Recipient[] | undefined => {
    asked.push(channel)
    return members.get(channel)
  }
  t.equal(deliverToChannels(membersOf, ['x', 'y'], ['fx', 'fy']), 2)
  t.same(asked, ['x', 'y'], 'each channel once, nothing past the last')
  t.ok(a.deliveryStamp !== 0 && a.deliveryStamp === b.deliveryStamp, 'a multi-channel delivery stamps its recipients')
  const stamp = a.deliveryStamp
  asked.length = 0
  t.equal(deliverToChannels(membersOf, ['x'], ['gx']), 1)
  t.same(asked, ['x'])
  t.equal(a.deliveryStamp, stamp, 'a one-channel delivery leaves the stamp as it was')
  t.same(a.got, ['fx', 'gx'])
})
