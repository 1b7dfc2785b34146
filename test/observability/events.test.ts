/**
 * The plugin's diagnostics-channel events (plugin/observability/events.ts) fire with their
 * fields, on one node over in-memory connections (two nodes over Redis: redis.test.ts).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { events, handlerRunStart, publicationStart } from '../../plugin/observability/events.js'
import { Health } from '../../plugin/broker/redis/health.js'
import { NatsHealth } from '../../plugin/broker/nats/health.js'
import { startInMemory } from '../helpers/in-memory.js'
import { startApp, TestClient, until } from '../helpers/server.js'

type Recorded = Record<string, unknown> & { on: string }

/** Records every event of every `fastify-channels:*` channel while the test runs. */
function record (t: Test): Recorded[] {
  const seen: Recorded[] = []
  for (const channel of Object.values(events)) {
    const name = String(channel.name)
    const listener = (message: unknown): void => { seen.push({ ...(message as object), on: name.slice('fastify-channels:'.length) }) }
    subscribe(name, listener)
    t.teardown(() => { unsubscribe(name, listener) })
  }
  return seen
}

const of = (seen: Recorded[], event: string, nodeId?: string): Recorded[] =>
  seen.filter((entry) => entry.on === event && (nodeId === undefined || entry.nodeId === undefined || entry.nodeId === nodeId))

t.test('every channel is named fastify-channels:* and nobody listens by default', async (t) => {
  for (const channel of Object.values(events)) {
    t.match(String(channel.name), /^fastify-channels:[a-z-]+$/)
    t.equal(channel.hasSubscribers, false, `${String(channel.name)} has no subscriber`)
  }
})

t.test('one node: open, frames, messages, handler runs, errors, publications, deliveries, close', async (t) => {
  const seen = record(t)
  let nodeId = ''
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('message', { event: 'say' }, (socket, data) => {
      socket.send({ echo: data })
      return 'ok'
    })
    app.channels.on('message', { event: 'slow' }, async () => { await new Promise((resolve) => setTimeout(resolve, 20)) })
    app.channels.on('message', { event: 'boom' }, () => { throw new Error('boom') })
  })
  t.teardown(() => app.close())
  const client = await connect()
  const open = of(seen, 'connection-open')
  t.equal(open.length, 1)
  nodeId = open[0].nodeId as string
  t.equal(open[0].sessionId, client.sessionId)
  t.equal((open[0].socket as { id: string }).id, client.sessionId, 'the ChannelSocket comes along')
  t.match(of(seen, 'frame-out', nodeId)[0], { sessionId: client.sessionId, frame: /"type":"welcome"/ })

  t.match(await client.request({ type: 'message', event: 'say', data: 'hi', id: 1 }), { type: 'ack', data: 'ok' })
  t.match(of(seen, 'frame-in', nodeId), [{ sessionId: client.sessionId, frame: '{"type":"message","event":"say","data":"hi","id":1}' }])
  t.match(of(seen, 'message-received', nodeId), [{ sessionId: client.sessionId, event: 'say', channel: undefined, handled: true }])
  const sayRuns = of(seen, 'handler-end', nodeId)
  t.equal(of(seen, 'handler-start', nodeId).length, 1)
  t.match(sayRuns, [{ event: 'say', sessionId: client.sessionId, failed: false }])
  t.ok((sayRuns[0].durationMs as number) >= 0 && (sayRuns[0].durationMs as number) < 1000, 'a sync run has a small duration')
  t.ok(of(seen, 'frame-out', nodeId).some((entry) => /"echo":"hi"/.test(entry.frame as string)), 'the handler\'s send is a frame out')

  await client.request({ type: 'message', event: 'slow', id: 2 })
  const slow = of(seen, 'handler-end', nodeId).find((entry) => entry.event === 'slow')
  t.ok(slow !== undefined && (slow.durationMs as number) >= 15, `an async run lasts until its promise settles (${String(slow?.durationMs)} ms)`)

  t.match(await client.request({ type: 'message', event: 'boom', id: 3 }), { type: 'error', code: 'HANDLER_ERROR' })
  t.match(of(seen, 'handler-end', nodeId).find((entry) => entry.event === 'boom'), { failed: true })
  t.match(await client.request({ type: 'message', event: 'nobody-listens', id: 4 }), { code: 'NO_HANDLER' })
  t.match(of(seen, 'message-received', nodeId).at(-1), { event: 'nobody-listens', handled: false })
  t.same(of(seen, 'error-sent', nodeId).map((entry) => entry.code), ['HANDLER_ERROR', 'NO_HANDLER'])
  t.equal(of(seen, 'handler-start', nodeId).length, 3, 'no run for a message nobody handles')

  await client.subscribe('room')
  const other = await connect()
  await other.subscribe('room')
  seen.length = 0
  await app.broadcastChannel('room', { n: 1 })
  await client.next((frame) => frame.type === 'message')
  t.match(of(seen, 'publication-start', nodeId), [{ kind: 'channels', channels: 1 }])
  const published = of(seen, 'publication-end', nodeId)
  t.match(published, [{ kind: 'channels', channels: 1, failed: false }])
  t.type(published[0].durationMs, 'number')
  t.match(of(seen, 'delivery', nodeId), [{ kind: 'channels', count: 2, remote: false }], 'local delivery: both members, once')
  seen.length = 0
  await app.broadcast({ n: 2 })
  t.match(of(seen, 'delivery', nodeId), [{ kind: 'all', count: 2, remote: false }])
  t.match(of(seen, 'publication-end', nodeId), [{ kind: 'all', channels: 0 }])

  client.ws.close(4000, 'bye')
  await until(() => of(seen, 'connection-close', nodeId).length === 1)
  t.match(of(seen, 'connection-close', nodeId)[0], { sessionId: client.sessionId, code: 4000, reason: 'bye' })
  other.close()
})

