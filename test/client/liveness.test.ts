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
