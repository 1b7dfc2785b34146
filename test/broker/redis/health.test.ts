/**
 * The outage log: one warn when an outage of a shard begins, one info when it ends (with how long it
 * lasted and what was dropped), whatever the causes in between; drops without an outage are
 * summed up per tick.
 */
import t from 'tap'
import Fastify from 'fastify'
import { Health } from '../../../plugin/broker/redis/health.js'

interface Line { level: number, msg: string, shard?: string, dropped?: number, outageMs?: number, channels?: number }

function logged (): { lines: Line[], health: Health } {
  const lines: Line[] = []
  const app = Fastify({ logger: { level: 'debug', stream: { write (line: string) { lines.push(JSON.parse(line) as Line) } } } })
  return { lines, health: new Health(app.log) }
}

const redis = { address: '127.0.0.1:6379', ranges: [] }
const shardA = { address: '127.0.0.1:7000', ranges: [[0, 5460]] as Array<[number, number]> }
const shardB = { address: '127.0.0.1:7001', ranges: [[5461, 10922], [16000, 16000]] as Array<[number, number]> }

t.test('an outage begins once and ends once, whatever caused it', async (t) => {
  const { lines, health } = logged()
  t.ok(health.up)
  health.back('all', { channels: 0, sessions: 0 })
  t.same(lines, [], 'no "back" without an outage')
  health.lost(redis, new Error('timeout'))
  health.lost(redis, new Error('connection closed'))
  health.drop()
  health.drop()
  health.reportDrops()
  t.notOk(health.up)
  t.ok(health.needsRestore)
  health.back('all', { channels: 3, sessions: 2 })
  health.back('all', { channels: 3, sessions: 2 })
  t.same(lines.map((line) => [line.level, line.msg, line.shard]), [
    [40, 'channels: redis unreachable; delivering to local sockets only until it is back', '127.0.0.1:6379'],
    [20, 'channels: redis still unreachable', '127.0.0.1:6379'],
    [30, 'channels: redis is back; channels resubscribed and sessions registered again', '127.0.0.1:6379']
  ])
  t.match(lines[2], { dropped: 2, channels: 3, sessions: 2 })
  t.type(lines[2].outageMs, 'number')
  t.notOk(health.needsRestore)
  health.lost(redis, new Error('again'))
  t.equal(lines.filter((line) => line.level === 40).length, 2, 'the next outage is logged at warn again')
})

t.test('each shard of a cluster has its own outage, named by address and slots', async (t) => {
  const { lines, health } = logged()
  health.lost(shardA, new Error('no answer'))
  health.lost(shardB, new Error('no answer'))
  health.lost(shardA, new Error('still none'))
  t.same(health.down.map((outage) => outage.name), ['127.0.0.1:7000 (slots 0-5460)', '127.0.0.1:7001 (slots 5461-10922, 16000)'])
  health.back([shardB.address], { channels: 1, sessions: 0 })
  t.notOk(health.up, 'shard A is still down')
  health.back([shardB.address], { channels: 1, sessions: 0 })
  health.back([shardA.address], { channels: 1, sessions: 0 })
  t.ok(health.up)
  t.same(lines.filter((line) => line.level !== 20).map((line) => [line.level, line.shard]), [
    [40, '127.0.0.1:7000 (slots 0-5460)'],
    [40, '127.0.0.1:7001 (slots 5461-10922, 16000)'],
    [30, '127.0.0.1:7001 (slots 5461-10922, 16000)'],
    [30, '127.0.0.1:7000 (slots 0-5460)']
  ])
})

t.test('a shaken connection asks for a restore without an outage line', async (t) => {
  const { lines, health } = logged()
  health.shaken(new Error('slow'))
  t.ok(health.up)
  t.ok(health.needsRestore)
  t.same(lines.map((line) => line.level), [20])
  health.back([], { channels: 0, sessions: 0 })
  t.notOk(health.needsRestore)
  t.same(lines.map((line) => line.level), [20], 'and no "back" line')
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
