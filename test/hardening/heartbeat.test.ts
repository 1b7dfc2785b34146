/**
 * Heartbeat: one timer pings every socket; a peer that misses a pong is terminated.
 * A dead peer is a real `ws` client with `autoPong: false` (it reads pings but never answers).
 */
import t from 'tap'
import WebSocket from 'ws'
import { startHeartbeat, type HeartbeatPeer } from '../../plugin/node/heartbeat.js'
import { ChannelError } from '../../plugin/index.js'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient, until } from '../helpers/server.js'
import { RawClient } from './raw-client.js'

/** Counts the intervals started while `fn` runs (the heartbeat timer is unref'd, so it is not an active resource). */
async function intervalsStartedBy (fn: () => Promise<void>): Promise<number> {
  const original = globalThis.setInterval
  let started = 0
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    started++
    return original(...args)
  }) as typeof setInterval
  try {
    await fn()
  } finally {
    globalThis.setInterval = original
  }
  return started
}

t.test('a peer that answers pings stays connected', async (t) => {
  // Intervals here leave room for a loaded machine: the peer shares the server's process, so
  // a scheduling delay longer than an interval would make it miss a pong for real.
  const { app, url } = await startApp({ heartbeat: 200 })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  let pings = 0
  client.ws.on('ping', () => { pings++ })
  await until(() => pings >= 4 || client.ws.readyState !== client.ws.OPEN, 10_000, 'the server pings a live peer every interval')
  t.equal(client.ws.readyState, client.ws.OPEN, 'still open after 4 heartbeats')
  t.equal(app.channels.stats().sockets, 1)
  client.close()
  await within(client.closed, 3000, 'the live peer closes when it asks to')
})

t.test('a peer that never answers a ping is terminated', async (t) => {
  const disconnects: Array<{ code: number, reason: string }> = []
  let finished = 0
  const { app, url } = await startApp({ heartbeat: 200 }, (app) => {
    app.channels.on('disconnect', (_socket, info) => { disconnects.push(info) })
    app.channels.on('finish', () => { finished++ })
  })
  t.teardown(() => app.close())
  const alive = await TestClient.connect(url)
  const dead = await TestClient.connect(url, { autoPong: false })
  let pingsSeen = 0
  dead.ws.on('ping', () => { pingsSeen++ })
  const started = Date.now()
  const { code } = await within(dead.closed, 5000, 'the heartbeat cuts off a peer that never answers a ping')
  t.ok(pingsSeen >= 1, 'the dead peer was pinged before it was cut off')
  t.equal(code, 1006, 'terminated: no close frame')
  t.ok(Date.now() - started < 5000, 'cut off within a few intervals')
  await until(() => finished === 1, 3000, 'the disconnect sequence runs for the cut-off peer')
  t.same(disconnects, [{ code: 1006, reason: 'heartbeat timeout' }], 'the disconnect sequence ran for it, and says why')
  t.equal(alive.ws.readyState, alive.ws.OPEN, 'the live peer is untouched')
  t.equal(app.channels.stats().sockets, 1)
  alive.close()
  await within(alive.closed, 3000, 'the live peer closes when it asks to')
})

t.test('a stalled event loop does not cut off peers whose pong arrived during the stall', async (t) => {
  const interval = 200
  const { app, url } = await startApp({ heartbeat: interval })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  let pings = 0
  client.ws.on('ping', () => {
    // ws has written the pong already. Now the process (server included) stalls for three
    // intervals, as under a long GC or a busy handler: the pong waits unread in the kernel.
    if (++pings === 2) {
      const end = performance.now() + 3 * interval
      while (performance.now() < end) { /* busy */ }
    }
  })
  await until(() => pings >= 4 || client.ws.readyState !== client.ws.OPEN, 10_000, 'the server keeps pinging after a stall')
  t.equal(client.ws.readyState, client.ws.OPEN, 'still connected after the stall')
  t.ok(pings >= 4, 'and still pinged')
  client.close()
  await within(client.closed, 3000, 'the peer closes when it asks to')
})

