/**
 * Cleanup: thousands of connect/subscribe/disconnect cycles, ended every way a connection can
 * end, leave no socket, channel, listener, timer or heap behind.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { ChannelError, type ChannelSocket } from '../../plugin/index.js'
import { within } from '../helpers/deadline.js'
import { connectionsSettleAt, startApp, TestClient, until } from '../helpers/server.js'

// A full GC without --expose-gc on the command line: the flag is set, then `gc` is taken
// from a fresh context, where V8 installs it.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heapUsed (): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

function resources (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const name of process.getActiveResourcesInfo()) counts[name] = (counts[name] ?? 0) + 1
  return counts
}

/**
 * The handles once pending immediates ran: a `setImmediate` queued by the last step of some work
 * (a flush, a gathered write) is gone a tick later, so it is no handle left behind. Gives up
 * waiting after a second, so an immediate that re-arms itself for good still shows.
 */
async function resourcesAtRest (): Promise<Record<string, number>> {
  const deadline = Date.now() + 1000
  while ((resources().Immediate ?? 0) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  return resources()
}

function listeners (app: FastifyInstance): Record<string, number> {
  const wss = app.websocketServer
  return {
    upgrade: app.server.listenerCount('upgrade'),
    connection: app.server.listenerCount('connection'),
    request: app.server.listenerCount('request'),
    wssConnection: wss.listenerCount('connection'),
    processExit: process.listenerCount('exit'),
    processError: process.listenerCount('uncaughtException')
  }
}

const endings = ['client close', 'server close', 'client terminate', 'refused by connect', 'handler closes'] as const
type Ending = typeof endings[number]

t.test('thousands of connection cycles leave nothing behind', async (t) => {
  const counts = { connect: 0, disconnect: 0, finish: 0, unsubscribe: 0 }
  const live = new Map<string, ChannelSocket>() // what an app that kicks users would keep
  const { app, url } = await startApp({ heartbeat: 1000 }, (app) => {
    app.channels.on('connect', (socket) => {
      if (socket.request.headers['x-ending'] === 'refused by connect') throw new ChannelError('GO_AWAY', 'not today')
      counts.connect++
      live.set(socket.id, socket)
    })
    app.channels.on('subscribe', { channel: /^locked-/ }, () => { throw new ChannelError('FORBIDDEN', 'no') })
    app.channels.on('message', { event: 'chat' }, (socket, data, meta) => {
      socket.context.last = data
      return socket.broadcastChannel(data, { channel: meta.channel, event: 'chat' })
    })
    app.channels.on('message', { event: 'bye' }, (socket) => { socket.close(1000, 'bye') })
    app.channels.on('unsubscribe', () => { counts.unsubscribe++ })
    app.channels.on('disconnect', () => { counts.disconnect++ })
    app.channels.on('finish', (socket) => {
      counts.finish++
      live.delete(socket.id)
    })
  })
  t.teardown(() => app.close())

  let cycle = 0
  async function oneCycle (ending: Ending): Promise<void> {
    const n = cycle++
    const headers = { 'x-ending': ending }
    if (ending === 'refused by connect') {
      const client = await TestClient.open(url, { headers })
      await within(client.closed, 5000, 'a socket refused by its connect handler is closed')
      return
    }
    const client = await TestClient.connect(url, { headers })
    await client.subscribe('lobby')
    await client.subscribe(`room-${n}`)
    await client.subscribe(`locked-${n}`) // refused: must leave no trace either
    await client.request({ type: 'message', event: 'chat', channel: `room-${n}`, data: { n }, id: 1 })
    switch (ending) {
      case 'client close': client.close(); break
      case 'client terminate': client.ws.terminate(); break
      case 'server close': live.get(client.sessionId)?.close(4000, 'kicked'); break
      case 'handler closes': client.send({ type: 'message', event: 'bye' }); break
    }
    await within(client.closed, 5000, `a connection ended by ${ending} closes`)
  }

  async function cycles (count: number, concurrency: number): Promise<void> {
    for (let done = 0; done < count; done += concurrency) {
      await Promise.all(Array.from({ length: concurrency }, (_, i) => oneCycle(endings[(done + i) % endings.length])))
    }
  }

  async function settled (): Promise<void> {
    await until(() => app.channels.stats().sockets === 0 && app.websocketServer.clients.size === 0, 10_000,
      'every ended socket is gone from the plugin and ws')
    await until(() => counts.finish === counts.connect, 10_000, 'finish runs for every connected socket')
  }

  // Warm-up: JIT, pools and caches reach their steady size first.
  await cycles(250, 25)
  await settled()
  const baseline = { heap: heapUsed(), resources: await resourcesAtRest(), listeners: listeners(app) }

  const total = 3000
  const started = Date.now()
  await cycles(total, 50)
  await settled()
  t.comment(`${total} cycles in ${Date.now() - started} ms`)

  t.has(app.channels.stats(), { sockets: 0, channels: 0 }, 'no socket, no channel')
  t.equal(app.websocketServer.clients.size, 0, 'ws holds no client')
  await connectionsSettleAt(app, 0, 10_000)
  t.pass('no TCP connection left')
  t.equal(counts.disconnect, counts.connect, 'every connected socket ran disconnect once')
  t.equal(counts.finish, counts.connect, 'and finish once')
  t.equal(counts.unsubscribe, counts.connect * 2, 'and unsubscribe for each of its two channels')
  t.same(listeners(app), baseline.listeners, 'no listener added for good')
  await until(() => (resources().TCPSocketWrap ?? 0) <= (baseline.resources.TCPSocketWrap ?? 0), 10_000,
    'the TCP handles go back to the baseline count')
  t.same(await resourcesAtRest(), baseline.resources, 'no timer, socket or other handle left')
  const growth = (heapUsed() - baseline.heap) / 1024 / 1024
  t.comment(`heap growth after ${total} cycles: ${growth.toFixed(2)} MB`)
  // What remains is compiled code (heap snapshots before and after show no connection object
  // left); a leak of 1.4 KB per connection would be 4 MB.
  t.ok(growth < 4, `heap back near baseline (${growth.toFixed(2)} MB)`)
})
