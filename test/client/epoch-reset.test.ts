/**
 * A history channel whose stream restarts under a new epoch while the client holds it (a Redis
 * restarted empty, a flushed or expired key): the server pushes `subscribed` without an id,
 * with the new epoch and `recovered: false`, before the first publication of the new epoch. The
 * client (client/channel.ts) must reset its position for that channel, tell `onSubscribed`,
 * and drop no publication of the new epoch as seen already; its next rejoin asks `since` the
 * new epoch. Against a scripted server, which sends exactly those frames.
 */
import t from 'tap'
import { Value } from '@sinclair/typebox/value'
import type { SubscribedInfo } from '../../client/index.js'
import { SubscribedFrame } from '../../schemas/protocol.js'
import { decodeServerFrame } from '../../schemas/server-frames.js'
import { within } from '../helpers/deadline.js'
import { until } from '../helpers/server.js'
import { clientFor, nextEvent, statusOf } from './helpers.js'
import { ScriptedServer, type ScriptedConnection } from './scripted-server.js'

type Line = [unknown, number | undefined]

/** A client joined to history channel `h` at `epoch`/`offset`, recording lines and onSubscribed calls. */
async function joined (t: Parameters<typeof ScriptedServer.start>[0], epoch: string, offset: number) {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const infos: Array<[string, SubscribedInfo]> = []
  client.onSubscribed((channel, info) => infos.push([channel, info]))
  const lines: Line[] = []
  client.on('line', (data, meta) => lines.push([data, meta.offset]))
  const ws = await server.welcomed(0, 'first')
  const joining = client.subscribe('h')
  const { id } = await ws.next('subscribe')
  ws.send({ type: 'subscribed', channel: 'h', id, epoch, offset })
  await within(joining, 3000, 'the first join')
  return { server, client, infos, lines, ws }
}

function publish (ws: ScriptedConnection, from: number, to: number, tag: string): void {
  for (let offset = from; offset <= to; offset++) ws.send({ type: 'message', event: 'line', channel: 'h', data: `${tag}#${offset}`, offset })
}

/** Waits until every frame sent so far on `ws` was handled (a `sync` event after them). */
async function sync (client: Parameters<typeof nextEvent>[0], ws: ScriptedConnection): Promise<void> {
  const event = nextEvent(client, 'sync')
  ws.send({ type: 'message', event: 'sync', data: null })
  await within(event, 3000, 'the frames before sync')
}

t.test('the restart frame (no id) is a valid subscribed frame for the client\'s decoder and the protocol schema', async (t) => {
  const frame = { type: 'subscribed', channel: 'h', epoch: 'e2', offset: 0, recovered: false }
  t.same(decodeServerFrame(JSON.stringify(frame)), { ok: true, frame })
  t.ok(Value.Check(SubscribedFrame, frame))
})

t.test('the issue: 50 seen in one epoch, the stream restarts, 60 new ones all reach the listener', async (t) => {
  const { client, infos, lines, ws } = await joined(t, 'e1', 0)
  publish(ws, 1, 50, 'e1')
  ws.send({ type: 'subscribed', channel: 'h', epoch: 'e2', offset: 0, recovered: false })
  publish(ws, 1, 60, 'e2')
  await sync(client, ws)
  t.equal(lines.length, 110, 'every publication of both epochs')
  t.same(lines.slice(50).map(([, offset]) => offset), Array.from({ length: 60 }, (_, i) => i + 1), 'the new epoch from 1, in order')
  t.same(infos, [['h', { epoch: 'e1', offset: 0 }], ['h', { recovered: false, epoch: 'e2', offset: 0 }]],
    'onSubscribed runs for the restart with recovered: false')
  t.same(client.channels, ['h'])
})

t.test('whatever top the restart frame names, no publication of the new epoch that follows it is dropped', async (t) => {
  // The client has seen nothing of the new epoch yet, so nothing that follows is a repeat.
  const { client, lines, ws } = await joined(t, 'e1', 0)
  publish(ws, 1, 50, 'e1')
  ws.send({ type: 'subscribed', channel: 'h', epoch: 'e2', offset: 3, recovered: false })
  publish(ws, 1, 5, 'e2')
  publish(ws, 5, 5, 'e2 again') // within the new epoch, a repeat is still dropped
  await sync(client, ws)
  t.same(lines.slice(50), [['e2#1', 1], ['e2#2', 2], ['e2#3', 3], ['e2#4', 4], ['e2#5', 5]])
})

