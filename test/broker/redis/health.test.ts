/**
 * The outage log: one warn when an outage begins, one info when it ends (with how long it
 * lasted and what was dropped), whatever the causes in between; drops without an outage are
 * summed up per tick.
 */
import t from 'tap'
import Fastify from 'fastify'
import { Health } from '../../../plugin/broker/redis/health.js'

interface Line { level: number, msg: string, dropped?: number, outageMs?: number, channels?: number }

function logged (): { lines: Line[], health: Health } {
  const lines: Line[] = []
  const app = Fastify({ logger: { level: 'debug', stream: { write (line: string) { lines.push(JSON.parse(line) as Line) } } } })
  return { lines, health: new Health(app.log) }
}

t.test('an outage begins once and ends once, whatever caused it', async (t) => {
  const { lines, health } = logged()
  t.ok(health.up)
  health.back({ channels: 0, sessions: 0 })
  t.same(lines, [], 'no "back" without an outage')
  health.lost(new Error('timeout'))
  health.lost(new Error('connection closed'))
  health.drop()
  health.drop()
  health.reportDrops()
  t.notOk(health.up)
  health.back({ channels: 3, sessions: 2 })
  health.back({ channels: 3, sessions: 2 })
  t.same(lines.map((line) => [line.level, line.msg]), [
    [40, 'channels: redis unreachable; delivering to local sockets only until it is back'],
    [20, 'channels: redis still unreachable'],
    [30, 'channels: redis is back; channels resubscribed and sessions registered again']
  ])
  t.match(lines[2], { dropped: 2, channels: 3, sessions: 2 })
  t.type(lines[2].outageMs, 'number')
  health.lost(new Error('again'))
  t.equal(lines.filter((line) => line.level === 40).length, 2, 'the next outage is logged at warn again')
})

t.test('drops while Redis is up: one line per tick with the count', async (t) => {
  const { lines, health } = logged()
  health.reportDrops()
  t.same(lines, [])
  for (let i = 0; i < 5; i++) health.drop()
  health.reportDrops()
  health.reportDrops()
  t.same(lines.map((line) => [line.level, line.dropped]), [[40, 5]])
})
