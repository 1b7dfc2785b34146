/**
 * Liveness (client/liveness.ts) through a real client and a scripted server that decides
 * when to talk: pings only after silence, traffic that keeps them away, the dead path and
 * the missing welcome given up with close code 4000 and a reason the server can log, and
 * `heartbeat: false`.
 */
import t from 'tap'
import { within } from '../helpers/deadline.js'
import { clientFor, statusOf } from './helpers.js'
import { ScriptedServer, type ScriptedConnection } from './scripted-server.js'

/** The close code and reason the server saw on `ws`. */
function closeOf (ws: ScriptedConnection): Promise<{ code: number, reason: string }> {
  return new Promise((resolve) => ws.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })))
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a silent server is pinged after the interval, then dropped with 4000 when the ping goes unanswered', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { heartbeat: 150 })
  const ws = await server.welcomed()
  const closed = closeOf(ws)
  await statusOf(client, 'open')
  const started = Date.now()
  t.same(await ws.next('ping'), { type: 'ping' })
  t.ok(Date.now() - started >= 100, 'not before the interval')
  t.same(await within(closed, 3000, 'the client gives up on the dead path'), { code: 4000, reason: 'no frame within 150 ms after a ping' })
  await statusOf(client, 'reconnecting')
  await server.welcomed(1)
  await statusOf(client, 'open')
})

t.test('any frame answers a ping; steady traffic means no pings at all', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { heartbeat: 300 })
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  await ws.next('ping')
  ws.send({ type: 'message', event: 'news', data: 1 }) // not a pong: any frame proves the path
  await ws.next('ping') // silence again: the next ping, on the same connection
  ws.send({ type: 'pong' })
  // Now a frame every 40 ms: the silence never lasts 300 ms.
  const pingsBefore = ws.log.filter((frame) => frame.type === 'ping').length
  for (let n = 0; n < 10; n++) {
    ws.send({ type: 'message', event: 'news', data: n })
    await sleep(40)
  }
  t.equal(ws.log.filter((frame) => frame.type === 'ping').length, pingsBefore, 'no ping while frames keep coming')
  t.equal(ws.closed, false)
  t.equal(server.connections.length, 1, 'never reconnected')
  t.equal(client.status, 'open')
})

t.test('a welcome that does not come within the timeout: the try is given up with 4000', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { timeout: 100 })
  const ws = await server.connection()
  t.same(await within(closeOf(ws), 3000, 'the client gives up on the handshake'), { code: 4000, reason: 'no welcome within 100 ms' })
  await server.welcomed(1)
  await statusOf(client, 'open')
  await sleep(250)
  t.equal(client.status, 'open', 'the welcome stopped the handshake deadline')
  t.equal(server.connections.length, 2)
})

t.test('heartbeat: false: no pings, and the handshake deadline is stopped by the welcome', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { heartbeat: false, timeout: 100 })
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  await sleep(400)
  t.same(ws.log, [], 'nothing sent: no ping')
  t.equal(client.status, 'open')
  t.equal(server.connections.length, 1)
})

t.test('close() stops the watch: no ping and no drop afterwards', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { heartbeat: 100 })
  const ws = await server.welcomed()
  const closed = closeOf(ws)
  await statusOf(client, 'open')
  client.close()
  t.same(await within(closed, 3000, 'the client closes'), { code: 1000, reason: '' })
  await sleep(300)
  t.same(ws.log, [], 'no ping after close')
  t.equal(server.connections.length, 1)
})

t.test('frames before the welcome are not a welcome: the handshake deadline still applies', async (t) => {
  const server = await ScriptedServer.start(t)
  clientFor(t, server.url, { timeout: 150 })
  const ws = await server.connection()
  ws.send({ type: 'message', event: 'early', data: null })
  t.same(await within(closeOf(ws), 3000, 'the client gives up without a welcome'), { code: 4000, reason: 'no welcome within 150 ms' })
})

t.test('after a short silence the ping waits only for the rest of the interval', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { heartbeat: 500 })
  const ws = await server.welcomed()
  const welcomed = Date.now()
  await sleep(100)
  ws.send({ type: 'message', event: 'news', data: 1 }) // the silence restarts here
  await within(ws.next('ping'), 3000, 'a ping after the silence')
  const after = Date.now() - welcomed
  t.ok(after >= 550, `not before 500 ms of silence (${after} ms after the welcome)`)
  t.ok(after < 1100, `soon after (${after} ms after the welcome; 500 ms of silence from the frame at 100 ms)`)
  ws.send({ type: 'pong' })
  await within(ws.next('ping', 3000), 3000, 'pings go on after the answered one')
  t.equal(client.status, 'open')
})

t.test('the watch of a lost connection does not fire on the next one', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { heartbeat: 200, timeout: 5000 })
  const first = await server.welcomed()
  await statusOf(client, 'open')
  first.close(4000) // the silence timer of this connection was armed for 200 ms
  const second = await server.connection(1)
  await sleep(500) // no welcome yet, well within the 5 s handshake deadline
  t.equal(second.closed, false, 'not given up: the old timer was stopped with its connection')
  second.welcome()
  await statusOf(client, 'open')
})

t.test('the handshake deadline is stopped by the welcome, not left to fire during a ping', async (t) => {
  const server = await ScriptedServer.start(t)
  // The handshake deadline (800 ms) falls inside the first ping's wait (600 ms to 1000 ms).
  const client = clientFor(t, server.url, { heartbeat: 600, timeout: 800 })
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  await within(ws.next('ping'), 3000, 'the first ping')
  await sleep(350) // a slow but timely answer
  ws.send({ type: 'pong' })
  await sleep(200)
  t.equal(ws.closed, false, 'the connection stays')
  t.equal(server.connections.length, 1)
  t.equal(client.status, 'open')
})
