/**
 * The client on history channels (real sockets, a TCP proxy standing in for the network):
 * `last` backlogs, `onSubscribed`, resubscription with `since` and the previous session after
 * every reconnect (a cut path, a path that went silent), `recovered: false`, and liveness:
 * pings on silence, a dead path detected, a welcome that never comes.
 */
import t from 'tap'
import { WebSocketServer } from 'ws'
import type { FastifyInstance } from 'fastify'
import type { ChannelsClient, SubscribedInfo } from '../../client/index.js'
import { within } from '../helpers/deadline.js'
import { startApp } from '../helpers/server.js'
import { TcpProxy } from '../history/helpers.js'
import { clientFor, statusOf } from './helpers.js'

interface Teardown { teardown (fn: () => unknown): void }

async function server (t: Teardown, options: { size?: number } = {}, setup?: (app: FastifyInstance) => void) {
  const started = await startApp({ history: { channel: /^h-/, size: options.size ?? 50 }, heartbeat: false }, (app) => {
    app.channels.on('message', { event: 'say' }, async (socket, data, meta) => {
      await socket.broadcastChannel(data, { channel: meta.channel, event: 'line' })
      return 'ok'
    })
    setup?.(app)
  })
  t.teardown(() => started.app.close())
  const proxy = await TcpProxy.start(t, started.port)
  return { ...started, proxy }
}