t.test('after the restart the rejoin asks since the new epoch and the last offset of it seen', async (t) => {
  const { server, client, lines, ws } = await joined(t, 'e1', 10)
  publish(ws, 11, 40, 'e1')
  ws.send({ type: 'subscribed', channel: 'h', epoch: 'e2', offset: 0, recovered: false })
  publish(ws, 1, 7, 'e2')
  await sync(client, ws)
  t.equal(lines.length, 37)
  ws.close(4000)
  const again = await server.welcomed(1, 'second')
  const rejoin = await again.next('subscribe')
  t.same(rejoin.since, { epoch: 'e2', offset: 7, session: 'first' })
  again.send({ type: 'subscribed', channel: 'h', id: rejoin.id, epoch: 'e2', offset: 9, recovered: true })
  publish(again, 8, 9, 'e2')
  await until(() => lines.length === 39, 3000, 'the replay of the new epoch')
  t.same(lines.slice(-2), [['e2#8', 8], ['e2#9', 9]])
})

t.test('a restart before any publication of the new epoch: the rejoin asks since the top the frame named', async (t) => {
  const { server, client, ws } = await joined(t, 'e1', 25)
  ws.send({ type: 'subscribed', channel: 'h', epoch: 'e2', offset: 4, recovered: false })
  await sync(client, ws)
  ws.close(4000)
  const again = await server.welcomed(1, 'second')
  t.same((await again.next('subscribe')).since, { epoch: 'e2', offset: 4, session: 'first' })
  await statusOf(client, 'open')
})

t.test('two restarts in a row: each one resets the position', async (t) => {
  const { client, lines, ws } = await joined(t, 'e1', 0)
  publish(ws, 1, 9, 'e1')
  ws.send({ type: 'subscribed', channel: 'h', epoch: 'e2', offset: 0, recovered: false })
  publish(ws, 1, 4, 'e2')
  ws.send({ type: 'subscribed', channel: 'h', epoch: 'e3', offset: 0, recovered: false })
  publish(ws, 1, 2, 'e3')
  await sync(client, ws)
  t.same(lines.map(([data]) => data), [
    ...Array.from({ length: 9 }, (_, i) => `e1#${i + 1}`),
    'e2#1', 'e2#2', 'e2#3', 'e2#4', 'e3#1', 'e3#2'
  ])
})

t.test('a restart frame for a channel the client just left does not bring the channel back', async (t) => {
  const { server, client, infos, ws } = await joined(t, 'e1', 0)
  const leaving = client.unsubscribe('h')
  const leave = await ws.next('unsubscribe')
  // Pushed by the server before it read the unsubscribe.
  ws.send({ type: 'subscribed', channel: 'h', epoch: 'e2', offset: 0, recovered: false })
  ws.send({ type: 'unsubscribed', channel: 'h', id: leave.id })
  await within(leaving, 3000, 'the unsubscribe')
  await sync(client, ws)
  t.same(client.channels, [], 'not held')
  t.equal(infos.length, 1, 'no onSubscribed for a channel the client does not hold')
  ws.close(4000)
  const again = await server.welcomed(1, 'second')
  await statusOf(client, 'open')
  client.send('probe', null) // frames arrive in order: a rejoin would be in the log before it
  await again.next('message')
  t.same(again.log, [{ type: 'message', event: 'probe', data: null }], 'no rejoin of the left channel after a reconnect')
})

t.test('a pushed subscribed without recovered (a server-side join) starts at the top it names, not below it by an old backlog', async (t) => {
  const server = await ScriptedServer.start(t)
  const client = clientFor(t, server.url)
  const lines: Line[] = []
  client.on('line', (data, meta) => lines.push([data, meta.offset]))
  const ws = await server.welcomed()
  const joining = client.subscribe('h', { last: 3 })
  const { id } = await ws.next('subscribe')
  ws.send({ type: 'subscribed', channel: 'h', id, epoch: 'e1', offset: 3 })
  await within(joining, 3000, 'the first join')
  publish(ws, 1, 3, 'backlog')
  ws.send({ type: 'subscribed', channel: 'h', epoch: 'e1', offset: 10 })
  publish(ws, 8, 11, 'e1')
  await sync(client, ws)
  t.same(lines.map(([, offset]) => offset), [1, 2, 3, 11], 'the backlog, then above the pushed top only')
})
