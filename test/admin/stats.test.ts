/**
 * `fastify.channels.stats()` and `nodes()` on the in-process broker (several Fastify instances
 * sharing one memoryBroker are several nodes): the fields, rates that move, other nodes listed
 * and aged out after 2 s, a closing node leaving at once, and no timer for an app that never
 * watches. The Redis suite (redis.test.ts) runs the same across processes' worth of nodes.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { memoryBroker, type NodeStats } from '../../plugin/index.js'
import { StatsKeeper, maxEvents, nodeMaxAgeMs } from '../../plugin/node/stats.js'
import { decodeNotice, encodeNotice, isNotice, noticeMark } from '../../plugin/node/notices.js'
import { startApp, TestClient, until } from '../helpers/server.js'
import { fixedStatsSource } from '../helpers/stats-source.js'

/** A keeper over a node of its own making: counts set by the test, notices handed to `sent`. */
function keeper (nodeId: string, sent: string[] = []): StatsKeeper {
  return new StatsKeeper(fixedStatsSource(nodeId, { publish: async (frame) => { sent.push(frame) } }))
}

function peerStats (node: string, connections = 5): NodeStats {
  const stats = keeper(node).snapshot()
  return { ...stats, connections, sockets: connections }
}

t.test('stats(): this node, with the fields it always had', async (t) => {
  const { app, url } = await startApp()
  t.teardown(() => app.close())
  const a = await TestClient.connect(url)
  const b = await TestClient.connect(url)
  t.teardown(() => { a.close(); b.close() })
  await a.subscribe('room-1')
  await a.subscribe('room-2')
  await b.subscribe('room-1')
  const stats = app.channels.stats()
  t.match(stats, { connections: 2, sockets: 2, subscriptions: 3, channels: 2, closing: false, pid: process.pid })
  t.type(stats.node, 'string')
  t.ok(stats.node.length > 0)
  await b.request({ type: 'unsubscribe', channel: 'room-1', id: 1 })
  t.equal(app.channels.stats().subscriptions, 2, 'an unsubscribe counts down')
  await b.request({ type: 'unsubscribe', channel: 'room-1', id: 2 })
  t.equal(app.channels.stats().subscriptions, 2, 'unsubscribing twice counts once')
})

t.test('stats(): publications and deliveries count, and their rates move', async (t) => {
  const { app, url } = await startApp()
  t.teardown(() => app.close())
  const a = await TestClient.connect(url)
  t.teardown(() => a.close())
  await a.subscribe('news')
  const before = app.channels.stats()
  for (let i = 0; i < 20; i++) await app.broadcastChannel('news', { i })
  await app.broadcast({ all: true })
  await app.send(a.sessionId, { direct: true })
  const after = app.channels.stats()
  t.equal(after.publications - before.publications, 21, 'each broadcastChannel and broadcast is one publication; a send is none')
  t.equal(after.deliveries - before.deliveries, 22, 'each frame handed to a socket is a delivery')
  await sleep(1100)
  const rated = app.channels.stats()
  t.ok(rated.publicationsPerSecond > 0, `publications per second: ${rated.publicationsPerSecond}`)
  t.ok(rated.deliveriesPerSecond > 0, `deliveries per second: ${rated.deliveriesPerSecond}`)
})

t.test('nodes(): every node sharing the broker, this one first; a closing node leaves at once', async (t) => {
  const broker = memoryBroker()
  const one = await startApp({ broker })
  const two = await startApp({ broker })
  const three = await startApp({ broker })
  t.teardown(() => Promise.all([one.app.close(), two.app.close(), three.app.close()]))
  const client = await TestClient.connect(two.url)
  t.teardown(() => client.close())

  const nodes = await one.app.channels.nodes()
  t.equal(nodes.length, 3, 'three nodes')
  t.equal(nodes[0].node, one.app.channels.stats().node, 'this node first')
  const byId = new Map(nodes.map((node) => [node.node, node]))
  t.equal(byId.get(two.app.channels.stats().node)?.connections, 1, 'the other node\'s connection is counted there')

  // the other nodes answer once a second while watched: a new connection shows within 2 s
  const late = await TestClient.connect(three.url)
  t.teardown(() => late.close())
  const threeId = three.app.channels.stats().node
  const started = Date.now()
  for (;;) {
    const listed = (await one.app.channels.nodes()).find((node) => node.node === threeId)
    if (listed?.connections === 1) break
    if (Date.now() - started > 2000) t.fail('the new connection did not show within 2 s')
    await sleep(50)
  }

  await three.app.close()
  const after = await one.app.channels.nodes()
  t.notOk(after.some((node) => node.node === threeId), 'a closed node is gone without waiting for its stats to age')
  t.equal(after.length, 2)
})

