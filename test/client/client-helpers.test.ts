/**
 * The client's small helpers (client/client.ts), seen through the client: a listener
 * that throws breaks neither the client nor the other listeners (its error surfaces later, as
 * an uncaught exception), `off()` functions, and the errors for a bad channel name or a
 * closed client.
 */
import t from 'tap'
import { captureProcessErrors, until } from '../helpers/server.js'
import { within } from '../helpers/deadline.js'
import { clientFor, nextEvent, statusOf } from './helpers.js'
import { ScriptedServer } from './scripted-server.js'

t.test('a throwing listener: the others still run, the client goes on, the error is rethrown later', async (t) => {
  const errors = captureProcessErrors(t)
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const seen: string[] = []
  client.onStatus(() => { throw new Error('status listener') })
  client.onStatus((status) => seen.push(`status ${status}`))
  client.on('news', () => { throw new Error('news listener') })
  client.on('news', (data) => seen.push(`news ${String(data)}`))
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  ws.send({ type: 'message', event: 'news', data: 1 })
  await within(nextEvent(client, 'news'), 3000, 'the news event')
  await until(() => errors.length === 2, 3000, 'both errors rethrown')
  t.same(seen, ['status open', 'news 1'])
  t.match(errors, [{ message: 'status listener' }, { message: 'news listener' }])
  t.equal(client.status, 'open')
})

t.test('off() functions stop only their own listener', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const seen: string[] = []
  const offA = client.onStatus((status) => seen.push(`a ${status}`))
  client.onStatus((status) => seen.push(`b ${status}`))
  offA()
  const offError = client.onError(() => seen.push('error'))
  offError()
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  ws.send({ type: 'error', code: 'NO_HANDLER', message: 'nobody' })
  ws.send({ type: 'message', event: 'sync', data: null })
  await within(nextEvent(client, 'sync'), 3000, 'the frames after the error')
  t.same(seen, ['b open'])
})

t.test('a bad channel name and a closed client are refused with their own codes and messages', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  await t.rejects(client.subscribe(''), { name: 'ChannelsClientError', code: 'INVALID_CHANNEL', channel: '', message: /./ })
  await t.rejects(client.request('x', null, { channel: 'a b' }), { code: 'INVALID_CHANNEL', channel: 'a b' })
  client.close()
  await t.rejects(client.request('x', null), { name: 'ChannelsClientError', code: 'CLOSED', message: 'the client is closed' })
  t.same(server.connections.flatMap((ws) => ws.log), [], 'nothing was written')
})
