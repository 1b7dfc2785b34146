/**
 * The bundled client on history channels with deltas (real sockets; a TCP proxy stands in for
 * the network; a scripted server plays a buggy or hostile one): `subscribe(channel, { delta:
 * true })` gets whole `data` in its listeners, equal to a whole-payload subscriber's, for a long
 * stream of edits and across a reconnect with recovery; a delta it cannot apply is reported
 * and the channel resubscribed from the last publication it rebuilt.
 */
import t from 'tap'
import { WebSocket } from 'ws'
import { createDelta } from 'fossil-delta'
import type { ChannelsClient, ChannelsClientError } from '../../client/index.js'
import { deltaText } from '../../schemas/delta.js'
import { within } from '../helpers/deadline.js'
import { startApp, until } from '../helpers/server.js'
import { TcpProxy } from '../history/helpers.js'
import { clientFor, statusOf } from './helpers.js'
import { ScriptedServer } from './scripted-server.js'

interface Teardown { teardown (fn: () => unknown): void }

async function server (t: Teardown) {
  const started = await startApp({ history: { channel: /^h-/, size: 100, delta: true }, heartbeat: false })
  t.teardown(() => started.app.close())
  const proxy = await TcpProxy.start(t, started.port)
  return { ...started, proxy }
}

/** Every `doc` event of a client, with its offset. */
function docs (client: ChannelsClient): Array<{ data: unknown, offset?: number }> {
  const seen: Array<{ data: unknown, offset?: number }> = []
  client.on('doc', (data, meta) => seen.push({ data, offset: meta.offset }))
  return seen
}

/** A document of some 2 KB; edit k changes one field, now and then a string with non-ASCII text. */
function documentAt (k: number) {
  return {
    title: `Révision ${k % 5 === 0 ? '✓' : ''}`,
    rows: Array.from({ length: 30 }, (_, i) => ({ id: i, label: `row ${i}`, value: i === k % 30 ? k : i * 10 + Math.floor(k / 30) }))
  }
}

/** A WebSocket class that counts the delta frames its sockets receive. */
function countingDeltas () {
  const counted = { deltas: 0, messages: 0 }
  class Counting extends WebSocket {
    constructor (...args: ConstructorParameters<typeof WebSocket>) {
      super(...args)
      this.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as { type: string, delta?: string }
        if (frame.type !== 'message') return
        counted.messages++
        if (frame.delta !== undefined) counted.deltas++
      })
    }
  }
  return { counted, WebSocket: Counting }
}

t.test('a delta subscriber and a whole-payload subscriber get equal data for a long stream of edits', async (t) => {
  const { app, url } = await server(t)
  const counting = countingDeltas()
  const delta = clientFor(t, url, { WebSocket: counting.WebSocket as unknown as typeof WebSocket })
  const whole = clientFor(t, url)
  const a = docs(delta)
  const b = docs(whole)
  await delta.subscribe('h-doc', { delta: true })
  await whole.subscribe('h-doc')
  const count = 400
  for (let k = 1; k <= count; k++) await app.broadcastChannel('h-doc', documentAt(k), { event: 'doc' })
  await until(() => a.length === count && b.length === count, 10_000, 'every version')
  t.same(a, b)
  t.same(a.map((m) => m.offset), Array.from({ length: count }, (_, i) => i + 1))
  t.same(a.at(-1)?.data, documentAt(count))
  t.same(counting.counted, { messages: count, deltas: count - 1 }, 'all but the first came as deltas')
})

t.test('across a reconnect with recovery, every version is rebuilt', async (t) => {
  const { app, proxy } = await server(t)
  const counting = countingDeltas()
  const client = clientFor(t, proxy.url(), { WebSocket: counting.WebSocket as unknown as typeof WebSocket })
  const seen = docs(client)
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  const recovered: boolean[] = []
  client.onSubscribed((_channel, info) => { if (info.recovered !== undefined) recovered.push(info.recovered) })
  await client.subscribe('h-doc', { delta: true })
  let k = 0
  const publish = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await app.broadcastChannel('h-doc', documentAt(++k), { event: 'doc' })
  }
  await publish(20)
  await until(() => seen.length === 20, 5000, 'the first 20')
  for (let round = 0; round < 3; round++) {
    proxy.cut()
    await statusOf(client, 'reconnecting')
    await publish(7) // missed while away: replayed whole on recovery
    await statusOf(client, 'open')
    await until(() => recovered.length === round + 1, 5000, 'recovered')
    await publish(10) // live again: deltas against the last replayed one
    await until(() => seen.length === k, 5000, `every version after reconnect ${round + 1}`)
  }
  t.same(seen.map((m) => m.data), Array.from({ length: k }, (_, i) => documentAt(i + 1)))
  t.same(errors, [], 'no delta failed')
  t.same(recovered, [true, true, true])
  // whole: the first, and the first of each reconnect (the replay); the rest deltas
  t.same(counting.counted, { messages: k, deltas: k - 1 - 3 * 7 }, 'replays whole, live ones deltas')
})