/** Collects the `line` events of a client, and every onSubscribed call. */
function recorder (client: ChannelsClient) {
  const lines: unknown[] = []
  const subscribed: Array<[string, SubscribedInfo]> = []
  const waiters: Array<() => void> = []
  const wake = (): void => { for (const waiter of waiters.splice(0)) waiter() }
  client.on('line', (data) => { lines.push(data); wake() })
  client.onSubscribed((channel, info) => { subscribed.push([channel, info]); wake() })
  const until = async (what: string, check: () => boolean, timeoutMs = 5000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms; lines ${JSON.stringify(lines)}, subscribed ${JSON.stringify(subscribed)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }
  return { lines, subscribed, until }
}

t.test('subscribe with last: the backlog, then live; onSubscribed with epoch and offset, off stops it', async (t) => {
  const { app, proxy } = await server(t)
  for (let n = 1; n <= 5; n++) await app.broadcastChannel('h-room', n, { event: 'line' })
  const client = clientFor(t, proxy.url())
  const seen = recorder(client)
  const calls: string[] = []
  const off = client.onSubscribed((channel) => calls.push(channel))
  await client.subscribe('h-room', { last: 3 })
  await seen.until('a backlog of 3', () => seen.lines.length === 3)
  t.same(seen.lines, [3, 4, 5])
  t.match(seen.subscribed, [['h-room', { epoch: String, offset: 5 }]])
  t.notOk('recovered' in seen.subscribed[0][1], 'no recovered on a first subscription')
  await client.subscribe('plain')
  t.same(seen.subscribed[1], ['plain', {}], 'a channel without history: no history fields')
  off()
  await client.subscribe('h-other')
  t.same(calls, ['h-room', 'plain'])
  await app.broadcastChannel('h-room', 6, { event: 'line' })
  await seen.until('live 6', () => seen.lines.length === 4)
  t.same(seen.lines, [3, 4, 5, 6])
})

t.test('a cut path: the client resubscribes with since and its previous session, gets what it missed once, not its own', async (t) => {
  const { app, proxy, url } = await server(t)
  const client = clientFor(t, proxy.url())
  const other = clientFor(t, url)
  const seen = recorder(client)
  await client.subscribe('h-room')
  await other.subscribe('h-room')
  await app.broadcastChannel('h-room', 'a', { event: 'line' })
  await seen.until('a', () => seen.lines.length === 1)
  const before = client.sessionId
  proxy.cut()
  await statusOf(client, 'reconnecting')
  // While it is away: one line from the other client, one from the server.
  await other.request('say', 'while-away', { channel: 'h-room' })
  await app.broadcastChannel('h-room', 'b', { event: 'line' })
  await statusOf(client, 'open')
  t.not(client.sessionId, before)
  await seen.until('recovered', () => seen.subscribed.length === 2 && seen.lines.length === 3)
  t.match(seen.subscribed[1], ['h-room', { recovered: true, offset: 3 }])
  t.same(seen.lines, ['a', 'while-away', 'b'])
  // Its own broadcastChannel line, sent just before a cut, is not replayed to it.
  await client.request('say', 'mine', { channel: 'h-room' })
  proxy.cut()
  await statusOf(client, 'reconnecting')
  await statusOf(client, 'open')
  await seen.until('second recovery', () => seen.subscribed.length === 3)
  t.match(seen.subscribed[2], ['h-room', { recovered: true, offset: 4 }])
  await app.broadcastChannel('h-room', 'c', { event: 'line' })
  await seen.until('c', () => seen.lines.includes('c'))
  t.same(seen.lines, ['a', 'while-away', 'b', 'c'], 'no duplicate, not its own line')
})

t.test('missed more than the history keeps: recovered false, nothing replayed, then live', async (t) => {
  const { app, proxy } = await server(t, { size: 3 })
  const client = clientFor(t, proxy.url())
  const seen = recorder(client)
  await client.subscribe('h-room')
  proxy.cut()
  await statusOf(client, 'reconnecting')
  for (let n = 1; n <= 5; n++) await app.broadcastChannel('h-room', n, { event: 'line' })
  await seen.until('not recovered', () => seen.subscribed.length === 2)
  t.match(seen.subscribed[1], ['h-room', { recovered: false, offset: 5 }])
  await app.broadcastChannel('h-room', 6, { event: 'line' })
  await seen.until('6', () => seen.lines.length === 1)
  t.same(seen.lines, [6])
  const view = await app.channels.history('h-room')
  t.same(view.messages.map((m) => m.data), [4, 5, 6], 'what an app reloads from')
})

t.test('a path that silently stops forwarding: heartbeat pings, finds it dead, reconnects and recovers', async (t) => {
  const { app, proxy } = await server(t)
  const client = clientFor(t, proxy.url(), { heartbeat: 200 })
  const seen = recorder(client)
  await client.subscribe('h-room')
  const before = client.sessionId
  proxy.silence()
  await app.broadcastChannel('h-room', 'lost-on-the-dead-path', { event: 'line' })
  await statusOf(client, 'reconnecting', 3000)
  await statusOf(client, 'open', 3000)
  t.not(client.sessionId, before)
  await seen.until('recovered', () => seen.subscribed.length === 2 && seen.lines.length === 1)
  t.match(seen.subscribed[1], ['h-room', { recovered: true }])
  t.same(seen.lines, ['lost-on-the-dead-path'])
})

t.test('an idle but healthy path: pings are answered and the connection stays', async (t) => {
  const pings: string[] = []
  const started = await startApp({ heartbeat: false, messageLog: true }, undefined, {
    logger: { level: 'info', stream: { write (line: string) { if (line.includes('"type\\":\\"ping\\"')) pings.push(line) } } }
  })
  t.teardown(() => started.app.close())
  const client = clientFor(t, started.url, { heartbeat: 100 })
  await statusOf(client, 'open')
  const session = client.sessionId
  const statuses: string[] = []
  client.onStatus((status) => statuses.push(status))
  const deadline = Date.now() + 5000
  while (pings.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(pings.length >= 3, `the client pinged ${pings.length} times`)
  t.equal(client.sessionId, session)
  t.same(statuses, [], 'never reconnected')
})

t.test('a welcome that does not come within the connect timeout is a failed try', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => new Promise((resolve) => wss.close(resolve)))
  await within(new Promise((resolve) => wss.once('listening', resolve)), 3000, 'the silent server listens')
  const tries = { count: 0 }
  wss.on('connection', () => { tries.count++ }) // accepts, never says welcome
  const { port } = wss.address() as { port: number }
  const client = clientFor(t, `ws://127.0.0.1:${port}/ws`, { timeout: 200 })
  await statusOf(client, 'reconnecting', 3000)
  const deadline = Date.now() + 5000
  while (tries.count < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(tries.count >= 2, `tried again (${tries.count} connections)`)
  t.not(client.status, 'open')
})
