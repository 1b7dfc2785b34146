/**
 * History entries back in offset order on NATS (history-order.ts): the rules on their own, and
 * the transport on a real connection, fed by a plain NATS client that publishes a channel's
 * republished entries out of order (as nats-server's republish did once under load: 53 before 52).
 */
import t from 'tap'
import { connect as natsConnect, headers } from '@nats-io/transport-node'
import { HistoryOrder, mostHeld } from '../../../plugin/broker/nats/history-order.js'
import { NatsClock } from '../../../plugin/broker/nats/clock.js'
import { NatsNames } from '../../../plugin/broker/nats/names.js'
import { NatsTransport, deadlineHeader, epochHeader, offsetHeader } from '../../../plugin/broker/nats/transport.js'
import { eventually, natsUrl, uniquePrefix, withNats } from './helpers.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function ordered (windowMs = 50): { order: HistoryOrder, got: string[] } {
  const got: string[] = []
  return { order: new HistoryOrder((envelope) => got.push(envelope), windowMs), got }
}

t.test('the rules', async (t) => {
  t.test('in order: each at once', async (t) => {
    const { order, got } = ordered()
    for (const offset of [1, 2, 3]) order.receive('s', 'e', offset, `m${offset}`)
    t.same(got, ['m1', 'm2', 'm3'])
    t.equal(order.holding, 0)
  })

  t.test('the first entry of a channel sets the position, wherever it is', async (t) => {
    const { order, got } = ordered()
    order.receive('s', 'e', 41, 'm41')
    order.receive('s', 'e', 42, 'm42')
    t.same(got, ['m41', 'm42'])
  })

  t.test('swapped: the later one waits for the earlier one, then both go on in order', async (t) => {
    const { order, got } = ordered(10_000)
    order.receive('s', 'e', 51, 'm51')
    order.receive('s', 'e', 53, 'm53')
    order.receive('s', 'e', 54, 'm54')
    t.same(got, ['m51'], 'held')
    t.equal(order.holding, 2)
    order.receive('s', 'e', 52, 'm52')
    t.same(got, ['m51', 'm52', 'm53', 'm54'], 'in offset order, at once')
    t.equal(order.holding, 0)
    order.receive('s', 'e', 55, 'm55')
    t.same(got.at(-1), 'm55', 'and the next one at once')
  })

  t.test('the missing one came, but another is still missing: only what follows without a gap goes on', async (t) => {
    const { order, got } = ordered(50)
    order.receive('s', 'e', 51, 'm51')
    order.receive('s', 'e', 56, 'm56')
    order.receive('s', 'e', 53, 'm53')
    order.receive('s', 'e', 52, 'm52')
    t.same(got, ['m51', 'm52', 'm53'])
    t.equal(order.holding, 1, '56 still waits for 54 and 55')
    await eventually(() => got.length === 4, 2000, 'its window ends')
    t.same(got.at(-1), 'm56')
  })

  t.test('a drained channel starts a new window for the next entry it holds', async (t) => {
    const { order, got } = ordered(1000)
    order.receive('s', 'e', 1, 'm1')
    order.receive('s', 'e', 3, 'm3')
    await sleep(500)
    order.receive('s', 'e', 2, 'm2')
    order.receive('s', 'e', 5, 'm5')
    await sleep(700)
    t.same(got, ['m1', 'm2', 'm3'], 'the first window was stopped: 5 waits its own full window')
    await eventually(() => got.length === 4, 3000, 'its own window ends')
  })

  t.test('held entries are sorted, whatever order they came in', async (t) => {
    const { order, got } = ordered(10_000)
    order.receive('s', 'e', 1, 'm1')
    for (const offset of [5, 3, 4, 2]) order.receive('s', 'e', offset, `m${offset}`)
    t.same(got, ['m1', 'm2', 'm3', 'm4', 'm5'])
  })

  t.test('a real gap: the held entries go on in order when the window ends', async (t) => {
    const { order, got } = ordered(50)
    order.receive('s', 'e', 1, 'm1')
    order.receive('s', 'e', 4, 'm4')
    order.receive('s', 'e', 3, 'm3')
    await sleep(20)
    t.same(got, ['m1'], 'still held within the window')
    await eventually(() => got.length === 3, 2000, 'the window ends')
    t.same(got, ['m1', 'm3', 'm4'])
    order.receive('s', 'e', 5, 'm5')
    t.same(got.at(-1), 'm5', 'the position moved past the gap')
    order.receive('s', 'e', 2, 'm2')
    t.same(got.at(-1), 'm2', 'the missing one, should it come after all, goes on: the receiver decides')
  })

  t.test('an entry dropped as late fills its place', async (t) => {
    const { order, got } = ordered(10_000)
    order.receive('s', 'e', 1, 'm1')
    order.receive('s', 'e', 3, 'm3')
    order.skip('s', 'e', 2)
    t.same(got, ['m1', 'm3'])
    order.receive('s', 'e', 5, 'm5')
    order.skip('s', 'e', 9)
    order.skip('s', 'other', 4)
    order.skip('unknown', 'e', 1)
    t.same(got, ['m1', 'm3'], 'a skip out of place (not the next offset, another epoch) changes nothing')
    order.receive('s', 'e', 4, 'm4')
    t.same(got, ['m1', 'm3', 'm4', 'm5'])
  })

  t.test('a new epoch goes on at once, after what the old one held', async (t) => {
    const { order, got } = ordered(10_000)
    order.receive('s', 'old', 7, 'o7')
    order.receive('s', 'old', 9, 'o9')
    order.receive('s', 'new', 1, 'n1')
    t.same(got, ['o7', 'o9', 'n1'])
    order.receive('s', 'new', 2, 'n2')
    t.same(got.at(-1), 'n2')
  })

  t.test('channels are apart', async (t) => {
    const { order, got } = ordered(10_000)
    order.receive('a', 'e', 1, 'a1')
    order.receive('b', 'e', 1, 'b1')
    order.receive('a', 'e', 3, 'a3')
    order.receive('b', 'e', 2, 'b2')
    t.same(got, ['a1', 'b1', 'b2'])
    order.receive('a', 'e', 2, 'a2')
    t.same(got, ['a1', 'b1', 'b2', 'a2', 'a3'])
  })

  t.test('an offset at or below the last goes on at once', async (t) => {
    const { order, got } = ordered(10_000)
    order.receive('s', 'e', 5, 'm5')
    order.receive('s', 'e', 5, 'again')
    order.receive('s', 'e', 2, 'older')
    t.same(got, ['m5', 'again', 'older'])
  })

  t.test('held entries are bounded: past the bound they go on at once', async (t) => {
    const { order, got } = ordered(10_000)
    order.receive('s', 'e', 1, 'm1')
    for (let offset = 3; offset < 3 + mostHeld; offset++) order.receive('s', 'e', offset, `m${offset}`)
    t.equal(order.holding, mostHeld)
    t.equal(got.length, 1)
    order.receive('s', 'e', 3 + mostHeld, 'past')
    t.equal(order.holding, 0)
    t.equal(got.length, 2 + mostHeld)
    t.equal(got.at(-1), 'past')
  })

  t.test('forget and clear hand on what is held, and forget the position', async (t) => {
    const { order, got } = ordered(10_000)
    order.receive('a', 'e', 1, 'a1')
    order.receive('a', 'e', 3, 'a3')
    order.receive('b', 'e', 1, 'b1')
    order.receive('b', 'e', 3, 'b3')
    order.forget('a')
    t.same(got, ['a1', 'b1', 'a3'])
    order.receive('a', 'e', 9, 'a9')
    t.equal(got.at(-1), 'a9', 'a new position')
    order.forget('nothing')
    order.clear()
    t.same(got.slice(-1), ['b3'])
    t.equal(order.holding, 0)
    await sleep(60)
    t.equal(got.length, 5, 'no window left running')
  })
})

