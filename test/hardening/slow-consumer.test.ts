/**
 * Slow consumers (`maxBufferedBytes`): a subscriber that stops reading is closed with 1013 and
 * its queue freed, the server's memory stays bounded however much is broadcast, and the other
 * subscribers get every frame. The server runs in a child process so its memory is its own.
 */
import t from 'tap'
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { typescriptLoaderArgs } from '../helpers/child-loader.js'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient, until } from '../helpers/server.js'
import { RawClient } from './raw-client.js'

const fixture = fileURLToPath(new URL('./fixtures/broadcast-server.ts', import.meta.url))
const mb = 1024 * 1024

interface Memory { rss: number, heapUsed: number, external: number, arrayBuffers: number }
interface Report { disconnects: Array<{ id: string, code: number, reason: string }>, stats: { sockets: number, channels: number } }

class ServerProcess {
  private constructor (readonly child: ChildProcess, readonly port: number) {}

  static async start (maxBufferedBytes: number): Promise<ServerProcess> {
    const execArgv = [...typescriptLoaderArgs(), '--expose-gc']
    const child = fork(fixture, { execArgv, env: { ...process.env, MAX_BUFFERED_BYTES: String(maxBufferedBytes) } })
    try {
      const [{ port }] = await within(once(child, 'message'), 60_000, 'the server process reports its port') as [{ port: number }]
      return new ServerProcess(child, port)
    } catch (err) {
      child.kill() // a child left running would hold the test file open until tap's timeout
      throw err
    }
  }

  async ask<T> (message: object): Promise<T> {
    this.child.send(message)
    const [answer] = await within(once(this.child, 'message'), 30_000, `the server process answers ${JSON.stringify(message)}`) as [T]
    return answer
  }

  async stop (): Promise<void> {
    const exited = once(this.child, 'exit')
    this.child.disconnect()
    await within(exited, 10_000, 'the server process exits when the test lets go of it')
  }
}

/** A subscriber that reads everything and checks it arrives whole and in order. */
class FastReader {
  received = 0
  outOfOrder = 0
  private wanted = 0
  private reached: (() => void) | undefined

  constructor (readonly client: TestClient) {
    client.ws.on('message', () => {
      // TestClient parsed the frame already; keep its queue small.
      for (const frame of client.frames.splice(0)) {
        const data = frame.data as { seq: number } | undefined
        if (frame.type !== 'message' || data === undefined) continue
        if (data.seq !== this.received) this.outOfOrder++
        this.received++
      }
      if (this.received >= this.wanted) this.reached?.()
    })
  }

  /** Resolves once `count` frames arrived; rejects after `timeoutMs`. */
  async receivedAll (count: number, timeoutMs = 10_000): Promise<void> {
    if (this.received >= count) return
    this.wanted = count
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`got ${this.received} of ${count} frames`)), timeoutMs)
      this.reached = () => { clearTimeout(timer); this.reached = undefined; resolve() }
    })
  }
}

interface Run { peak: Memory, baseline: Memory, report: Report, slowId: string, fast: FastReader[], slow: RawClient }

/** Broadcasts `rounds × frames × size` bytes to two fast subscribers and one that stopped reading. */
async function broadcastRun (server: ServerProcess, rounds: number, frames: number, size: number): Promise<Run> {
  const url = `ws://127.0.0.1:${server.port}/ws`
  const fast = await Promise.all([0, 1].map(async () => {
    const client = await TestClient.connect(url)
    await client.subscribe('feed')
    return new FastReader(client)
  }))
  const slow = await RawClient.connect(server.port)
  slow.sendJson({ type: 'subscribe', channel: 'feed', id: 1 })
  await slow.waitFor(() => slow.json().some((frame) => frame.type === 'subscribed'), 3000, 'the slow peer is subscribed')
  const slowId = slow.json()[0].sessionId as string
  slow.socket.pause() // stops reading: the kernel buffers fill, then the server's queue grows

  const { memory: baseline } = await server.ask<{ memory: Memory }>({ cmd: 'batch', frames: 0, size, measure: true })
  const peak = { ...baseline }
  for (let round = 0; round < rounds; round++) {
    // A full GC per measurement is slow: measure every 8th batch and the last.
    const measure = round % 8 === 7 || round === rounds - 1
    const { sent, memory } = await server.ask<{ sent: number, memory?: Memory }>({ cmd: 'batch', frames, size, measure })
    if (memory !== undefined) {
      for (const key of Object.keys(peak) as Array<keyof Memory>) peak[key] = Math.max(peak[key], memory[key])
    }
    // Paced by the fast readers only: the slow one never holds the broadcaster back.
    await Promise.all(fast.map((reader) => reader.receivedAll(sent)))
  }
  const report = await server.ask<Report>({ cmd: 'report' })
  return { peak, baseline, report, slowId, fast, slow }
}

