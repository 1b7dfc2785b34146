/**
 * Inbound backpressure: frames queued behind a slow async handler are bounded (64, then the
 * socket stops reading, so TCP slows the peer down), and are all handled, in order, once the
 * handler catches up.
 */
import t from 'tap'
import type { Socket } from 'node:net'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient, until } from '../helpers/server.js'

t.test('a slow handler stops the socket reading after 64 queued frames; all are handled, in order, after', async (t) => {
  const seen: number[] = []
  let release = (): void => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let serverSocket: Socket | undefined
  const { app, url } = await startApp({ rateLimit: false }, (app) => {
    // The upgrade request's TCP socket is the one ws reads from.
    app.channels.on('connect', (socket) => { serverSocket = socket.request.raw.socket })
    app.channels.on('message', async (_socket, data) => {
      if (data === 0) await gate // the first frame holds the line
      seen.push(data as number)
      return data
    })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  const [server] = [...app.websocketServer.clients]
  let received = 0
  server.on('message', () => { received++ })
  const total = 5000 // about 300 kB: many TCP reads
  const padding = 'p'.repeat(20)
  for (let i = 0; i < total; i++) client.send({ type: 'message', data: i, id: i + 1, padding })
  await until(() => serverSocket?.isPaused() === true, 3000, 'the server stops reading behind the stuck handler')
  t.pass('the server stopped reading while the handler was stuck')
  // What one TCP read (at most 64 KiB) brought in is still parsed: 64 frames plus that.
  const perRead = Math.ceil(65536 / JSON.stringify({ type: 'message', data: total, id: total, padding }).length)
  t.ok(received <= 64 + 2 * perRead, `it took ${received} of ${total} frames, then read no more`)
  t.same(seen, [], 'nothing ran past the stuck handler')
  release()
  await until(() => seen.length === total, 10_000, 'every queued frame is handled once the handler is released')
  t.same(seen, Array.from({ length: total }, (_, i) => i), 'every frame handled, in order')
  await client.next((frame) => frame.id === total)
  t.notOk(serverSocket?.isPaused(), 'reading again')
  client.close()
  await within(client.closed, 3000, 'the client closes when it asks to')
})
