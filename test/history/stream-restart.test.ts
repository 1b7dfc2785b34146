/**
 * A history channel's stream is lost while sockets stay connected (the memory broker swept it
 * idle; on Redis its keys are gone): the server sends each holder `subscribed` without an id,
 * the new epoch and `recovered: false`, before the first publication of the new epoch, and the
 * bundled client then gets every publication of the new epoch, though their offsets are lower
 * than those it saw before. End to end: a real server, the real client, a raw socket that
 * checks the exact frames.
 */
import t from 'tap'
import { composeBroker } from '../../plugin/broker/compose.js'
import { clockedMemoryEngine } from '../../plugin/broker/memory/broker.js'
import type { Broker } from '../../plugin/index.js'
import { startApp, TestClient } from '../helpers/server.js'
import { afterLoss, day, holding, isMessage, sweeps } from './restart-helpers.js'

t.test('memory broker: a stream swept idle while a socket holds it', async (t) => {
  let skew = 0
  const broker = composeBroker(clockedMemoryEngine(() => Date.now() + skew))
  // a short ttl: the store sweeps every 100 ms
  const state = await holding(t, broker, { history: { size: 100, ttl: 100 } })
  skew = day + 60_000 // a day without use: the next sweep drops the stream (a read now would use it)
  await sweeps()
  t.not((await state.node.app.channels.history('h')).epoch, state.epoch, 'the stream was swept')
  await afterLoss(t, state)
})

t.test('memory broker: publications of one epoch never restart anything', async (t) => {
  const state = await holding(t, composeBroker(clockedMemoryEngine(Date.now)))
  await state.node.app.broadcastChannel('h', 51, { event: 'line' })
  t.match(await state.raw.next(), { type: 'message', offset: 51 })
  t.equal(state.seen.infos.length, 1)
})

t.test('a socket excluded from the first publication of the new epoch (its own broadcastChannel) is restarted too', async (t) => {
  let skew = 0
  const node = await startApp({
    broker: composeBroker(clockedMemoryEngine(() => Date.now() + skew)),
    heartbeat: false,
    rateLimit: false,
    history: { size: 100, ttl: 100 }
  }, (app) => {
    app.channels.on('message', { event: 'say' }, async (socket, data) => {
      await socket.broadcastChannel(data, { channel: 'h' })
      return 'ok'
    })
  })
  t.teardown(() => node.app.close())
  const speaker = await TestClient.connect(node.url)
  t.teardown(() => speaker.close())
  const { epoch } = await speaker.subscribe('h')
  await node.app.broadcastChannel('h', 'one')
  t.match(await speaker.next(isMessage), { offset: 1 })
  skew = day + 60_000
  await sweeps()
  await speaker.request({ type: 'message', event: 'say', data: 'mine', id: 7 })
  const restart = await speaker.next((frame) => frame.type === 'subscribed')
  t.match(restart, { channel: 'h', offset: 0, recovered: false })
  t.not(restart.epoch, epoch)
  await node.app.broadcastChannel('h', 'two')
  t.match(await speaker.next(isMessage), { offset: 2, data: 'two' }, 'then the next publication, no second restart')
})

t.test('a stream lost while a socket is joining: its held-back publications of the new epoch follow a restart frame', async (t) => {
  let skew = 0
  const inner = composeBroker(clockedMemoryEngine(() => Date.now() + skew))
  // the joiner's read takes the stream as it is, and answers once the test opens the gate
  let open = (): void => {}
  const gate = new Promise<void>((resolve) => { open = resolve })
  let gated = false
  const broker: Broker = {
    async connect (node) {
      const connection = await inner.connect(node)
      const read = connection.readHistory?.bind(connection)
      if (read === undefined) throw new Error('the memory broker keeps history')
      connection.readHistory = async (channel, query, limits) => {
        const result = await read(channel, query, limits)
        if (gated) await gate
        return result
      }
      return connection
    }
  }
  const node = await startApp({ broker, heartbeat: false, rateLimit: false, history: { size: 100, ttl: 100 } })
  t.teardown(() => node.app.close())
  const before = await TestClient.connect(node.url)
  t.teardown(() => before.close())
  const { epoch } = await before.subscribe('h')
  await node.app.broadcastChannel('h', 'one')
  t.match(await before.next(isMessage), { offset: 1 })
  const joiner = await TestClient.connect(node.url)
  t.teardown(() => joiner.close())
  gated = true
  joiner.send({ type: 'subscribe', channel: 'h', id: 1 })
  await sweeps() // the joiner's read saw the old stream (top 1); then the stream is swept
  skew = day + 60_000
  await sweeps()
  await node.app.broadcastChannel('h', 'two')
  open()
  t.same(await joiner.next(), { type: 'subscribed', channel: 'h', id: 1, epoch, offset: 1 }, 'the join answers what its read saw')
  const restart = await joiner.next()
  t.same(restart, { type: 'subscribed', channel: 'h', epoch: restart.epoch, offset: 0, recovered: false }, 'then the restart')
  t.not(restart.epoch, epoch)
  t.match(await joiner.next(), { type: 'message', data: 'two', offset: 1 }, 'and the held-back publication, though its offset is not above the read\'s top')
  t.match(await before.next(), { type: 'subscribed', epoch: restart.epoch, offset: 0, recovered: false }, 'the socket already there is restarted too')
  t.match(await before.next(), { type: 'message', data: 'two', offset: 1 })
  await node.app.broadcastChannel('h', 'three')
  t.match(await joiner.next(), { type: 'message', offset: 2 }, 'no second restart for the joiner')
  t.match(await before.next(), { type: 'message', offset: 2 })
})