t.test('nodes(): a node that stops answering is dropped after 2 s', async (t) => {
  const sent: string[] = []
  const keep = keeper('self', sent)
  t.teardown(() => keep.close())
  keep.watch(Date.now() + 10_000)
  t.ok(keep.watched, 'watching starts the timer')
  t.equal(decodeNotice(sent[0])?.type, 'stats', 'and asks the others at once')
  t.match(decodeNotice(sent[0]), { type: 'stats', want: true })
  keep.receive(encodeNotice({ type: 'stats', want: false, stats: peerStats('peer') }))
  keep.receive(encodeNotice({ type: 'stats', want: false, stats: peerStats('self') }))
  t.same(keep.listed().map((node) => node.node), ['self', 'peer'], 'its own echo is not another node')
  await sleep(nodeMaxAgeMs - 700)
  t.same(keep.listed().map((node) => node.node), ['self', 'peer'], 'still fresh')
  await sleep(900)
  t.same(keep.listed().map((node) => node.node), ['self'], 'aged out past 2 s')
})

t.test('a node asked by another answers at once and keeps publishing without wanting', async (t) => {
  const sent: string[] = []
  const keep = keeper('quiet', sent)
  t.teardown(() => keep.close())
  t.notOk(keep.watched, 'nobody watches: no timer')
  keep.receive(encodeNotice({ type: 'stats', want: false, stats: peerStats('peer') }))
  t.notOk(keep.watched, 'stats without `want` start nothing')
  t.equal(sent.length, 0)
  keep.receive(encodeNotice({ type: 'stats', want: true, stats: peerStats('asker') }))
  t.ok(keep.watched, 'asked: the timer runs')
  t.match(decodeNotice(sent[0]), { type: 'stats', want: false, stats: { node: 'quiet', connections: 2, subscriptions: 3 } })
  await keep.close()
  t.match(decodeNotice(sent.at(-1) ?? ''), { type: 'leave', node: 'quiet' }, 'a watched node says goodbye on close')
  t.notOk(keep.watched)
})

t.test('notices: garbage and forged frames are not notices', async (t) => {
  t.equal(decodeNotice('{"type":"message","data":1}'), undefined)
  t.equal(decodeNotice(noticeMark + 'not json'), undefined)
  t.equal(decodeNotice(noticeMark + '{"type":"close","sessionId":1}'), undefined, 'a wrong shape')
  t.equal(decodeNotice(noticeMark + '{"type":"stats","want":true,"stats":{}}'), undefined, 'stats without fields')
  t.equal(decodeNotice(noticeMark + '{"type":"close","sessionId":"s","code":1005,"reason":""}'), undefined, 'a code ws cannot send')
  t.equal(decodeNotice(noticeMark + JSON.stringify({ type: 'close', sessionId: 's', code: 1008, reason: 'x'.repeat(124) })), undefined, 'a reason too long')
  t.equal(decodeNotice(noticeMark + '{"type":"close","sessionId":"s","code":4001,"reason":"bye"}')?.type, 'close')
  t.equal(decodeNotice(noticeMark + '{"type":"leave","node":"x","__proto__":{"polluted":1}}')?.type, 'leave')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.ok(isNotice('#channels-notice:2\n{"type":"new"}'), 'a frame of another version is for the nodes too')
  t.notOk(isNotice('{"type":"message","data":"#"}'), 'a socket frame is not')
  t.equal(decodeNotice('#channels-notice:2\n{"type":"leave","node":"x"}'), undefined, 'and it is not read as one of this version')
  t.equal(decodeNotice('#channels'), undefined, 'nor a prefix of the mark')
  const keep = keeper('self')
  keep.receive(noticeMark + '{')
  keep.receive('hello')
  t.notOk(keep.watched, 'bad notices are dropped, nothing starts')
})

t.test('notices: a stats notice is read only whole, its events and busiest channels included', async (t) => {
  const stats = {
    node: 'n1',
    at: 1,
    host: 'h',
    pid: 1,
    uptime: 1,
    memory: 1,
    closing: false,
    connections: 0,
    sockets: 0,
    subscriptions: 0,
    channels: 0,
    publications: 0,
    deliveries: 0,
    publicationsPerSecond: 0,
    deliveriesPerSecond: 0,
    busiest: [{ channel: 'room', perSecond: 2, subscribers: 3 }],
    events: [
      { at: 1, kind: 'error', message: 'boom', sessionId: 's' },
      { at: 2, kind: 'slow-consumer', message: 'slow', channel: 'room' },
      { at: 3, kind: 'publish-failed', message: 'down' }
    ]
  }
  const read = (value: unknown): string | undefined => decodeNotice(noticeMark + JSON.stringify(value))?.type
  t.equal(read({ type: 'stats', want: false, stats }), 'stats', 'every kind of event, and a busy channel')
  t.equal(read({ type: 'stats', want: false, stats: { ...stats, events: [{ at: 1, kind: 'other', message: 'x' }] } }), undefined, 'an event of an unknown kind')
  t.equal(read({ type: 'stats', want: false, stats: { ...stats, events: [{ at: 1, kind: 'error' }] } }), undefined, 'an event without its message')
  t.equal(read({ type: 'stats', want: false, stats: { ...stats, busiest: [{ channel: 'room', perSecond: 2 }] } }), undefined, 'a busy channel without its subscribers')
  t.equal(read({ type: 'stats', want: false, stats: { ...stats, busiest: [{ channel: 'room', perSecond: 2, subscribers: 1.5 }] } }), undefined, 'a fraction of a subscriber')
  // Not a notice, however it ends: the mark is checked, not skipped over.
  t.equal(decodeNotice('x'.repeat(noticeMark.length) + JSON.stringify({ type: 'leave', node: 'x' })), undefined, 'a frame without the mark')
})