t.test('refused upgrades name their reason: origin, cap, an app hook', async (t) => {
  const seen = record(t)
  const { app, connect, open } = await startInMemory({ maxConnections: 1 }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers['x-deny'] !== undefined) await reply.code(401).send({ message: 'who are you' })
    })
  })
  t.teardown(() => app.close())
  await t.rejects(open({ origin: 'https://evil.example.net' }), { statusCode: 403 } as object as Error)
  await t.rejects(open({ headers: { 'x-deny': '1' } }), { statusCode: 401 } as object as Error)
  const first = await connect()
  await t.rejects(open(), { statusCode: 503 } as object as Error)
  t.same(of(seen, 'connection-refused').map(({ reason, statusCode }) => [reason, statusCode]), [['origin', 403], ['hook', 401], ['cap', 503]],
    'these three, and nothing for the upgrade that was accepted')
  t.equal(of(seen, 'connection-open').length, 1)
  first.close()
})

t.test('rate limited, with closed: true when the socket is closed for it; recovery results', async (t) => {
  const seen = record(t)
  const { app, connect } = await startInMemory({ rateLimit: { max: 1, interval: 60_000 }, history: true }, (app) => {
    app.channels.on('message', { event: 'x' }, () => {})
  })
  t.teardown(() => app.close())
  const client = await connect()
  for (let i = 0; i < 3; i++) client.send({ type: 'message', event: 'x' })
  await client.next((frame) => frame.code === 'RATE_LIMITED')
  t.match(of(seen, 'rate-limited'), [{ sessionId: client.sessionId, closed: false }], 'once per window, not per frame')

  const joiner = await connect()
  const joined = await joiner.subscribe('h')
  await app.broadcastChannel('h', 'one')
  const again = await connect()
  await again.request({ type: 'subscribe', channel: 'h', id: 7, since: { epoch: joined.epoch, offset: 0 } })
  await again.request({ type: 'subscribe', channel: 'h2', id: 8, since: { epoch: 'not-the-epoch', offset: 0 } })
  t.match(of(seen, 'recovery'), [
    { sessionId: again.sessionId, channel: 'h', recovered: true }, { sessionId: again.sessionId, channel: 'h2', recovered: false }
  ])
  for (const c of [client, joiner, again]) c.close()
})

