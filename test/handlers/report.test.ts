/**
 * Reporting handler failures (plugin/handlers/report.ts): logged at error level, handed to the `error`
 * handlers whose filter matches; an `error` handler's own failure is only logged.
 */
import t from 'tap'
import Fastify from 'fastify'
import { HandlerRegistry } from '../../plugin/handlers/registry.js'
import { isThenable, reportError, runReportingErrors, type ReportingSocket } from '../../plugin/handlers/report.js'
import type { ChannelSocket } from '../../plugin/types.js'

interface Logged { msg: string, err: unknown, sessionId?: unknown, channel?: unknown }

function reportingSocket (): { socket: ReportingSocket, logged: Logged[] } {
  const logged: Logged[] = []
  const log = Fastify({ logger: false }).log
  log.error = ((obj: Omit<Logged, 'msg'>, msg: string) => { logged.push({ msg, ...obj }) }) as typeof log.error
  const socket = { id: 's1', handlers: new HandlerRegistry(), log } as unknown as ReportingSocket
  return { socket, logged }
}

t.test('logged, then the error handlers whose channel filter matches', async (t) => {
  const { socket, logged } = reportingSocket()
  const seen: string[] = []
  socket.handlers.on('error', (_s: ChannelSocket, error: Error) => { seen.push(`any ${error.message}`) })
  socket.handlers.on('error', { channel: /^room/ }, (_s: ChannelSocket, error: Error) => { seen.push(`room ${error.message}`) })
  reportError(socket, new Error('boom'), 'room-1')
  reportError(socket, 'not an Error', undefined)
  t.same(seen, ['any boom', 'room boom', 'any not an Error'], 'a non-Error is wrapped')
  t.same(logged.map((entry) => entry.msg), ['channels: handler failed', 'channels: handler failed'])
  t.match(logged[0], { sessionId: 's1', channel: 'room-1', err: { message: 'boom' } }, 'logged with the session and the channel')
})

t.test('an error handler that throws or rejects is logged, never thrown', async (t) => {
  const { socket, logged } = reportingSocket()
  socket.handlers.on('error', () => { throw new Error('sync inner') })
  socket.handlers.on('error', async () => { throw new Error('async inner') })
  reportError(socket, new Error('outer'), undefined)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(logged.map((entry) => (entry.err as Error).message), ['outer', 'sync inner', 'async inner'])
  t.same(logged.map((entry) => entry.msg), ['channels: handler failed', 'channels: error handler failed', 'channels: error handler failed'])
  t.same(logged.map((entry) => entry.sessionId), ['s1', 's1', 's1'])
})

t.test('runReportingErrors: a failing handler is reported, not thrown', async (t) => {
  const { socket, logged } = reportingSocket()
  socket.handlers.on('finish', async () => { throw new Error('finish failed') })
  const [entry] = socket.handlers.list('finish')
  await runReportingErrors(socket, entry, undefined)
  t.equal((logged[0].err as Error).message, 'finish failed')
  t.equal(isThenable(Promise.resolve()), true)
  t.equal(isThenable({ then: 1 }), false)
  t.equal(isThenable(null), false)
  t.equal(isThenable('then'), false)
})
