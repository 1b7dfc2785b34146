/**
 * The connection (client/socket.ts): URLs, a throwing WebSocket, and against a scripted
 * server the welcome, the backoff count, the status reports, the offline queue and close().
 */
import t from 'tap'
import { resolveUrl } from '../../client/socket.js'
import { connect, type Status } from '../../client/index.js'
import { within } from '../helpers/deadline.js'
import { clientFor, statusOf } from './helpers.js'
import { ScriptedServer } from './scripted-server.js'

t.test('absolute URLs: ws(s) kept, http(s) turned into ws(s), params added', async (t) => {
  t.equal(resolveUrl('ws://127.0.0.1:3000/ws'), 'ws://127.0.0.1:3000/ws')
  t.equal(resolveUrl('wss://example.com/ws'), 'wss://example.com/ws')
  t.equal(resolveUrl('http://example.com/ws'), 'ws://example.com/ws')
  t.equal(resolveUrl('https://example.com:8443/a/ws?x=1'), 'wss://example.com:8443/a/ws?x=1')
  t.equal(resolveUrl('ws://h/ws?x=1', { nick: 'ada lovelace', x: '2' }), 'ws://h/ws?x=2&nick=ada+lovelace')
  t.throws(() => resolveUrl('ftp://h/ws'), { name: 'TypeError', message: 'fastify-channels: expected a ws:, wss:, http: or https: URL, got "ftp://h/ws"' })
})

t.test('relative URLs resolve against the page: ws on http, wss on https', async (t) => {
  const global = globalThis as { location?: { href: string } }
  t.teardown(() => { delete global.location })
  global.location = { href: 'http://localhost:3000/chat/index.html' }
  t.equal(resolveUrl('/ws'), 'ws://localhost:3000/ws')
  t.equal(resolveUrl('ws'), 'ws://localhost:3000/chat/ws')
  global.location = { href: 'https://chat.example.com/' }
  t.equal(resolveUrl('/ws'), 'wss://chat.example.com/ws')
  t.throws(() => resolveUrl('http://['), { name: 'TypeError', message: /^fastify-channels: cannot resolve the URL "http:\/\/\["$/ }, 'in a browser, no hint about absolute URLs')
})

t.test('outside a browser a relative URL, or no WebSocket, is a clear TypeError', async (t) => {
  t.throws(() => resolveUrl('/ws'), { name: 'TypeError', code: 'INVALID_URL', message: /absolute ws:\/\/ or wss:\/\/ URL/ })
  t.throws(() => resolveUrl('ftp://h/ws'), { name: 'TypeError', code: 'INVALID_URL' })
  t.throws(() => connect('ws://127.0.0.1:1/ws', { WebSocket: 'not a class' as never }), { name: 'TypeError', code: 'NO_WEBSOCKET' })
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'undefined') {
    t.throws(() => connect('ws://127.0.0.1:1/ws'), { name: 'TypeError', code: 'NO_WEBSOCKET', message: /pass one: connect\(url, \{ WebSocket \}\)/ })
  }
})

t.test('a WebSocket constructor that throws: at connect() it throws; on a reconnect it is one more failed try', async (t) => {
  let calls = 0
  class Flaky {
    readyState = 0
    onopen = null
    onmessage = null
    onerror = null
    onclose: ((event: { code: number, reason: string }) => void) | null = null
    constructor () {
      calls++
      if (calls === 1 || calls === 3) throw new SyntaxError(`refused #${calls}`)
      // the second and later tries "connect" and drop at once
      queueMicrotask(() => this.onclose?.({ code: 1006, reason: '' }))
    }

    send (): void {}
    close (): void {}
  }
  t.throws(() => connect('ws://127.0.0.1:1/ws', { WebSocket: Flaky }), SyntaxError)

  calls = 1 // the next construction succeeds, the one after throws, then they succeed again
  const tries: number[] = []
  let done = (): void => {}
  const reached = new Promise<void>((resolve) => { done = resolve })
  const client = connect('ws://127.0.0.1:1/ws', {
    WebSocket: Flaky,
    backoff: (n) => { tries.push(n); if (n === 3) done(); return 1 }
  })
  await within(reached, 3000, 'the client keeps retrying past a constructor that throws')
  client.close()
  t.same(tries, [1, 2, 3], 'the throwing construction was a try like the others')
  t.equal(client.status, 'closed')
})