t.test('a history delivery counts the same in the event and in stats(): every member but the publishing socket', async (t) => {
  const seen = record(t)
  const { app, connect } = await startInMemory({ history: true }, (app) => {
    app.channels.on('message', { event: 'say' }, (socket, data, meta) => { socket.broadcastChannel(data, { event: 'said', channel: meta.channel }) })
  })
  t.teardown(() => app.close())
  const nodeId = app.channels.stats().node
  const [speaker, one, two] = await Promise.all([connect(), connect(), connect()])
  for (const client of [speaker, one, two]) await client.subscribe('h')
  seen.length = 0
  const before = app.channels.stats().deliveries
  speaker.send({ type: 'message', event: 'say', channel: 'h', data: 'hi' })
  await one.next((frame) => frame.type === 'message')
  await two.next((frame) => frame.type === 'message')
  t.match(of(seen, 'delivery', nodeId), [{ kind: 'history', count: 2 }], 'the two others, not the speaker')
  t.equal(app.channels.stats().deliveries - before, 2, 'and stats() counts the same')
  for (const client of [speaker, one, two]) client.close()
})

t.test('broker down and up are published where the outage log is written, with the node id', async (t) => {
  const seen = record(t)
  const app = Fastify({ logger: false })
  const health = new Health(app.log, 'node-a')
  const error = new Error('connection lost')
  const one = { address: '127.0.0.1:7001', ranges: [[0, 5460]] as Array<[number, number]> }
  const two = { address: '127.0.0.1:7002', ranges: [[5461, 10922]] as Array<[number, number]> }
  health.lost(one, error)
  health.lost(one, new Error('still lost'))
  health.lost(two, error)
  health.drop()
  health.back(['127.0.0.1:7001'], { channels: 1, sessions: 2 })
  health.back(['127.0.0.1:7001'], { channels: 1, sessions: 2 })
  health.back('all', { channels: 1, sessions: 2 })
  t.match(of(seen, 'broker-down'), [
    { nodeId: 'node-a', engine: 'redis', shard: '127.0.0.1:7001 (slots 0-5460)', outages: 1, error },
    { shard: '127.0.0.1:7002 (slots 5461-10922)', outages: 2 }
  ], 'once per shard outage')
  t.match(of(seen, 'broker-up'), [
    { nodeId: 'node-a', engine: 'redis', shard: '127.0.0.1:7001 (slots 0-5460)', outages: 1, dropped: 1 },
    { shard: '127.0.0.1:7002 (slots 5461-10922)', outages: 0 }
  ], 'the broker is up again when no shard is down')
  t.type(of(seen, 'broker-up')[0].outageMs, 'number')
})

t.test('the NATS engine publishes broker down and up too: one shard, named nats', async (t) => {
  const seen = record(t)
  const app = Fastify({ logger: false })
  const health = new NatsHealth(app.log, 'node-n')
  const error = new Error('nats connection lost')
  t.ok(health.lost(error), 'an outage begins')
  t.notOk(health.lost(new Error('still lost')), 'once')
  health.drop()
  health.back({ channels: 1, sessions: 2 })
  health.back({ channels: 1, sessions: 2 })
  t.match(of(seen, 'broker-down'), [{ nodeId: 'node-n', engine: 'nats', shard: 'nats', outages: 1, error }])
  t.match(of(seen, 'broker-up'), [{ nodeId: 'node-n', engine: 'nats', shard: 'nats', outages: 0, dropped: 1 }])
  t.equal(of(seen, 'broker-up').length, 1, 'once per outage')
})

