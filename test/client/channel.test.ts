/**
 * One subscription's life (client/channel.ts) against a scripted server: the join and rejoin
 * frames it writes, the history position it keeps (`last`, `since`, duplicates dropped), a
 * rejoin sent again when unanswered, and how cancel, timeout and drops settle the caller.
 */
import t, { type Test } from 'tap'
import type { ChannelsClientError, SubscribedInfo } from '../../client/index.js'
import { within } from '../helpers/deadline.js'
import { until } from '../helpers/server.js'
import { clientFor, nextEvent, statusOf } from './helpers.js'
import { ScriptedServer, type ScriptedConnection } from './scripted-server.js'

/** Answers the next subscribe frame of `ws` with `subscribed` plus `extra`; returns the frame without its id. */
async function acceptJoin (ws: ScriptedConnection, extra: object = {}): Promise<Record<string, unknown>> {
  const { id, ...frame } = await ws.next('subscribe')
  ws.send({ type: 'subscribed', channel: frame.channel, id, ...extra })
  return frame
}

/**
 * A client joined to `channel` on a scripted server, then dropped (4000): the connection it
 * made again and the rejoin it sent there, with every error the client reported.
 */
async function joinedThenDropped (t: Test, channel: string, timeout?: number) {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, timeout === undefined ? {} : { timeout })
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  const ws = await server.welcomed()
  const joined = client.subscribe(channel)
  await acceptJoin(ws)
  await within(joined, 3000, 'the first join')
  ws.close(4000)
  const again = await server.welcomed(1)
  const rejoin = await again.next('subscribe')
  return { server, client, errors, again, rejoin }
}

t.test('a history channel: last n trims the position, duplicates are dropped, the rejoin asks since the last offset seen', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const infos: Array<[string, SubscribedInfo]> = []
  client.onSubscribed((channel, info) => infos.push([channel, info]))
  const lines: Array<[unknown, number | undefined]> = []
  client.on('line', (data, meta) => lines.push([data, meta.offset]))
  const ws = await server.welcomed(0, 'first')
  const joined = client.subscribe('h', { last: 3 })
  t.same(await acceptJoin(ws, { epoch: 'e1', offset: 10 }), { type: 'subscribe', channel: 'h', last: 3 })
  await within(joined, 3000, 'the join resolves')
  t.same(infos, [['h', { epoch: 'e1', offset: 10 }]])
  for (const offset of [7, 8, 9, 10, 10, 9]) ws.send({ type: 'message', event: 'line', channel: 'h', data: `#${offset}`, offset })
  ws.send({ type: 'message', event: 'line', channel: 'other', data: 'no position', offset: 1 })
  ws.send({ type: 'message', event: 'line', channel: 'h', data: 'to this socket only' }) // no offset: not in the stream
  ws.send({ type: 'subscribed', channel: 'h' }) // the server subscribed the client again: the position stays
  ws.send({ type: 'message', event: 'line', channel: 'h', data: '#10 again', offset: 10 })
  ws.send({ type: 'message', event: 'sync', data: null })
  await within(nextEvent(client, 'sync'), 3000, 'the frames after the backlog')
  t.same(lines, [['#8', 8], ['#9', 9], ['#10', 10], ['no position', 1], ['to this socket only', undefined]], 'the backlog of 3 once; 7 is older, repeats dropped')

  ws.close(4000)
  const again = await server.welcomed(1, 'second')
  t.same(await acceptJoin(again, { epoch: 'e1', offset: 12, recovered: true }),
    { type: 'subscribe', channel: 'h', since: { epoch: 'e1', offset: 10, session: 'first' } })
  await until(() => infos.length === 3, 3000, 'onSubscribed for the rejoin')
  t.same(infos[1], ['h', {}], 'the server-side subscribe')
  t.same(infos[2], ['h', { recovered: true, epoch: 'e1', offset: 12 }])
  again.send({ type: 'message', event: 'line', channel: 'h', data: '#10 again', offset: 10 })
  again.send({ type: 'message', event: 'line', channel: 'h', data: '#11', offset: 11 })
  await until(() => lines.length === 6, 3000, 'the replay')
  t.same(lines[5], ['#11', 11], 'recovered: the replay goes on from where the client was')

  again.close(4000)
  const third = await server.welcomed(2, 'third')
  t.same((await acceptJoin(third, { epoch: 'e2', offset: 2, recovered: false })).since, { epoch: 'e1', offset: 11, session: 'second' })
  third.send({ type: 'message', event: 'line', channel: 'h', data: 'e2 #2', offset: 2 })
  third.send({ type: 'message', event: 'line', channel: 'h', data: 'e2 #3', offset: 3 })
  await until(() => lines.length === 7, 3000, 'live traffic of the new epoch')
  t.same(lines[6], ['e2 #3', 3], 'not recovered: the position restarts at the new top')

  third.close(4000)
  const fourth = await server.welcomed(3, 'fourth')
  t.same((await acceptJoin(fourth)).since, { epoch: 'e2', offset: 3, session: 'third' })
})

