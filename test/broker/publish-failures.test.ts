import t from 'tap'
import Fastify from 'fastify'
import { PublishFailureLog, historyPublishWording, publishFailureSummaryMs } from '../../plugin/broker/publish-failures.js'

interface LogLine { level: number, msg: string, kind?: string, channel?: string, dropped?: number, failingMs?: number, err?: { message: string } }

const WARN = 40
const INFO = 30
const publication = { kind: 'all' }

/** A PublishFailureLog writing to a real Fastify logger, on a clock the test moves. */
function failureLog (summaryMs = 1000, wording?: typeof historyPublishWording): { failures: PublishFailureLog, lines: LogLine[], advance: (ms: number) => void } {
  const lines: LogLine[] = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line) as LogLine) } }
  const { log } = Fastify({ logger: { level: 'info', stream } })
  let clock = 5000
  return { failures: new PublishFailureLog(log, summaryMs, () => clock, wording), lines, advance: (ms) => { clock += ms } }
}

t.test('the first failure of a run is a warn line; later ones within the window add none', async (t) => {
  const { failures, lines, advance } = failureLog()
  failures.failed(new Error('broker down'), publication)
  t.equal(lines.length, 1)
  t.match(lines[0], { level: WARN, msg: 'channels: broker publish failed; delivered locally only', kind: 'all', err: { message: 'broker down' } })
  for (let i = 0; i < 5; i++) {
    advance(199)
    failures.failed(new Error('broker down'), { kind: 'channels' })
  }
  t.equal(lines.length, 1, 'five more failures within the window: no more lines')
})

t.test('a run longer than the window adds one warn line with the count per window', async (t) => {
  const { failures, lines, advance } = failureLog()
  failures.failed(new Error('first'), publication)
  advance(500)
  failures.failed(new Error('second'), publication)
  advance(499)
  failures.failed(new Error('third'), publication)
  t.equal(lines.length, 1, '999 ms after the first line: still none')
  advance(1)
  failures.failed(new Error('fourth'), publication)
  t.equal(lines.length, 2, 'the window is over at 1000 ms')
  t.match(lines[1], { level: WARN, msg: 'channels: broker publish still failing; delivered locally only', dropped: 3, failingMs: 1000, err: { message: 'fourth' } })
  advance(999)
  failures.failed(new Error('fifth'), publication)
  t.equal(lines.length, 2, 'the window starts again at the summary line')
  advance(1)
  failures.failed(new Error('sixth'), publication)
  t.match(lines[2], { level: WARN, dropped: 2, failingMs: 2000 }, 'the count starts again after each summary')
  t.equal(lines.length, 3)
})

t.test('the first publish that goes through ends the run with an info line and the total', async (t) => {
  const { failures, lines, advance } = failureLog()
  failures.succeeded()
  t.same(lines, [], 'no run, no line')
  failures.failed(new Error('down'), publication)
  advance(1500)
  failures.failed(new Error('down'), publication)
  advance(100)
  failures.failed(new Error('down'), publication)
  advance(400)
  failures.succeeded()
  t.equal(lines.length, 3)
  t.match(lines[2], { level: INFO, msg: 'channels: broker publish works again', dropped: 3, failingMs: 2000 })
  failures.succeeded()
  t.equal(lines.length, 3, 'once per run')

  failures.failed(new Error('down again'), publication)
  t.equal(lines.length, 4)
  t.match(lines[3], { level: WARN, msg: 'channels: broker publish failed; delivered locally only' }, 'a new run warns at once')
  failures.succeeded()
  t.match(lines[4], { level: INFO, dropped: 1, failingMs: 0 }, 'its total counts only its own failures')
})

t.test('closing during a run logs its total; closing without one logs nothing', async (t) => {
  const { failures, lines, advance } = failureLog()
  failures.close()
  t.same(lines, [])
  failures.failed(new Error('down'), publication)
  failures.failed(new Error('down'), publication)
  advance(30)
  failures.close()
  t.equal(lines.length, 2)
  t.match(lines[1], { level: INFO, msg: 'channels: broker closed while publishes were failing', dropped: 2, failingMs: 30 })
})

t.test('history publishes: their own wording, with the channel of the failure', async (t) => {
  const { failures, lines, advance } = failureLog(1000, historyPublishWording)
  failures.failed(new Error('down'), { channel: 'h-a' })
  advance(1000)
  failures.failed(new Error('down'), { channel: 'h-b' })
  failures.succeeded()
  failures.failed(new Error('down'), { channel: 'h-c' })
  failures.close()
  t.match(lines, [
    { level: WARN, msg: 'channels: history publish failed; delivered locally only, without an offset', channel: 'h-a' },
    { level: WARN, msg: 'channels: history publish still failing; delivered locally only, without an offset', channel: 'h-b', dropped: 1 },
    { level: INFO, msg: 'channels: history publish works again', dropped: 2 },
    { level: WARN, msg: /history publish failed/, channel: 'h-c' },
    { level: INFO, msg: 'channels: broker closed while history publishes were failing', dropped: 1 }
  ])
  t.equal(lines.length, 5)
})

t.test('the default window is ten seconds', async (t) => {
  t.equal(publishFailureSummaryMs, 10_000)
})
