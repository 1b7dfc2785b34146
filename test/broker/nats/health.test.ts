/**
 * The NATS engine's outage log (plugin/broker/nats/health.ts), no server needed: one warn line
 * when an outage begins and one info line when it ends, with its length and what was dropped
 * meanwhile; drops while up and late arrivals reported once per tick, then counted afresh.
 */
import t from 'tap'
import Fastify from 'fastify'
import { NatsHealth } from '../../../plugin/broker/nats/health.js'

interface Line { level: number, msg: string, err?: { message: string }, dropped?: number, late?: number, outageMs?: number, channels?: number, sessions?: number }

function logged (): { lines: Line[], health: NatsHealth } {
  const lines: Line[] = []
  const app = Fastify({ logger: { level: 'debug', stream: { write (line: string) { lines.push(JSON.parse(line) as Line) } } } })
  return { lines, health: new NatsHealth(app.log, 'node-1') }
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('an outage: begins once, ends once, with its length and what was dropped during it', async (t) => {
  const { lines, health } = logged()
  t.equal(health.up, true)
  health.back({ channels: 1, sessions: 1 })
  t.same(lines, [], 'back while up: nothing')

  t.equal(health.lost(new Error('first')), true, 'the first loss begins the outage')
  t.equal(health.up, false)
  t.equal(health.lost(new Error('again')), false, 'a second one does not')
  health.drop()
  health.drop()
  health.report()
  t.match(lines, [
    { level: 40, msg: 'channels: nats unreachable; delivering to local sockets only until it is back', err: { message: 'first' } },
    { level: 20, msg: 'channels: nats still unreachable', err: { message: 'again' } }
  ])
  t.equal(lines.length, 2, 'drops during the outage wait for its end')

  await sleep(30)
  const before = Date.now()
  health.back({ channels: 3, sessions: 2 })
  t.equal(health.up, true)
  const end = lines.at(-1)!
  t.match(end, { level: 30, msg: 'channels: nats is back; channels resubscribed and sessions registered again', channels: 3, sessions: 2, dropped: 2 })
  t.ok(end.outageMs! >= 30 && end.outageMs! <= Date.now() - before + 1000, `the outage's length: ${end.outageMs} ms`)

  health.back({ channels: 3, sessions: 2 })
  t.equal(lines.length, 3, 'a second back: nothing')
  health.lost(new Error('later'))
  t.equal(lines.at(-1)!.level, 40, 'a later loss begins a new outage')
  health.back({ channels: 0, sessions: 0 })
  t.match(lines.at(-1), { level: 30, dropped: 0 }, 'the drops were counted afresh')
})

t.test('drops while up and late arrivals: one line each per report, then counted afresh', async (t) => {
  const { lines, health } = logged()
  health.report()
  t.same(lines, [], 'nothing to report')
  health.drop()
  health.drop()
  health.drop()
  health.dropLate()
  health.report()
  t.match(lines, [
    { level: 40, msg: 'channels: publications to nats dropped (nats too slow to take them); delivered locally only', dropped: 3 },
    { level: 40, msg: 'channels: messages from nats dropped: they arrived after their deadline', late: 1 }
  ])
  health.report()
  t.equal(lines.length, 2, 'counted afresh')
  health.lost(new Error('down'))
  health.dropLate()
  health.dropLate()
  health.report()
  t.match(lines.at(-1), { level: 40, late: 2 }, 'late arrivals are reported during an outage too')
})