t.test('a backlog larger than the stream starts the position at 0; a plain join asks for no backlog', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const lines: unknown[] = []
  client.on('line', (data) => lines.push(data))
  const ws = await server.welcomed()
  const joined = client.subscribe('h', { last: 5 })
  await acceptJoin(ws, { epoch: 'e', offset: 2 })
  await within(joined, 3000, 'the join resolves')
  const plain = client.subscribe('p')
  t.same(await acceptJoin(ws, { epoch: 'e', offset: 4 }), { type: 'subscribe', channel: 'p' })
  await within(plain, 3000, 'the plain join resolves')
  ws.send({ type: 'message', event: 'line', channel: 'h', data: 'h1', offset: 1 })
  ws.send({ type: 'message', event: 'line', channel: 'p', data: 'p4', offset: 4 })
  ws.send({ type: 'message', event: 'line', channel: 'p', data: 'p5', offset: 5 })
  await until(() => lines.length === 2, 3000, 'two lines')
  t.same(lines, ['h1', 'p5'])
  ws.close(4000)
  const again = await server.welcomed(1)
  const rejoins = [await again.next('subscribe'), await again.next('subscribe')]
  t.same(rejoins.map((frame) => frame.since), [{ epoch: 'e', offset: 1, session: 's1' }, { epoch: 'e', offset: 5, session: 's1' }])
})

t.test('a rejoin nobody answers is sent again after the timeout; a late answer to the old one is ignored', async (t) => {
  const { client, errors, again, rejoin: lost } = await joinedThenDropped(t, 'room', 150)
  t.same(client.channels, ['room'], 'held while rejoining')
  const retried = await again.next('subscribe', 3000)
  t.not(retried.id, lost.id, 'a new id')
  again.send({ type: 'error', id: lost.id, code: 'RATE_LIMITED', message: 'late' })
  again.send({ type: 'subscribed', channel: 'room', id: retried.id })
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal(again.frames.filter((frame) => frame.type === 'subscribe').length, 0, 'no retry once answered')
  t.same(errors, [], 'the late answer to the old id reached nobody')
  t.same(client.channels, ['room'])
})

t.test('a first join is not retried: unanswered, it times out and is undone; offline it just times out', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { timeout: 5000 })
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  const subscribed: string[] = []
  client.onSubscribed((channel) => subscribed.push(channel))
  const join = client.subscribe('slow', { timeout: 100 })
  const sent = await ws.next('subscribe')
  await t.rejects(join, { code: 'TIMEOUT', channel: 'slow', message: 'the subscription to "slow" was not answered within 100 ms' })
  const undo = await ws.next('unsubscribe')
  t.match(undo, { type: 'unsubscribe', channel: 'slow', id: Number })
  t.not(undo.id, sent.id)
  t.equal(ws.frames.filter((frame) => frame.type === 'subscribe').length, 0, 'never sent again')
  ws.send({ type: 'subscribed', channel: 'slow', id: sent.id }) // too late: ignored
  ws.send({ type: 'unsubscribed', channel: 'slow', id: undo.id })
  await client.request('sync', null, { timeout: 50 }).catch(() => {}) // a round trip after the late answers
  t.same(subscribed, [], 'the late answer to a timed-out join is nobody\'s')
  ws.close(4000)
  await statusOf(client, 'reconnecting')
  const offline = client.subscribe('offline', { timeout: 50 })
  await t.rejects(offline, { code: 'TIMEOUT', channel: 'offline' })
  const next = await server.welcomed(1)
  await client.request('sync', null, { timeout: 3000 }).catch(() => {})
  t.same(next.log.filter((frame) => frame.type !== 'message'), [], 'nothing about either channel on the new connection')
  t.same(client.channels, [])
})

t.test('unsubscribe during a first join: the join still settles its caller; a refused join after it is not reported', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  const ws = await server.welcomed()
  const joined = client.subscribe('a')
  const refused = client.subscribe('b')
  const frames = [await ws.next('subscribe'), await ws.next('subscribe')]
  const leaving = client.unsubscribe('a')
  client.unsubscribe('b').catch(() => {}) // its join is refused below: nothing to undo
  ws.send({ type: 'subscribed', channel: 'a', id: frames[0].id })
  ws.send({ type: 'error', channel: 'b', id: frames[1].id, code: 'FORBIDDEN', message: 'no' })
  await within(joined, 3000, 'the cancelled join resolves with its answer')
  await t.rejects(refused, { code: 'FORBIDDEN', channel: 'b' })
  const undo = await ws.next('unsubscribe')
  ws.send({ type: 'unsubscribed', channel: 'a', id: undo.id })
  await within(leaving, 3000, 'the unsubscribe resolves')
  t.same(client.channels, [], 'an answered join after unsubscribe does not come back')
  ws.close(4000)
  const again = await server.welcomed(1)
  await client.request('sync', null, { timeout: 3000 }).catch(() => {})
  t.same(again.log.filter((frame) => frame.type === 'subscribe'), [], 'nothing rejoined')
  t.same(errors, [])
})