t.test('an app\'s broadcast that looks like a notice reaches sockets as data', async (t) => {
  const broker = memoryBroker()
  const one = await startApp({ broker })
  const two = await startApp({ broker })
  t.teardown(() => Promise.all([one.app.close(), two.app.close()]))
  const client = await TestClient.connect(two.url)
  t.teardown(() => client.close())
  const forged = noticeMark + JSON.stringify({ type: 'close', sessionId: client.sessionId, code: 1008, reason: 'x' })
  await one.app.broadcast(forged)
  const frame = await client.next((frame) => frame.type === 'message')
  t.equal(frame.data, forged, 'delivered as the data it is; the socket stays open')
  t.equal(client.ws.readyState, client.ws.OPEN)
})

t.test('recent events: a ring of the last 50', async (t) => {
  const keep = keeper('self')
  for (let i = 0; i < maxEvents + 7; i++) keep.note('error', `failure ${i}`, `s${i}`, 'room')
  keep.note('slow-consumer', 'x'.repeat(500))
  const { events } = keep.snapshot()
  t.equal(events.length, maxEvents)
  t.equal(events[0].message, 'failure 8', 'the oldest kept')
  t.equal(events.at(-2)?.message, `failure ${maxEvents + 6}`)
  t.equal(events.at(-1)?.kind, 'slow-consumer', 'the newest last')
  t.equal(events.at(-1)?.message.length, 200, 'messages are cut')
})

t.test('a handler error is a recent event of its node', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('message', { event: 'boom' }, () => { throw new Error('kaboom') })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  client.send({ type: 'message', event: 'boom', data: null, id: 5 })
  await client.next((frame) => frame.type === 'error')
  await until(() => app.channels.stats().events.length === 1, 3000, 'the error is noted')
  t.match(app.channels.stats().events[0], { kind: 'error', message: 'Error: kaboom', sessionId: client.sessionId })
})

t.test('busiest channels: counted per window while watched', async (t) => {
  const { app, url } = await startApp()
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  await client.subscribe('hot')
  await app.channels.nodes()
  for (let i = 0; i < 30; i++) await app.broadcastChannel('hot', i)
  await app.broadcastChannel('cold', 1)
  await until(() => app.channels.stats().busiest.length > 0, 3000, 'the window rolls')
  const [top, next] = app.channels.stats().busiest
  t.equal(top.channel, 'hot')
  t.equal(top.subscribers, 1)
  t.ok(top.perSecond > 0)
  t.equal(next.channel, 'cold')
})

/** Counts the intervals started while `fn` runs. */
async function intervalsStartedBy (fn: () => Promise<void>): Promise<Array<{ unref: boolean }>> {
  const original = globalThis.setInterval
  const started: Array<{ unref: boolean }> = []
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    const timer = original(...args)
    const entry = { unref: false }
    started.push(entry)
    const unref = timer.unref.bind(timer)
    timer.unref = () => { entry.unref = true; return unref() }
    return timer
  }) as typeof setInterval
  try {
    await fn()
  } finally {
    globalThis.setInterval = original
  }
  return started
}

t.test('no timer until someone watches; then one, unref\'d', async (t) => {
  let app: Awaited<ReturnType<typeof startApp>>['app'] | undefined
  const quiet = await intervalsStartedBy(async () => {
    const started = await startApp({ heartbeat: false })
    app = started.app
    const client = await TestClient.connect(started.url)
    await client.subscribe('room')
    await app.broadcastChannel('room', 1)
    app.channels.stats()
    client.close()
  })
  t.teardown(() => app?.close())
  t.same(quiet, [], 'stats() and traffic start no interval')
  const watching = await intervalsStartedBy(async () => { await app?.channels.nodes() })
  t.same(watching, [{ unref: true }], 'nodes() starts one, unref\'d')
})
