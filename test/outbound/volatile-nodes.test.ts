/**
 * Volatile sends across two nodes over Redis (and NATS): the flag travels with the publication,
 * so the node that delivers it also skips a backed-up socket instead of queueing (or closing) it.
 */
import t from 'tap'
import type WebSocket from 'ws'
import type { FastifyInstance } from 'fastify'
import { deleteKeys, startNode, uniquePrefix, withRedis } from '../redis/helpers.js'
import { recordSockets, startApp, TestClient, until } from '../helpers/server.js'
import { deleteStreams, natsUrl, uniquePrefix as natsPrefix, withNats } from '../broker/nats/helpers.js'
import { natsBroker, type ChannelSocket, type DisconnectInfo } from '../../plugin/index.js'
import { hasBacklog } from '../../plugin/outbound/frame-writer.js'

const turn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))
const big = 'x'.repeat(64 * 1024)
const maxBufferedBytes = 1 << 20

type ServerSocket = ChannelSocket & { ws: WebSocket }

t.test('volatile over Redis', async (t) => {
  await withRedis(t, async () => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const a = await startNode(t, { prefix }, undefined, { maxBufferedBytes })
    let sockets = new Map<string, ChannelSocket>()
    const disconnects = new Map<string, DisconnectInfo>()
    const b = await startNode(t, { prefix }, (app: FastifyInstance) => {
      sockets = recordSockets(app)
      app.channels.on('disconnect', (socket, info) => { disconnects.set(socket.id, info) })
    }, { maxBufferedBytes })

    t.test('a fast socket on the other node gets volatile broadcasts, channel broadcasts and sends', async (t) => {
      const client = await TestClient.connect(b.url)
      await client.subscribe('room')
      await a.app.broadcast('all', { volatile: true })
      await a.app.broadcastChannel('room', 'chan', { volatile: true })
      await a.app.send(client.sessionId, 'one', { volatile: true, event: 'cursor' })
      t.same(await client.next((f) => f.type === 'message'), { type: 'message', event: 'message', data: 'all' })
      t.same(await client.next((f) => f.type === 'message'), { type: 'message', event: 'message', channel: 'room', data: 'chan' })
      t.same(await client.next((f) => f.type === 'message'), { type: 'message', event: 'cursor', data: 'one' })
      client.close()
    })

    t.test('a delivery on the other node skips its backed-up socket: never queued past the limit, never closed', async (t) => {
      const slow = await TestClient.connect(b.url)
      await slow.subscribe('room')
      const server = sockets.get(slow.sessionId) as ServerSocket
      slow.ws.pause()
      const sent = 600
      let peak = 0
      for (let i = 0; i < sent; i++) {
        await a.app.broadcastChannel('room', big, { volatile: true })
        peak = Math.max(peak, server.ws.bufferedAmount)
        if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 5)) // let node b deliver
        else await turn()
      }
      // wait for node b to have delivered (or skipped) the whole flood
      await a.app.broadcastChannel('room', 'end', { volatile: true })
      await new Promise((resolve) => setTimeout(resolve, 300))
      peak = Math.max(peak, server.ws.bufferedAmount)
      t.ok(hasBacklog(server.ws), 'the socket on node b is backed up')
      t.ok(peak <= maxBufferedBytes + big.length + 64, `its queue stayed bounded (peak ${peak})`)
      t.equal(server.ws.readyState, 1, 'still open')
      t.notOk(disconnects.has(server.id))

      // the same flood without the flag closes such a socket with 1013 on node b
      const other = await TestClient.connect(b.url)
      await other.subscribe('plain')
      const second = sockets.get(other.sessionId) as ServerSocket
      other.ws.pause()
      for (let i = 0; i < sent && !disconnects.has(second.id); i++) {
        await a.app.broadcastChannel('plain', big)
        if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 5))
        else await turn()
      }
      await until(() => disconnects.has(second.id), 10_000, 'the plain flood closes the slow consumer on node b')
      t.same(disconnects.get(second.id), { code: 1013, reason: 'slow consumer' })
      t.notOk(disconnects.has(server.id), 'the volatile flood never closed the first one')
      slow.ws.terminate()
      other.ws.terminate()
    })
  })
})

t.test('volatile over NATS: the same envelope, so the flag travels there too', async (t) => {
  await withNats(t, async () => {
    const prefix = natsPrefix()
    t.teardown(() => deleteStreams(prefix))
    const options = { heartbeat: false as const, rateLimit: false as const, maxBufferedBytes }
    const a = await startApp({ ...options, broker: natsBroker({ servers: [natsUrl], prefix }) })
    t.teardown(() => a.app.close())
    let sockets = new Map<string, ChannelSocket>()
    const disconnects = new Map<string, DisconnectInfo>()
    const b = await startApp({ ...options, broker: natsBroker({ servers: [natsUrl], prefix }) }, (app) => {
      sockets = recordSockets(app)
      app.channels.on('disconnect', (socket, info) => { disconnects.set(socket.id, info) })
    })
    t.teardown(() => b.app.close())
    const client = await TestClient.connect(b.url)
    await client.subscribe('room')
    await a.app.broadcastChannel('room', 'chan', { volatile: true })
    await a.app.send(client.sessionId, 'one', { volatile: true, event: 'cursor' })
    t.same(await client.next((f) => f.type === 'message'), { type: 'message', event: 'message', channel: 'room', data: 'chan' })
    t.same(await client.next((f) => f.type === 'message'), { type: 'message', event: 'cursor', data: 'one' })

    const server = sockets.get(client.sessionId) as ServerSocket
    client.ws.pause()
    let peak = 0
    for (let i = 0; i < 600; i++) {
      await a.app.broadcast(big, { volatile: true })
      peak = Math.max(peak, server.ws.bufferedAmount)
      if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 5))
      else await turn()
    }
    await new Promise((resolve) => setTimeout(resolve, 300))
    peak = Math.max(peak, server.ws.bufferedAmount)
    t.ok(hasBacklog(server.ws), 'the socket on node b is backed up')
    t.ok(peak <= maxBufferedBytes + big.length + 64, `its queue stayed bounded (peak ${peak})`)
    t.notOk(disconnects.has(server.id), 'and never closed')
    client.ws.terminate()
  })
})
