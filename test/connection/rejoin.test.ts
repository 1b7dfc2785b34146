/**
 * Rejoin without throttling (the first `maxChannels` subscribe frames of a connection do not
 * count against the rate limit; message floods still do) and ping/pong liveness frames.
 */
import t from 'tap'
import { RejoinAllowance } from '../../plugin/connection/rate-limit.js'
import { startApp, TestClient } from '../helpers/server.js'

t.test('RejoinAllowance: frames mentioning "subscribe", up to the allowance, text only', async (t) => {
  const allowance = new RejoinAllowance(2)
  t.equal(allowance.take(Buffer.from('{"type":"message","data":1}'), false), false)
  t.equal(allowance.take(Buffer.from('{"type":"subscribe","channel":"a"}'), true), false, 'binary frames never')
  t.equal(allowance.take(Buffer.from('{"type":"subscribe","channel":"a"}'), false), true)
  t.equal(allowance.take([Buffer.from('{"type":"subscribe"}')], false), false, 'fragmented data never')
  t.equal(allowance.take(Buffer.from('{"type":"subscribe","channel":"b"}'), false), true)
  t.equal(allowance.take(Buffer.from('{"type":"subscribe","channel":"c"}'), false), false, 'used up')
})

t.test('a client rejoining 100 channels at once gets every one back; a message flood is still limited', async (t) => {
  const { app, url } = await startApp({ rateLimit: { max: 10, interval: 60_000 }, history: true }, (app) => {
    app.channels.on('message', () => 'ok')
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  for (let id = 1; id <= 100; id++) client.send({ type: 'subscribe', channel: `room-${id}`, id, since: { epoch: 'old', offset: 3 } })
  for (let id = 1; id <= 100; id++) {
    const answer = await client.next((frame) => frame.id === id)
    t.equal(answer.type, 'subscribed', `room-${id}`)
  }
  t.equal(client.frames.filter((frame) => frame.type === 'error').length, 0, 'no RATE_LIMITED')
  for (let id = 101; id <= 130; id++) client.send({ type: 'message', data: id, id })
  const limited = await client.next((frame) => frame.type === 'error')
  t.equal(limited.code, 'RATE_LIMITED', 'the flood is limited after max frames')
  t.equal(client.frames.filter((frame) => frame.type === 'ack').length + (limited.id === undefined ? 0 : 1) <= 10, true)
  client.close()
})

t.test('past maxChannels, subscribe frames count against the rate limit again', async (t) => {
  const { app, url } = await startApp({ rateLimit: { max: 2, interval: 60_000 }, maxChannels: 3 }, (app) => {
    app.channels.on('message', () => 'ok')
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  for (let id = 1; id <= 3; id++) t.equal((await client.subscribe(`room-${id}`, id)).type, 'subscribed')
  t.equal((await client.request({ type: 'unsubscribe', channel: 'room-1', id: 4 })).type, 'unsubscribed', 'counted: 1')
  t.equal((await client.request({ type: 'subscribe', channel: 'room-1', id: 5 })).type, 'subscribed', 'counted: 2')
  client.send({ type: 'subscribe', channel: 'room-9', id: 6 })
  t.match(await client.next(), { type: 'error', code: 'RATE_LIMITED' })
  client.close()
})

t.test('ping is answered by pong with the same id, without one when none was given', async (t) => {
  const { app, url } = await startApp()
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.same(await client.request({ type: 'ping', id: 7 }), { type: 'pong', id: 7 })
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' })
  t.match(await client.request({ type: 'ping', id: 8, extra: 1 }), { type: 'pong', id: 8 }, 'extra fields are ignored as in other frames')
  client.send({ type: 'ping', id: 'x' })
  t.match(await client.next(), { type: 'error', code: 'BAD_FRAME' })
  client.close()
})
