/**
 * The client's reconnect after a server that went away on purpose (1001 shutting down, 1012
 * restarting, 1013 try again later): a random wait over `reconnectJitter` (full jitter), so the
 * clients of one node do not come back in the same instant; the backoff stays for failures.
 */
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import WebSocket from 'ws'
import type { ChannelSocket } from '../../plugin/types.js'
import fastifyChannels from '../../plugin/index.js'
import { startApp, until } from '../helpers/server.js'
import { clientFor, statusOf } from './helpers.js'

/** An app that records each connected socket with the time it connected. */
async function recordingServer (t: Test): Promise<{ url: string, sockets: ChannelSocket[], connectedAt: number[] }> {
  const sockets: ChannelSocket[] = []
  const connectedAt: number[] = []
  const { app, url } = await startApp({ heartbeat: false, rateLimit: false }, (app) => {
    app.channels.on('connect', (socket) => {
      sockets.push(socket)
      connectedAt.push(performance.now())
    })
  })
  t.teardown(() => app.close())
  return { url, sockets, connectedAt }
}

t.test('200 clients closed with 1001 in one loop come back spread over reconnectJitter, not in one wave', async (t) => {
  const window = 1000
  const s = await recordingServer(t)
  // The default backoff (125–250 ms for the first try): what the clients would all wait before.
  // Each client's own wait: from the moment it saw the close to the moment it opened its next
  // WebSocket (one process runs the server and the 200 clients, so the closes are seen over a
  // while, and connecting takes a while: neither counts).
  const waits: number[] = []
  const clients = Array.from({ length: 200 }, () => {
    let droppedAt: number | undefined
    class Recording extends WebSocket {
      constructor (url: string) {
        super(url)
        if (droppedAt !== undefined) waits.push(performance.now() - droppedAt)
        droppedAt = undefined
      }
    }
    const client = clientFor(t, s.url, { WebSocket: Recording, reconnectJitter: window, backoff: undefined })
    client.onStatus((status) => { if (status === 'reconnecting') droppedAt = performance.now() })
    return client
  })
  await until(() => s.sockets.length === 200 && clients.every((client) => client.status === 'open'), 10_000, '200 clients connect')
  for (const socket of s.sockets.slice()) socket.close(1001, 'server shutting down')
  await until(() => waits.length === 200, 10_000, 'every client tries again')
  // Evenly over [0, 1000 ms): each quarter of the window holds about 25 %. Within 10–40 % leaves
  // room for timers late on a loaded machine; the backoff alone (the default: 125–250 ms for
  // the first try) would put them all in the first quarter.
  const quarters = [0, 0, 0, 0]
  for (const wait of waits) quarters[Math.min(3, Math.floor((wait / window) * 4))]++
  t.ok(quarters.every((count) => count >= 20 && count <= 80), `spread over the window: ${quarters.join(' / ')} per quarter`)
  t.ok(Math.min(...waits) < window * 0.2 && Math.max(...waits) > window * 0.8,
    `the whole window is used: ${Math.round(Math.min(...waits))}–${Math.round(Math.max(...waits))} ms`)
  await until(() => clients.every((client) => client.status === 'open'), 10_000, 'every client is back')
})

for (const code of [1001, 1012, 1013]) {
  t.test(`after ${code} the first reconnect waits the random delay, not the backoff`, async (t) => {
    const s = await recordingServer(t)
    const asked: number[] = []
    const client = clientFor(t, s.url, { reconnectJitter: 200, backoff: (tries) => { asked.push(tries); return 20 } })
    await statusOf(client, 'open')
    s.sockets[0].close(code, 'bye')
    await statusOf(client, 'reconnecting')
    await statusOf(client, 'open')
    t.same(asked, [], 'the backoff was not asked')
    t.equal(s.sockets.length, 2)
  })
}

for (const [how, cut] of [
  ['4000', (socket: ChannelSocket) => socket.close(4000, 'bye')],
  ['a dropped connection (1006)', (socket: ChannelSocket) => (socket as unknown as { ws: { terminate: () => void } }).ws.terminate()]
] as const) {
  t.test(`after ${how} the backoff is asked, as after any failure`, async (t) => {
    const s = await recordingServer(t)
    const asked: number[] = []
    const client = clientFor(t, s.url, { reconnectJitter: 60_000, backoff: (tries) => { asked.push(tries); return 20 } })
    await statusOf(client, 'open')
    cut(s.sockets[0])
    await until(() => s.sockets.length === 2, 3000, 'reconnected after the backoff, not after a minute of jitter')
    t.same(asked, [1])
  })
}

t.test('a server shut down with fastify.close(): a random wait, then the backoff while nothing listens', async (t) => {
  const app = Fastify()
  await app.register(fastifyChannels, { client: false, drainMs: 0 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const asked: number[] = []
  const client = clientFor(t, `ws://127.0.0.1:${port}/ws`, { reconnectJitter: 50, backoff: (tries) => { asked.push(tries); return 20 } })
  await statusOf(client, 'open')
  const statuses: string[] = []
  client.onStatus((status) => statuses.push(status))
  await app.close()
  await until(() => asked.length >= 3, 5000, 'the tries after the jittered one fail and back off')
  t.same(asked.slice(0, 3), [1, 2, 3], 'the failures after the random wait follow the backoff from try 1')
  const again = Fastify()
  await again.register(fastifyChannels, { client: false })
  t.teardown(() => again.close())
  await again.listen({ port, host: '127.0.0.1' })
  await statusOf(client, 'open')
  t.same(statuses, ['reconnecting', 'open'], 'reconnecting from the drop until the new server welcomed it')
})
