/**
 * The stats keeper on its own (plugin/node/stats.ts), over a source the test makes: the busiest
 * channels of a window (sorted, capped, their rate and subscribers), the rates between two
 * samples, the events' optional fields, the memory figure, the order of the other nodes, and
 * the watch / lease / close rules that decide when the timer runs and what it sends.
 * test/admin/stats.test.ts covers the same through real apps on a shared broker.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { StatsKeeper, busiestCount, maxCountedChannels, statsIntervalMs } from '../../plugin/node/stats.js'
import { decodeNotice, encodeNotice, type Notice } from '../../plugin/node/notices.js'
import { fixedStatsSource } from '../helpers/stats-source.js'

function keeper (nodeId = 'self'): { keeper: StatsKeeper, sent: Notice[] } {
  const sent: Notice[] = []
  const source = fixedStatsSource(nodeId, {
    // c7 has 70 subscribers: each channel's own figure, so a mixed-up row shows
    subscribers: (channel) => Number(channel.slice(1)) * 10,
    publish: async (frame) => { sent.push(decodeNotice(frame) as Notice) }
  })
  return { keeper: new StatsKeeper(source), sent }
}

/** A stats notice from another node, asking (`want`) or not. */
function statsFrom (node: string, want: boolean): string {
  return encodeNotice({ type: 'stats', want, stats: { ...keeper(node).keeper.snapshot(), node } })
}

const wantOf = (notice: Notice | undefined): boolean | undefined => notice?.type === 'stats' ? notice.want : undefined

t.test('the busiest channels of a window: by count, at most ten, each with its rate and subscribers', async (t) => {
  const { keeper: k } = keeper()
  t.teardown(() => k.close())
  k.published(['c99']) // not watched yet: counted in the total only
  k.watch(Date.now() + 60_000)
  const start = Date.now()
  for (let i = 0; i < 12; i++) {
    for (let n = 0; n <= i; n++) k.published([`c${i}`])
  }
  k.published(undefined)
  k.published(undefined)
  await sleep(statsIntervalMs + 150)
  const seconds = (Date.now() - start) / 1000
  const { busiest, publications } = k.snapshot()
  t.equal(publications, 1 + 78 + 2, 'every publication counts in the total, with channels or without, watched or not')
  t.equal(busiest.length, busiestCount, 'at most ten')
  t.same(busiest.map((b) => b.channel), ['c11', 'c10', 'c9', 'c8', 'c7', 'c6', 'c5', 'c4', 'c3', 'c2'], 'the busiest first; c99 came before the watch')
  t.same(busiest.map((b) => b.subscribers), [110, 100, 90, 80, 70, 60, 50, 40, 30, 20], 'each with its own subscribers')
  const top = busiest[0].perSecond
  t.ok(top <= 12 && top >= Math.floor(120 / seconds) / 10, `c11: 12 in the window of about 1 s is ${top}/s`)
  t.equal(Math.round(top * 10), top * 10, 'rounded to a tenth')
  await k.close()
  t.same(k.snapshot().busiest, [], 'a keeper that stopped lists none')
})

t.test(`a window counts at most ${maxCountedChannels} distinct channels: later ones wait for the next`, async (t) => {
  const { keeper: k } = keeper()
  t.teardown(() => k.close())
  k.watch(Date.now() + 60_000)
  for (let i = 0; i < maxCountedChannels; i++) k.published([`f${i}`])
  for (let n = 0; n < 5; n++) k.published(['c5'])
  await sleep(statsIntervalMs + 150)
  t.notOk(k.snapshot().busiest.some((b) => b.channel === 'c5'), 'the channel past the cap is not counted, however busy')
})