t.test('a delta the client cannot apply (hostile or buggy server): reported, resubscribed with since, no crash', async (t) => {
  const scripted = await ScriptedServer.start(t)
  const client = clientFor(t, scripted.url)
  const seen = docs(client)
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  const ws = await scripted.welcomed(0, 'first')
  const joining = client.subscribe('h-doc', { delta: true })
  const subscribe = await ws.next('subscribe')
  t.equal(subscribe.delta, true, 'the subscribe frame asks for deltas')
  ws.send({ type: 'subscribed', channel: 'h-doc', id: subscribe.id, epoch: 'e1', offset: 0 })
  await within(joining, 3000, 'the join')
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0))
  const delta = (from: unknown, to: unknown) => String.fromCharCode(...createDelta(ascii(deltaText(from) as string), ascii(deltaText(to) as string)))
  ws.send({ type: 'message', event: 'doc', channel: 'h-doc', data: documentAt(1), offset: 1 })
  ws.send({ type: 'message', event: 'doc', channel: 'h-doc', delta: delta(documentAt(1), documentAt(2)), offset: 2 })
  // Garbage instead of a delta:
  ws.send({ type: 'message', event: 'doc', channel: 'h-doc', delta: 'not a delta', offset: 3 })
  const unsubscribe = await ws.next('unsubscribe')
  const again = await ws.next('subscribe')
  t.same(again.since, { epoch: 'e1', offset: 2, session: 'first' }, 'resubscribed from the last version rebuilt')
  t.equal(again.delta, true)
  ws.send({ type: 'unsubscribed', channel: 'h-doc', id: unsubscribe.id })
  ws.send({ type: 'subscribed', channel: 'h-doc', id: again.id, epoch: 'e1', offset: 3, recovered: true })
  ws.send({ type: 'message', event: 'doc', channel: 'h-doc', data: documentAt(3), offset: 3 })
  // A delta against a base the client does not hold (it skips offset 4), then one not ASCII, then one of a bad checksum.
  ws.send({ type: 'message', event: 'doc', channel: 'h-doc', delta: delta(documentAt(4), documentAt(5)), offset: 5 })
  const third = await ws.next('subscribe')
  t.same(third.since, { epoch: 'e1', offset: 3, session: 'first' })
  ws.send({ type: 'subscribed', channel: 'h-doc', id: third.id, epoch: 'e1', offset: 5, recovered: true })
  ws.send({ type: 'message', event: 'doc', channel: 'h-doc', data: documentAt(4), offset: 4 })
  ws.send({ type: 'message', event: 'doc', channel: 'h-doc', data: documentAt(5), offset: 5 })
  ws.send({ type: 'message', event: 'doc', channel: 'h-doc', delta: delta(documentAt(5), documentAt(6)), offset: 6 })
  await until(() => seen.length === 6, 3000, 'six versions')
  t.same(seen.map((m) => m.data), [1, 2, 3, 4, 5, 6].map(documentAt))
  t.equal(errors.length, 2)
  t.match(errors, [{ code: 'BAD_FRAME', channel: 'h-doc' }, { code: 'BAD_FRAME', channel: 'h-doc' }])
  // A delta to a channel the client does not hold, and one that rebuilds poisoned JSON: dropped or reported, never delivered.
  ws.send({ type: 'message', event: 'doc', channel: 'h-other', delta: 'x', offset: 1 })
  const poisoned = String.fromCharCode(...createDelta(ascii(deltaText(documentAt(6)) as string), ascii('{"__proto__":{"polluted":1}}')))
  ws.send({ type: 'message', event: 'doc', channel: 'h-doc', delta: poisoned, offset: 7 })
  await ws.next('subscribe')
  t.equal(seen.length, 6)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(errors.length, 3)
})