t.test('a rejoin refused after a reconnect is reported once, with its channel, and dropped', async (t) => {
  const { client, errors, again, rejoin } = await joinedThenDropped(t, 'vip')
  again.send({ type: 'error', id: rejoin.id, code: 'FORBIDDEN', message: 'not any more' })
  await until(() => errors.length === 1, 3000, 'the refusal reported')
  t.match(errors[0], { code: 'FORBIDDEN', channel: 'vip' })
  t.same(client.channels, [])
})

t.test('a rejoin cut off by another drop stays wanted and is sent on the next connection', async (t) => {
  const { server, client, again: second } = await joinedThenDropped(t, 'room')
  second.close(4000)
  await statusOf(client, 'reconnecting')
  t.same(client.channels, ['room'])
  const third = await server.welcomed(2)
  await acceptJoin(third)
  await until(() => third.frames.length === 0 && client.status === 'open', 3000, 'rejoined')
  t.same(client.channels, ['room'])
})

t.test('a join refused after its channel was left and subscribed again does not drop the new subscription', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  const ws = await server.welcomed()
  const old = client.subscribe('a').catch((err: ChannelsClientError) => err)
  const oldJoin = await ws.next('subscribe')
  const leaving = client.unsubscribe('a')
  const fresh = client.subscribe('a')
  const undo = await ws.next('unsubscribe')
  const freshJoin = await ws.next('subscribe')
  ws.send({ type: 'error', id: oldJoin.id, code: 'FORBIDDEN', message: 'the old join' })
  ws.send({ type: 'unsubscribed', channel: 'a', id: undo.id })
  ws.send({ type: 'subscribed', channel: 'a', id: freshJoin.id })
  t.match(await old, { code: 'FORBIDDEN' })
  await within(Promise.all([leaving, fresh]), 3000, 'the unsubscribe and the new join')
  t.same(client.channels, ['a'])
  t.same(errors, [])
})

t.test('a first join is never sent again, even when the client timeout is shorter than its own', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url, { timeout: 100 })
  const ws = await server.welcomed()
  await statusOf(client, 'open')
  await t.rejects(client.subscribe('slow', { timeout: 600 }), { code: 'TIMEOUT' })
  t.equal(ws.log.filter((frame) => frame.type === 'subscribe').length, 1, 'one subscribe frame in 600 ms')
})

t.test('unsubscribe during an unanswered rejoin: no retry, and its late refusal is not reported', async (t) => {
  const { client, errors, again, rejoin } = await joinedThenDropped(t, 'room', 150)
  const leaving = client.unsubscribe('room', { timeout: 3000 })
  const undo = await again.next('unsubscribe')
  await new Promise((resolve) => setTimeout(resolve, 400)) // past the rejoin's retry time
  t.same(again.frames, [], 'the rejoin was not sent again')
  again.send({ type: 'error', id: rejoin.id, code: 'FORBIDDEN', message: 'late' })
  again.send({ type: 'unsubscribed', channel: 'room', id: undo.id })
  await within(leaving, 3000, 'the unsubscribe')
  again.send({ type: 'message', event: 'sync', data: null })
  await within(nextEvent(client, 'sync'), 3000, 'the frames after the refusal')
  t.same(errors, [], 'nobody wants the channel any more: nothing to report')
  t.same(client.channels, [])
})

t.test('the messages of CANCELLED and DISCONNECTED name the subscription and carry its channel', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const ws = await server.connection() // not welcomed yet: joins wait
  const cancelled = client.subscribe('early')
  await client.unsubscribe('early') // offline: resolves at once
  await t.rejects(cancelled, { code: 'CANCELLED', channel: 'early', message: 'unsubscribed from "early" before the subscription was sent' })
  ws.welcome()
  await statusOf(client, 'open')
  const cut = client.subscribe('cut')
  await ws.next('subscribe')
  ws.close(4000)
  await t.rejects(cut, { code: 'DISCONNECTED', channel: 'cut', message: 'the connection dropped before the subscription to "cut" was answered' })
  await server.connection(1)
  const closed = client.subscribe('closed')
  client.close()
  await t.rejects(closed, { code: 'DISCONNECTED', channel: 'closed', message: 'the connection dropped before the subscription to "closed" was answered' })
})

t.test('onSubscribed gets only the fields the frame had; a position needs both epoch and offset', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const infos: Array<[string, object]> = []
  client.onSubscribed((channel, info) => infos.push([channel, info]))
  const ws = await server.welcomed()
  const joins = [client.subscribe('plain'), client.subscribe('epoch-only'), client.subscribe('offset-only')]
  await acceptJoin(ws)
  await acceptJoin(ws, { epoch: 'e' })
  await acceptJoin(ws, { offset: 4 })
  await within(Promise.all(joins), 3000, 'the joins')
  t.same(infos.map(([channel, info]) => [channel, Object.keys(info)]), [['plain', []], ['epoch-only', ['epoch']], ['offset-only', ['offset']]])
  ws.close(4000)
  const again = await server.welcomed(1)
  const rejoins = [await again.next('subscribe'), await again.next('subscribe'), await again.next('subscribe')]
  t.same(rejoins.map((frame) => frame.since), [undefined, undefined, undefined], 'no since without a whole position')
})