t.test('the rates are taken between two samples at least a second apart', async (t) => {
  const { keeper: k } = keeper()
  await sleep(statsIntervalMs + 50)
  k.publications = 10
  k.deliveries = 100
  const firstBefore = Date.now()
  k.snapshot() // the first sample at least a second after the start: the base moves up to it
  const firstAfter = Date.now()
  k.publications = 30
  k.deliveries = 160
  await sleep(statsIntervalMs + 200)
  const secondBefore = Date.now()
  const stats = k.snapshot()
  const secondAfter = Date.now()
  const shortest = (secondBefore - firstAfter) / 1000
  const longest = (secondAfter - firstBefore) / 1000
  t.ok(stats.publicationsPerSecond >= Math.floor(200 / longest) / 10 && stats.publicationsPerSecond <= Math.ceil(200 / shortest) / 10,
    `20 publications over ${shortest.toFixed(2)}–${longest.toFixed(2)} s: ${stats.publicationsPerSecond}/s`)
  t.ok(stats.deliveriesPerSecond >= Math.floor(600 / longest) / 10 && stats.deliveriesPerSecond <= Math.ceil(600 / shortest) / 10,
    `60 deliveries: ${stats.deliveriesPerSecond}/s`)
  t.ok(stats.uptime >= 2 && stats.uptime <= 10, `uptime in seconds: ${stats.uptime}`)
  t.ok(stats.memory > 0, 'the process\'s memory is read')
})

t.test('an event keeps only the fields it was given', async (t) => {
  const { keeper: k } = keeper()
  k.note('error', 'boom')
  k.note('slow-consumer', 'slow', 's1')
  k.note('publish-failed', 'down', undefined, 'room')
  t.strictSame(k.snapshot().events.map((event) => Object.keys(event).sort()), [
    ['at', 'kind', 'message'],
    ['at', 'kind', 'message', 'sessionId'],
    ['at', 'channel', 'kind', 'message']
  ], 'no key for a field not given')
  t.same(k.snapshot().events.map(({ at, ...rest }) => rest), [
    { kind: 'error', message: 'boom' },
    { kind: 'slow-consumer', message: 'slow', sessionId: 's1' },
    { kind: 'publish-failed', message: 'down', channel: 'room' }
  ])
})

t.test('nodes() lists this node first, then the others by id', async (t) => {
  const { keeper: k } = keeper('m')
  t.teardown(() => k.close())
  k.receive(statsFrom('z', false))
  k.receive(statsFrom('a', false))
  t.same(k.listed().map((s) => s.node), ['m', 'a', 'z'])
})

t.test('watching: one question per watch, asked at once even when another node\'s lease runs the timer', async (t) => {
  const { keeper: k, sent } = keeper()
  t.teardown(() => k.close())
  k.receive(statsFrom('peer', true))
  t.equal(sent.length, 1, 'asked by another node: answers at once')
  t.equal(wantOf(sent[0]), false, 'without asking itself')
  k.receive(statsFrom('peer', true))
  t.equal(sent.length, 1, 'asked again while running: no second timer, no extra answer')
  k.watch(Date.now() + 60_000)
  t.equal(sent.length, 2)
  t.equal(wantOf(sent[1]), true, 'this node now watches: it asks at once, though the timer already ran')
  k.watch(Date.now() + 60_000)
  t.equal(sent.length, 2, 'watching again while watching asks nothing more')
})

t.test('another node\'s lease keeps the timer running past a tick; close says goodbye once, and only if it was watched', async (t) => {
  const { keeper: k, sent } = keeper()
  k.receive(statsFrom('peer', true))
  await sleep(statsIntervalMs + 200)
  t.ok(k.watched, 'still publishing a tick later: the lease is 5 s')
  t.ok(sent.length >= 2, 'and it published on the tick')
  await k.close()
  await k.close()
  t.equal(sent.filter((n) => n.type === 'leave').length, 1, 'one goodbye for two closes')
  k.watch(Date.now() + 60_000)
  t.notOk(k.watched, 'a closed keeper does not watch again')

  const quiet = keeper()
  await quiet.keeper.close()
  t.same(quiet.sent, [], 'a keeper nobody watched leaves without a word')
})

t.test('once nobody watches and no lease runs, the next tick stops the timer', async (t) => {
  const { keeper: k, sent } = keeper()
  t.teardown(() => k.close())
  k.watch(Date.now() + 50)
  t.ok(k.watched)
  await sleep(statsIntervalMs + 200)
  t.notOk(k.watched, 'stopped at the first tick after the interest ended')
  const published = sent.length
  await sleep(statsIntervalMs + 100)
  t.equal(sent.length, published, 'and publishes nothing more')
})