function growth (run: Run, key: keyof Memory | 'queued'): number {
  if (key === 'queued') return growth(run, 'heapUsed') + growth(run, 'external')
  return (run.peak[key] - run.baseline[key]) / mb
}

t.test('a subscriber that stops reading is cut off with 1013; memory stays bounded; others get everything', async (t) => {
  const server = await ServerProcess.start(mb)
  t.teardown(() => server.stop())
  const rounds = 128
  const frames = 16
  const size = 16 * 1024
  const run = await broadcastRun(server, rounds, frames, size)
  const total = rounds * frames
  t.comment(`broadcast ${(total * size / mb).toFixed(0)} MB to each of 3 subscribers; growth: ` +
    `heap + external ${growth(run, 'queued').toFixed(1)} MB, rss ${growth(run, 'rss').toFixed(1)} MB`)

  const slowClose = run.report.disconnects.find((entry) => entry.id === run.slowId)
  t.match(slowClose, { code: 1013, reason: 'slow consumer' }, 'disconnect handlers see 1013 for the slow one')
  t.equal(run.report.disconnects.length, 1, 'only the slow one was closed')
  t.has(run.report.stats, { sockets: 2, channels: 1 }, 'its socket and subscription are gone')
  for (const reader of run.fast) {
    t.equal(reader.received, total, 'a fast subscriber got every frame')
    t.equal(reader.outOfOrder, 0, 'in order')
    t.equal(reader.client.ws.readyState, reader.client.ws.OPEN, 'and is still open')
  }
  t.ok(growth(run, 'queued') < 8, 'live memory grows by about maxBufferedBytes, not by the 32 MB broadcast')
  t.ok(growth(run, 'rss') < 96, 'rss stays bounded')

  // The slow peer reads again: it finds what the kernel held, then the end of the connection.
  run.slow.socket.resume()
  await within(run.slow.ended, 10_000, 'the slow consumer\'s connection is cut off')
  const feed = run.slow.json().filter((frame) => frame.type === 'message')
  t.ok(feed.length < total, `it got only part of the feed (${feed.length} frames)`)
  t.same(feed.map((frame) => (frame.data as { seq: number }).seq), feed.map((_frame, i) => i),
    'what it got is the start of the feed, whole and in order')
  // The 1013 is what the server's disconnect handlers see (asserted above). On the wire the
  // close frame is queued behind the backlog the kernel would not take, and the socket is
  // destroyed with that backlog: the peer sees the connection end without a close frame
  // (1006 in a browser).
  t.equal(run.slow.closeCode(), undefined, 'no close frame reaches a peer that stopped reading')
  for (const reader of run.fast) reader.client.close()
  await within(Promise.all(run.fast.map((reader) => reader.client.closed)), 5000, 'the fast subscribers close when they ask to')
})

t.test('control: without the limit the same traffic piles up in the server', async (t) => {
  const server = await ServerProcess.start(Number.MAX_SAFE_INTEGER)
  t.teardown(() => server.stop())
  const run = await broadcastRun(server, 128, 16, 16 * 1024)
  t.comment(`growth without a limit: heap + external ${growth(run, 'queued').toFixed(1)} MB, rss ${growth(run, 'rss').toFixed(1)} MB`)
  t.equal(run.report.disconnects.length, 0, 'nobody was closed')
  t.ok(growth(run, 'queued') > 24, 'the slow socket\'s queue holds the backlog (the measure is sensitive)')
  run.slow.destroy()
  for (const reader of run.fast) reader.client.close()
  await within(Promise.all(run.fast.map((reader) => reader.client.closed)), 5000, 'the fast subscribers close when they ask to')
})

t.test('a single frame larger than maxBufferedBytes to a stalled peer closes it too', async (t) => {
  const disconnects: number[] = []
  const { app, port } = await startApp({ maxBufferedBytes: 64 * 1024, heartbeat: false }, (app) => {
    app.channels.on('disconnect', (_socket, { code }) => { disconnects.push(code) })
  })
  t.teardown(() => app.close())
  const slow = await RawClient.connect(port)
  await slow.waitFor(() => slow.json().length === 1, 3000, 'the peer gets its welcome')
  const [{ sessionId }] = slow.json()
  slow.socket.pause()
  const big = 'y'.repeat(512 * 1024)
  // Bounded: kernel buffers take a few MB at most before the server's own queue grows.
  for (let i = 0; i < 64 && app.channels.stats().sockets === 1; i++) await app.send(sessionId as string, big)
  await until(() => disconnects.length === 1, 5000, 'a stalled peer sent frames beyond maxBufferedBytes is closed')
  t.same(disconnects, [1013], 'its disconnect handlers see 1013')
  t.equal(app.channels.stats().sockets, 0)
  slow.socket.resume()
  await within(slow.ended, 5000, 'the stalled peer\'s connection is cut off')
  t.equal(slow.closeCode(), undefined, 'its close frame went down with the backlog: none reaches the peer')
})
