/**
 * Rate limit: a fixed window per socket; frames past `max` are dropped unparsed and unhandled;
 * one RATE_LIMITED (no id) per window in which the socket was limited; limited in 3 consecutive
 * windows → closed with 1008.
 */
import t from 'tap'
import { abusiveWindows, RateWindow, type RateVerdict } from '../../plugin/connection/rate-limit.js'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient, type Frame } from '../helpers/server.js'
import { RawClient } from './raw-client.js'

/** Verdicts for frames sent at the given times (ms since the socket started). */
function verdicts (limit: { max: number, interval: number }, times: number[]): RateVerdict[] {
  const window = new RateWindow(limit, 1000)
  return times.map((time) => window.take(1000 + time))
}

t.test('RateWindow: a fixed window aligned to the socket start', async (t) => {
  const limit = { max: 2, interval: 100 }
  t.same(verdicts(limit, [0, 1, 2, 3, 99]), ['allow', 'allow', 'limit', 'drop', 'drop'], 'one limit verdict per window')
  t.same(verdicts(limit, [0, 1, 99, 100, 101, 199]), ['allow', 'allow', 'limit', 'allow', 'allow', 'limit'],
    'the count starts over at each window boundary')
  t.same(verdicts(limit, [90, 91, 110, 111]), ['allow', 'allow', 'allow', 'allow'],
    'a burst across a boundary counts in two windows')
})

t.test('RateWindow: windows count from the socket\'s own start, whenever that was', async (t) => {
  const window = new RateWindow({ max: 1, interval: 100 }, 1030)
  t.same([1030, 1129, 1130, 1229].map((now) => window.take(now)), ['allow', 'limit', 'allow', 'limit'],
    'a socket started at 1030 has its boundary at 1130, not at 1100')
})

t.test('RateWindow: a socket first limited in its third window (window 2) is told so', async (t) => {
  t.same(verdicts({ max: 1, interval: 100 }, [200, 201, 202]), ['allow', 'limit', 'drop'])
})

t.test('RateWindow: limited in 3 consecutive windows is abuse', async (t) => {
  t.equal(abusiveWindows, 3)
  const limit = { max: 1, interval: 100 }
  t.same(verdicts(limit, [0, 1, 100, 101, 200, 201]),
    ['allow', 'limit', 'allow', 'limit', 'allow', 'abuse'])
  t.same(verdicts(limit, [0, 1, 100, 101, 250, 300, 301, 400, 401]),
    ['allow', 'limit', 'allow', 'limit', 'allow', 'allow', 'limit', 'allow', 'limit'],
    'a window without limiting (here window 2) breaks the streak')
  t.same(verdicts(limit, [0, 1, 100, 101, 300, 301, 400, 401, 500, 501]),
    ['allow', 'limit', 'allow', 'limit', 'allow', 'limit', 'allow', 'limit', 'allow', 'abuse'],
    'a window with no frame at all breaks the streak too')
})

/** Waits until the server has taken every frame sent so far: a ping is answered in order, and is no frame. */
async function flush (client: TestClient): Promise<void> {
  await within(new Promise<void>((resolve) => {
    client.ws.once('pong', () => resolve())
    client.ws.ping()
  }), 3000, 'the server answers a ping behind the frames sent before it')
}

t.test('frames past max are dropped unparsed and unhandled, with one RATE_LIMITED', async (t) => {
  let handled = 0
  const { app, url } = await startApp({ rateLimit: { max: 5, interval: 60_000 } }, (app) => {
    app.channels.on('message', () => { handled++; return 'ok' })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  for (let id = 1; id <= 5; id++) client.send({ type: 'message', data: id, id })
  for (let id = 6; id <= 10; id++) client.send({ type: 'message', data: id, id })
  client.send('not json at all')
  client.send({ type: 'nonsense', id: 11 })
  await flush(client)
  t.equal(handled, 5, 'only the first 5 frames were handled')
  const acks = client.frames.filter((frame) => frame.type === 'ack')
  t.same(acks.map((frame) => frame.id), [1, 2, 3, 4, 5])
  const errors = client.frames.filter((frame) => frame.type === 'error')
  t.equal(errors.length, 1, 'one error frame for the whole window, no BAD_FRAME for dropped garbage')
  t.match(errors[0], { type: 'error', code: 'RATE_LIMITED', message: 'too many frames: slow down' })
  t.notOk('id' in errors[0], 'RATE_LIMITED carries no id')
  t.equal(client.ws.readyState, client.ws.OPEN, 'limited once: still open')
  client.close()
  await within(client.closed, 3000, 'the client closes when it asks to')
})

t.test('one RATE_LIMITED per limited window, then 1008 after 3 in a row', async (t) => {
  let handled = 0
  const max = 3
  const interval = 100
  const { app, url } = await startApp({ rateLimit: { max, interval } }, (app) => {
    app.channels.on('message', () => { handled++ })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  const started = Date.now()
  let sent = 0
  let longestTurn = 0
  // Floods, a burst each turn of the event loop, until the server closes (bounded in time and count).
  while (client.ws.readyState === client.ws.OPEN && Date.now() - started < 10_000 && sent < 100_000) {
    for (let i = 0; i < 2 * max; i++) client.send({ type: 'message', data: sent++ })
    const turn = Date.now()
    await new Promise((resolve) => setImmediate(resolve))
    longestTurn = Math.max(longestTurn, Date.now() - turn)
  }
  const elapsed = Date.now() - started
  const { code, reason } = await within(client.closed, 3000, 'a flooding client is closed')
  t.equal(code, 1008, 'closed with 1008')
  t.match(reason, /rate/)
  const limited = client.frames.filter((frame: Frame) => frame.code === 'RATE_LIMITED')
  if (longestTurn < interval / 2) {
    t.equal(limited.length, 3, 'one RATE_LIMITED per window, 3 windows')
  } else {
    // A loaded machine may leave a whole window without a frame: that window breaks the streak.
    t.ok(limited.length >= 3, `one RATE_LIMITED per limited window (${limited.length}; a turn took ${longestTurn} ms)`)
  }
  t.equal(client.frames.length, limited.length, 'nothing else was answered')
  const windows = Math.ceil(elapsed / interval) + 1
  t.ok(handled >= max && handled <= max * windows, `at most max frames handled per window (${handled} of ${sent})`)
  t.ok(elapsed >= interval, 'not within one window')
})

t.test('a peer that keeps sending after the 1008 close frame gets nothing handled', async (t) => {
  let handled = 0
  const interval = 50
  const { app, port } = await startApp({ rateLimit: { max: 1, interval } }, (app) => {
    app.channels.on('message', () => { handled++ })
  })
  t.teardown(() => app.close())
  const raw = await RawClient.connect(port)
  await raw.waitFor(() => raw.json().length === 1, 3000, 'the peer gets its welcome')
  const burst = (data: number): void => {
    for (let i = 0; i < 5; i++) raw.sendJson({ type: 'message', data })
  }
  const started = Date.now()
  // Flood until the close frame arrives (bounded).
  while (raw.closeCode() === undefined && Date.now() - started < 10_000) {
    burst(1)
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(raw.closeCode(), 1008)
  // It never answers the close and goes on for several more windows.
  const handledAtClose = handled
  const after = Date.now()
  while (Date.now() - after < 4 * interval && !raw.socket.destroyed) {
    burst(2)
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(handled, handledAtClose, 'no frame handled after the close frame went out')
  raw.destroy()
})
