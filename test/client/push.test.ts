/**
 * Requests (client/push.ts): timeouts, late answers, and what a timed-out queued request does.
 */
import t from 'tap'
import type { ChannelSocket } from '../../plugin/types.js'
import { ChannelsClientError } from '../../client/index.js'
import { startApp, until } from '../helpers/server.js'
import { clientFor, statusOf } from './helpers.js'
import { ScriptedServer } from './scripted-server.js'

t.test('a request with no answer in time rejects TIMEOUT; its late ack is ignored', async (t) => {
  const releases: Array<() => void> = []
  let handled = 0
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('message', { event: 'slow' }, () => new Promise((resolve) => { releases.push(() => resolve('late')) }))
    app.channels.on('message', { event: 'fast' }, () => { handled++; return 'quick' })
  })
  t.teardown(() => app.close())
  const client = clientFor(t, url, { timeout: 5000 })
  await statusOf(client, 'open') // else the request could time out while still queued
  const started = Date.now()
  await t.rejects(client.request('slow', null, { timeout: 50 }), { name: 'ChannelsClientError', code: 'TIMEOUT' })
  t.ok(Date.now() - started < 2000, 'the per-request timeout wins over the client default')
  await until(() => releases.length === 1, 3000, 'the slow handler is running')
  releases[0]() // the late ack arrives now: nobody waits for it
  t.equal(await client.request('fast', null), 'quick', 'later requests get their own answers')
  t.equal(handled, 1)
})

t.test('the client-wide timeout applies to requests and subscriptions', async (t) => {
  let release = (): void => {}
  const sockets: ChannelSocket[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket) })
    app.channels.on('subscribe', { channel: 'slow-room' }, () => new Promise<void>((resolve) => { release = resolve }))
    app.channels.on('message', { event: 'ping' }, () => 'pong')
    app.channels.on('message', { event: 'never' }, () => new Promise(() => {}))
  })
  t.teardown(() => app.close())
  const client = clientFor(t, url, { timeout: 50 })
  await statusOf(client, 'open')
  await t.rejects(client.subscribe('slow-room'), { code: 'TIMEOUT', channel: 'slow-room' })
  t.same(client.channels, [], 'a timed-out subscription is not held')
  release() // the join completes on the server after all...
  // A round trip may take more than the 50 ms client-wide timeout on a loaded machine: this one waits longer.
  t.equal(await client.request('ping', null, { timeout: 10_000 }), 'pong')
  t.equal(sockets[0].channels.size, 0, '...and the client undid it: the server does not keep the channel')
  await t.rejects(client.request('never', null), { code: 'TIMEOUT' })
})

t.test('a queued request that times out is never sent', async (t) => {
  const log: string[] = []
  const sockets: ChannelSocket[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket) })
    app.channels.on('message', { event: 'note' }, (_socket, data) => { log.push(String(data)); return data })
  })
  t.teardown(() => app.close())
  let slow = false
  const client = clientFor(t, url, { backoff: () => slow ? 300 : 10 })
  await statusOf(client, 'open')
  slow = true
  sockets[0].close(4000)
  await statusOf(client, 'reconnecting')
  await t.rejects(client.request('note', 'expired', { timeout: 20 }), { code: 'TIMEOUT' })
  t.equal(client.queued, 0, 'taken out of the queue')
  const kept = client.request('note', 'kept')
  await statusOf(client, 'open')
  t.equal(await kept, 'kept')
  t.same(log, ['kept'])
})

t.test('what a request rejects with: the messages name it; channel and errors only when there are some', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  /** what a request rejected with (it must reject) */
  const rejection = async (request: Promise<unknown>): Promise<ChannelsClientError> => {
    return await request.then(() => { throw new Error('resolved') }, (err: ChannelsClientError) => err)
  }
  const timedOut = await rejection(client.request('slow', null, { timeout: 30 }))
  t.match(timedOut, { name: 'ChannelsClientError', code: 'TIMEOUT', message: 'the request "slow" was not answered within 30 ms' })
  t.type(timedOut, ChannelsClientError)
  t.equal(timedOut.channel, undefined)
  t.match(await rejection(client.request('slow', null, { timeout: 30, channel: 'room' })),
    { code: 'TIMEOUT', channel: 'room' }, 'a TIMEOUT names the channel like every other rejection')

  const plain = client.request('plain', null)
  const inRoom = client.request('in-room', null, { channel: 'room' })
  const invalid = client.request('invalid', null)
  const frames = [await ws.next('message'), await ws.next('message'), await ws.next('message'), await ws.next('message'), await ws.next('message')].slice(2)
  ws.send({ type: 'error', id: frames[0].id, code: 'NO_HANDLER', message: 'nobody' })
  ws.send({ type: 'error', id: frames[1].id, code: 'FORBIDDEN', message: 'no' })
  const issues = [{ path: '/text', message: 'too long' }]
  ws.send({ type: 'error', id: frames[2].id, code: 'VALIDATION_FAILED', message: 'bad', errors: issues })
  const [a, b, c] = await Promise.all([plain, inRoom, invalid].map(rejection))
  t.match(a, { name: 'ChannelsClientError', code: 'NO_HANDLER', message: 'nobody', channel: undefined, errors: undefined })
  t.match(b, { code: 'FORBIDDEN', message: 'no', channel: 'room', errors: undefined }, 'the request\'s channel')
  t.same(c.errors, issues)

  const held = client.request('held', null, { channel: 'room' })
  await ws.next('message')
  ws.close(4000)
  t.match(await rejection(held), {
    code: 'DISCONNECTED', channel: 'room', message: 'the connection dropped before the request "held" was answered'
  })
})