t.test('a slow consumer: its event with the bytes it left unread, then its close with 1013', async (t) => {
  const seen = record(t)
  const { app, url } = await startApp({ heartbeat: false, maxBufferedBytes: 16 * 1024 })
  t.teardown(() => app.close())
  const stalled = await TestClient.connect(url)
  await stalled.subscribe('room')
  stalled.ws.pause()
  const big = 'x'.repeat(256 * 1024)
  for (let i = 0; i < 64 && of(seen, 'slow-consumer').length === 0; i++) await app.broadcastChannel('room', { big })
  await until(() => of(seen, 'connection-close').length === 1, 3000, 'the stalled peer is cut off')
  const [slow] = of(seen, 'slow-consumer')
  t.equal(slow.sessionId, stalled.sessionId)
  t.ok((slow.bufferedAmount as number) > 16 * 1024, `past maxBufferedBytes (${String(slow.bufferedAmount)} bytes)`)
  t.match(of(seen, 'connection-close')[0], { sessionId: stalled.sessionId, code: 1013, reason: 'slow consumer' })
  stalled.ws.terminate()
})

t.test('an upgrade that reaches the gates once fastify.close() began is refused as closing; one from a refused origin, as origin', async (t) => {
  const seen = record(t)
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  let holding = 0
  const { app, url } = await startApp({ heartbeat: false }, (app) => {
    app.addHook('onRequest', async (request) => {
      if (request.headers['x-hold'] === undefined) return
      holding++
      await held
    })
  })
  const open = await TestClient.connect(url)
  const outcome = (err: { statusCode?: number }): number | undefined => err.statusCode
  const attempt = TestClient.open(url, { headers: { 'x-hold': '1' } }).then(() => 'open', outcome)
  // one from a refused origin: the origin gate says so, closing or not
  const foreign = TestClient.open(url, { headers: { 'x-hold': '1' }, origin: 'https://evil.example.net' }).then(() => 'open', outcome)
  await until(() => holding === 2)
  const closed = app.close()
  await open.closed // the drain began: the node is closing
  release()
  t.equal(await attempt, 503)
  t.equal(await foreign, 403)
  await closed
  t.same(of(seen, 'connection-refused').map(({ reason, statusCode }) => [reason, statusCode]).sort(), [['closing', 503], ['origin', 403]])
})

t.test('nobody listening: a run or a publication is not even built', async (t) => {
  t.equal(handlerRunStart('node-x', 'session', 'say', undefined), undefined)
  t.equal(publicationStart('node-x', 'channels', 1), undefined)
})

t.test('a subscriber of the end only, or of the start only, still gets each run and publication', async (t) => {
  const { app, connect } = await startInMemory({}, (app) => { app.channels.on('message', { event: 'say' }, () => 'ok') })
  t.teardown(() => app.close())
  const client = await connect()
  await client.subscribe('room')
  for (const [start, end] of [[events.handlerStart, events.handlerEnd], [events.publicationStart, events.publicationEnd]] as const) {
    for (const channel of [start, end]) {
      const seen: unknown[] = []
      const listener = (message: unknown): void => { seen.push(message) }
      channel.subscribe(listener)
      if (start === events.handlerStart) {
        await client.request({ type: 'message', event: 'say', id: 1 })
      } else {
        await app.broadcastChannel('room', 1)
        await client.next((frame) => frame.type === 'message')
      }
      channel.unsubscribe(listener)
      t.equal(seen.length, 1, `${String(channel.name)} alone`)
    }
  }
  client.close()
})

t.test('a publication\'s duration is the time between its start and its end', async (t) => {
  const ended: Array<{ durationMs: number }> = []
  const listener = (message: unknown): void => { ended.push(message as { durationMs: number }) }
  events.publicationEnd.subscribe(listener)
  t.teardown(() => { events.publicationEnd.unsubscribe(listener) })
  const { app } = await startInMemory()
  t.teardown(() => app.close())
  const before = performance.now()
  await app.broadcast('x')
  const elapsed = performance.now() - before
  t.equal(ended.length, 1)
  t.ok(ended[0].durationMs >= 0 && ended[0].durationMs <= elapsed, `within the call (${ended[0].durationMs} of ${elapsed} ms)`)
})