t.test('a peer that never answers the server\'s close frame is cut off by the heartbeat, not after 30 s', async (t) => {
  const { app, port } = await startApp({ heartbeat: 100 }, (app) => {
    app.channels.on('connect', () => { throw new ChannelError('GO_AWAY', 'refused') })
  })
  t.teardown(() => app.close())
  const raw = await RawClient.connect(port) // answers neither pings nor the close frame
  await raw.waitFor(() => raw.closeCode() !== undefined, 3000, 'a refused peer gets the 1008 close frame')
  t.equal(raw.closeCode(), 1008)
  const started = Date.now()
  await within(raw.ended, 5000, 'the heartbeat cuts off a peer that never answers the close frame')
  t.ok(Date.now() - started < 5000, `gone within a few intervals (${Date.now() - started} ms), not ws's 30 s close timeout`)
  t.equal(app.channels.stats().sockets, 0)
})

t.test('one timer serves every socket', async (t) => {
  let app!: Awaited<ReturnType<typeof startApp>>
  t.equal(await intervalsStartedBy(async () => { app = await startApp({ heartbeat: 60_000 }) }), 1, 'one timer per app')
  t.teardown(() => app.app.close())
  let clients: TestClient[] = []
  const perSocket = await intervalsStartedBy(async () => {
    clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(app.url)))
  })
  t.equal(perSocket, 0, 'connecting 20 sockets starts no timer')
  for (const client of clients) client.close()
  await within(Promise.all(clients.map((client) => client.closed)), 5000, 'the 20 peers close when they ask to')
})

t.test('heartbeat: false starts no timer and sends no pings', async (t) => {
  let started!: Awaited<ReturnType<typeof startApp>>
  const timers = await intervalsStartedBy(async () => {
    started = await startApp({ heartbeat: false }, (app) => {
      app.channels.on('message', { event: 'echo' }, (_socket, data) => data)
    })
  })
  const { app, url } = started
  t.teardown(() => app.close())
  t.equal(timers, 0, 'no timer')
  const client = await TestClient.connect(url, { autoPong: false })
  let pings = 0
  client.ws.on('ping', () => { pings++ })
  const ack = await client.request({ type: 'message', event: 'echo', data: 1, id: 1 })
  t.equal(ack.data, 1, 'a peer that never pongs is served')
  t.equal(pings, 0)
  client.close()
  await within(client.closed, 3000, 'the peer closes when it asks to')
})

t.test('startHeartbeat ticks every socket and stops', async (t) => {
  const ticks = { a: 0, b: 0 }
  // Peers that answer every ping at once: each tick pings them again.
  const peer = (id: 'a' | 'b'): HeartbeatPeer => {
    const self: HeartbeatPeer = {
      id,
      alive: true,
      log: { info: () => {} },
      ws: { readyState: WebSocket.OPEN, ping: () => { ticks[id]++; self.alive = true } },
      terminate: () => { throw new Error('a peer that answered was terminated') }
    }
    return self
  }
  const sockets = new Map([['a', peer('a')], ['b', peer('b')]])
  let stop = (): void => {}
  t.equal(await intervalsStartedBy(async () => { stop = startHeartbeat(sockets, 5) }), 1, 'one timer')
  await until(() => ticks.a >= 3 && ticks.b >= 3, 3000, 'every tick pings every socket')
  t.equal(ticks.a, ticks.b, 'each tick reaches every socket')
  const original = globalThis.clearInterval
  let cleared = 0
  globalThis.clearInterval = ((timer: Parameters<typeof clearInterval>[0]) => {
    cleared++
    original(timer)
  }) as typeof clearInterval
  try {
    stop()
  } finally {
    globalThis.clearInterval = original
  }
  t.equal(cleared, 1, 'stop() clears the timer')
})
