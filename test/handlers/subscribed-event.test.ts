/**
 * The after-join event `subscribed` (plugin/connection/membership.ts): it runs once the socket
 * holds the channel, after its `subscribed` frame (and the presence state), for client frames
 * and `socket.subscribe()` alike, once per new subscription, with a channel filter; `track()`
 * works there; a failure is reported and the subscription stands.
 */
import t from 'tap'
import { startApp, TestClient, nextId, type Frame } from '../helpers/server.js'
import { InvalidHandlerError } from '../../plugin/errors.js'

t.test('runs after the subscribed frame, once per new subscription, with its channel filter', async (t) => {
  const seen: string[] = []
  const { app, url } = await startApp({ rateLimit: false }, (app) => {
    app.channels.on('subscribed', (socket, channel) => {
      seen.push(`any ${channel} held=${String(socket.channels.has(channel))}`)
      socket.send({ joined: channel }, { event: 'hello', channel })
    })
    app.channels.on('subscribed', { channel: /^room-/ }, (_socket, channel) => { seen.push(`room ${channel}`) })
    app.channels.on('message', { event: 'join' }, async (socket, data) => {
      await socket.subscribe(data as string)
      return 'ok'
    })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())

  const id = nextId()
  client.send({ type: 'subscribe', channel: 'room-1', id })
  const subscribed = await client.next((frame) => frame.type === 'subscribed')
  t.equal(subscribed.id, id)
  const hello = await client.next((frame) => frame.type === 'message')
  t.same(hello, { type: 'message', event: 'hello', channel: 'room-1', data: { joined: 'room-1' } }, 'the handler ran after subscribed')
  t.same(seen, ['any room-1 held=true', 'room room-1'])

  seen.length = 0
  await client.subscribe('room-1') // already held: no second run
  await client.expectNothing((frame: Frame) => frame.type === 'message')
  t.same(seen, [])

  await client.request({ type: 'message', event: 'join', data: 'lobby', id: nextId() })
  t.same(seen, ['any lobby held=true'], 'socket.subscribe() runs it too; the filter keeps the room handler out')
})

t.test('track() works in it; a failure is reported and the subscription stands', async (t) => {
  const errors: string[] = []
  const { app, url } = await startApp({ rateLimit: false, presence: true }, (app) => {
    app.channels.on('subscribed', async (socket, channel) => {
      await socket.track(channel, 'ann', { at: 'subscribed' })
    })
    app.channels.on('subscribed', { channel: 'broken' }, () => { throw new Error('boom') })
    app.channels.on('error', (_socket, error) => { errors.push(error.message) })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())

  await client.subscribe('room-1')
  const state = await client.next((frame) => frame.type === 'presence')
  t.same(state.state, {}, 'the presence state comes before the handler tracks')
  const diff = await client.next((frame) => frame.type === 'presence_diff')
  const joins = diff.joins as Record<string, Array<{ meta: unknown }>>
  t.same(joins.ann.map((entry) => entry.meta), [{ at: 'subscribed' }])
  t.same(Object.keys(await app.channels.presence('room-1')), ['ann'])

  const answer = await client.subscribe('broken')
  t.equal(answer.type, 'subscribed')
  t.same(errors, ['boom'])
  t.same(Object.keys(await app.channels.presence('broken')), ['ann'], 'the subscription stands')
})

t.test('a wrong registration fails with a coded error', async (t) => {
  const { app } = await startApp()
  t.teardown(() => app.close())
  t.throws(() => app.channels.on('subscribed', { event: 'x' } as never, () => {}), InvalidHandlerError)
})