await withNats(t, async () => {
  t.test('the transport on a real connection: swapped republished entries reach the node in offset order', async (t) => {
    const prefix = uniquePrefix()
    const names = new NatsNames(prefix)
    const nc = await natsConnect({ servers: natsUrl })
    const other = await natsConnect({ servers: natsUrl })
    t.teardown(async () => { await nc.close(); await other.close() })
    const received: string[] = []
    let late = 0
    const transport = new NatsTransport(nc, {
      names,
      clock: new NatsClock(),
      headers,
      timeoutMs: 2000,
      budgetMs: 1500,
      maxBytes: 1 << 20,
      connected: () => true,
      onDropped: () => {},
      onLate: () => { late++ },
      onFailed: () => {}
    }, (envelope) => received.push(envelope))
    t.teardown(() => transport.close())
    await transport.subscribe([{ kind: 'channel', channel: 'room' }])
    const entry = (offset: number, deadline?: number): void => {
      const h = headers()
      h.set(epochHeader, 'epoch-1')
      h.set(offsetHeader, String(offset))
      if (deadline !== undefined) h.set(deadlineHeader, String(deadline))
      other.publish(names.channelHistory('room'), `entry ${offset}`, { headers: h })
    }
    for (const offset of [51, 53, 52, 54]) entry(offset)
    // a plain publication of the channel is not held
    other.publish(names.channelMessages('room'), 'plain')
    await other.flush()
    await eventually(() => received.length === 5, 3000, 'everything arrives')
    t.same(received.filter((envelope) => envelope.startsWith('entry')), ['entry 51', 'entry 52', 'entry 53', 'entry 54'], 'in offset order')
    t.ok(received.indexOf('plain') > received.indexOf('entry 51'), 'the plain one came through')

    // 55 comes after its deadline (dropped as late): 56 does not wait for it
    entry(56)
    entry(55, 1)
    await other.flush()
    await eventually(() => received.length === 6, 3000, 'the next entry arrives')
    t.equal(received.at(-1), 'entry 56')
    t.equal(late, 1, 'the late one was dropped')

    // after the node left the channel and came back, a new position
    await transport.unsubscribe([{ kind: 'channel', channel: 'room' }])
    await transport.subscribe([{ kind: 'channel', channel: 'room' }])
    entry(80)
    await other.flush()
    await eventually(() => received.length === 7, 3000, 'the entry after the return arrives at once')
    t.equal(received.at(-1), 'entry 80')
  })
})