t.test('the welcome resets the backoff; a status is reported once however many tries fail', async (t) => {
  const server = await ScriptedServer.start(t)
  const tries: number[] = []
  const client = clientFor(t, server.url, { backoff: (n) => { tries.push(n); return 10 } })
  const statuses: Status[] = []
  client.onStatus((status) => statuses.push(status))
  ;(await server.connection(0)).close(4000) // refused before any welcome, twice
  ;(await server.connection(1)).close(4000)
  const third = await server.welcomed(2)
  await statusOf(client, 'open')
  t.same(tries, [1, 2])
  t.same(statuses, ['reconnecting', 'open'], 'one "reconnecting" for both failed tries')
  third.close(4000)
  await server.welcomed(3)
  await statusOf(client, 'open')
  t.same(tries, [1, 2, 1], 'counting starts again after a welcome')
})

t.test('a second welcome on one connection changes nothing', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed(0, 'first')
  const joined = client.subscribe('room')
  const join = await ws.next('subscribe')
  ws.send({ type: 'subscribed', channel: 'room', id: join.id })
  await within(joined, 3000, 'the join')
  const statuses: Status[] = []
  client.onStatus((status) => statuses.push(status))
  ws.welcome('second')
  t.equal(await client.request('x', null, { timeout: 50 }).catch((err: { code: string }) => err.code), 'TIMEOUT')
  t.equal(client.sessionId, 'first')
  t.same(statuses, [])
  t.same(ws.frames.map((frame) => frame.type), ['message'], 'no resubscribe: only the request went out')
})

t.test('a listener that closes the client on "open": nothing queued or rejoined is written', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.connection()
  client.send('queued', 1)
  client.subscribe('room').catch(() => {}) // rejected by the close: not the point here
  client.onStatus((status) => { if (status === 'open') client.close() })
  ws.welcome()
  await ws.ended()
  t.same(ws.log, [], 'closed before the resubscribe and the flush')
  t.equal(client.status, 'closed')
})

t.test('offline frames go out in order after the welcome, and close() sends 1000', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.connection()
  await new Promise((resolve) => setTimeout(resolve, 100)) // the WebSocket is open; the session is not
  client.send('a', 1)
  client.send('b', 2, { channel: 'room' })
  t.equal(client.queued, 2)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(ws.log, [], 'nothing before the welcome')
  ws.welcome()
  await ws.next('message')
  await ws.next('message')
  t.same(ws.log.map((frame) => frame.event), ['a', 'b'])
  t.equal(client.queued, 0)
  const closed = new Promise((resolve) => ws.ws.once('close', (code, reason) => resolve([code, String(reason)])))
  client.close()
  t.same(await within(closed, 3000, 'the close frame'), [1000, ''])
})

t.test('a connection the server is closing takes no more frames: they wait for the next one', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  ws.socket.pause() // the server stops reading: the client's close frame is not seen, the closing lasts
  ws.close(4000)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(client.status, 'open', 'no close event yet')
  t.equal(client.send('during', 1), true)
  t.equal(client.queued, 1, 'queued, not written to the closing WebSocket')
  ws.ws.terminate()
  const next = await server.welcomed(1)
  t.match(await next.next('message'), { event: 'during', data: 1 })
})

t.test('frames still arriving on a connection the client closed are ignored', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  const got: unknown[] = []
  client.on('late', (data) => got.push(data))
  ws.socket.pause() // the server does not see the client's close frame and goes on sending
  client.close()
  ws.send({ type: 'message', event: 'late', data: 1 })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(got, [])
})
