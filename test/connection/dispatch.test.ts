/**
 * Dispatch (plugin/connection/dispatch.ts) end to end: a client frame → the channel-name check → message
 * handlers → ack or error frame. Also the schema rule: a payload that ANY matching
 * handler's schema rejects runs no handler at all, wherever that handler sits in registration
 * order.
 */
import t, { type Test } from 'tap'
import { Type, type TSchema } from '@sinclair/typebox'
import { ChannelError } from '../../plugin/index.js'
import { startInMemory } from '../helpers/in-memory.js'
import { nextId, startApp, TestClient } from '../helpers/server.js'

const Chat = Type.Object({ text: Type.String({ minLength: 1, maxLength: 500 }) })

t.test('frames without an id are answered without one', async (t) => {
  const { app, connect } = await startInMemory()
  t.teardown(() => app.close())
  const c = await connect()
  c.send({ type: 'subscribe', channel: 'a' })
  t.same(await c.next(), { type: 'subscribed', channel: 'a' })
  c.send({ type: 'message', event: 'nothing' })
  t.same(await c.next(), { type: 'error', code: 'NO_HANDLER', message: 'no handler for event "nothing"' })
  c.close()
})

t.test('INVALID_CHANNEL for every frame that names a bad channel', async (t) => {
  const { app, connect } = await startInMemory({}, (app) => { app.channels.on('message', () => 'ok') })
  t.teardown(() => app.close())
  const c = await connect()
  for (const channel of ['', 'has space', 'x'.repeat(201), 'ctl\u0001', 'nbsp\u00a0']) {
    for (const type of ['subscribe', 'unsubscribe', 'message']) {
      const answer = await c.request({ type, channel, id: nextId() })
      t.equal(answer.code, 'INVALID_CHANNEL', `${type} ${channel.length}`)
    }
  }
  t.same(app.channels.stats().channels, 0)
  c.close()
})

t.test('messages: handlers, filters, acks and every message error', async (t) => {
  const calls: string[] = []
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('message', { event: 'chat', channel: /^room-/, schema: Chat }, (socket, data, meta) => {
      calls.push(`room:${data.text}:${meta.channel ?? ''}:${meta.id ?? ''}`)
    })
    app.channels.on('message', { event: 'chat' }, async (_socket, data) => {
      calls.push('any-chat')
      return { ok: true, echoed: data }
    })
    app.channels.on('message', { event: 'chat' }, () => ({ ignored: 'a later value is not the ack' }))
    app.channels.on('message', { event: 'silent' }, () => undefined)
    app.channels.on('message', { event: 'refuse' }, () => { throw new ChannelError('NICK_TAKEN', 'that nick is taken') })
    app.channels.on('message', { event: 'crash' }, async () => { throw new Error('secret stack details') })
    app.channels.on('message', { event: 'bigint' }, () => ({ n: 1n }))
  })
  t.teardown(() => app.close())
  const c = await connect()
  await c.subscribe('room-1')

  const ack = await c.request({ type: 'message', event: 'chat', channel: 'room-1', data: { text: 'hi' }, id: 3 })
  t.same(ack, { type: 'ack', id: 3, data: { ok: true, echoed: { text: 'hi' } } }, 'the first defined return value')
  t.same(calls, ['room:hi:room-1:3', 'any-chat'], 'all matching handlers, in registration order')

  calls.length = 0
  const invalid = await c.request({ type: 'message', event: 'chat', channel: 'room-1', data: { text: '' }, id: 4 })
  t.equal(invalid.code, 'VALIDATION_FAILED')
  t.same(invalid.errors, [{ path: '/text', message: 'Expected string length greater or equal to 1' }])
  t.same(calls, [], 'a failed schema runs no handler, not even the unvalidated ones')

  t.same(await c.request({ type: 'message', event: 'chat', data: 'no schema applies without a channel', id: 5 }),
    { type: 'ack', id: 5, data: { ok: true, echoed: 'no schema applies without a channel' } })
  t.same(await c.request({ type: 'message', event: 'silent', id: 6 }), { type: 'ack', id: 6 }, 'ack without data')
  t.same(await c.request({ type: 'message', event: 'unknown', id: 7 }),
    { type: 'error', id: 7, code: 'NO_HANDLER', message: 'no handler for event "unknown"' })
  t.same(await c.request({ type: 'message', event: 'chat', channel: 'room-2', data: { text: 'x' }, id: 8 }),
    { type: 'error', id: 8, code: 'NOT_SUBSCRIBED', message: 'not subscribed to channel "room-2"' })
  t.same(await c.request({ type: 'message', event: 'refuse', id: 9 }),
    { type: 'error', id: 9, code: 'NICK_TAKEN', message: 'that nick is taken' })
  t.same(await c.request({ type: 'message', event: 'crash', id: 10 }),
    { type: 'error', id: 10, code: 'HANDLER_ERROR', message: 'the handler failed' })
  t.same(await c.request({ type: 'message', event: 'bigint', id: 11 }),
    { type: 'error', id: 11, code: 'HANDLER_ERROR', message: 'the handler failed' }, 'an ack that cannot be encoded')

  c.send({ type: 'message', event: 'silent' })
  await c.expectNothing((f) => f.type === 'ack')
  c.close()
})

t.test('a message without event is the "message" event', async (t) => {
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('message', { event: 'message' }, (_s, data) => ({ got: data }))
  })
  t.teardown(() => app.close())
  const c = await connect()
  t.same(await c.request({ type: 'message', data: 1, id: 1 }), { type: 'ack', id: 1, data: { got: 1 } })
  c.close()
})

t.test('error handlers: filtered by channel, given the error, never leaking it', async (t) => {
  const seen: string[] = []
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('message', { event: 'crash' }, () => { throw new Error('boom') })
    app.channels.on('error', (_s, err) => { seen.push(`all:${err.message}`) })
    app.channels.on('error', { channel: /^room-/ }, (_s, err) => { seen.push(`room:${err.message}`) })
    app.channels.on('error', () => { throw new Error('an error handler failing is only logged') })
  })
  t.teardown(() => app.close())
  const c = await connect()
  await c.subscribe('room-1')
  await c.request({ type: 'message', event: 'crash', id: 1 })
  await c.request({ type: 'message', event: 'crash', channel: 'room-1', id: 2 })
  t.same(seen, ['all:boom', 'all:boom', 'room:boom'])
  c.close()
})

const Text = Type.Object({ text: Type.String() })
const Short = Type.Object({ text: Type.String({ maxLength: 3 }) })

/** An app whose `say` handlers record their position when they run. */
async function sayHandlers (t: Test, schemas: Array<TSchema | undefined>): Promise<{ client: TestClient, ran: number[] }> {
  const ran: number[] = []
  const { app, url } = await startApp({}, (app) => {
    schemas.forEach((schema, position) => {
      const handler = (): string => { ran.push(position); return `ran ${position}` }
      if (schema === undefined) app.channels.on('message', { event: 'say' }, handler)
      else app.channels.on('message', { event: 'say', schema }, handler)
    })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  return { client, ran }
}

t.test('a schema on the second matching handler rejects the payload for every handler', async (t) => {
  const { client, ran } = await sayHandlers(t, [undefined, Text])
  const answer = await client.request({ type: 'message', event: 'say', data: { text: 42 }, id: 1 })
  t.same(answer, {
    type: 'error',
    id: 1,
    code: 'VALIDATION_FAILED',
    message: 'the message data does not match the schema',
    errors: [{ path: '/text', message: 'Expected string' }]
  }, 'the second handler\'s schema answers')
  t.same(ran, [], 'not even the first, unvalidated handler ran')
  t.same(await client.request({ type: 'message', event: 'say', data: { text: 'ok' }, id: 2 }),
    { type: 'ack', id: 2, data: 'ran 0' }, 'a payload the schema accepts runs both')
  t.same(ran, [0, 1])
})

t.test('a schema on the third of several matching handlers rejects the payload for every handler', async (t) => {
  const { client, ran } = await sayHandlers(t, [undefined, undefined, Text, undefined])
  const answer = await client.request({ type: 'message', event: 'say', data: 'not an object', id: 1 })
  t.equal(answer.code, 'VALIDATION_FAILED', 'the third handler\'s schema answers')
  t.same(ran, [], 'no handler ran, before or after it')
  await client.request({ type: 'message', event: 'say', data: { text: 'ok' }, id: 2 })
  t.same(ran, [0, 1, 2, 3], 'a valid payload runs all four, in order')
})

t.test('every schema is checked: the first accepting does not let a later one\'s rejection through', async (t) => {
  const { client, ran } = await sayHandlers(t, [Text, undefined, Short])
  const answer = await client.request({ type: 'message', event: 'say', data: { text: 'too long' }, id: 1 })
  t.same(answer.errors, [{ path: '/text', message: 'Expected string length less or equal to 3' }],
    'the rejecting (third) schema\'s issues, not the accepting first one\'s')
  t.same(ran, [], 'no handler ran')
  t.same(await client.request({ type: 'message', event: 'say', data: { text: 'abc' }, id: 2 }),
    { type: 'ack', id: 2, data: 'ran 0' })
  t.same(ran, [0, 1, 2])
})

t.test('the first rejecting schema answers when several reject', async (t) => {
  const { client, ran } = await sayHandlers(t, [undefined, Short, Text])
  const answer = await client.request({ type: 'message', event: 'say', data: { text: 7 }, id: 1 })
  t.same(answer.errors, [{ path: '/text', message: 'Expected string' }], 'the second handler\'s schema, the first to reject')
  t.same(ran, [])
})

t.test('after a handler goes async the rest still run, in order; the ack carries the first defined value', async (t) => {
  const ran: string[] = []
  const later = (name: string, value: unknown) => async () => {
    await new Promise((resolve) => setImmediate(resolve))
    ran.push(name)
    return value
  }
  const now = (name: string, value: unknown) => () => { ran.push(name); return value }
  const { app, url } = await startApp({}, (app) => {
    // sync value first, then async: the sync value is the ack
    app.channels.on('message', { event: 'a' }, now('a1', 'sync first'))
    app.channels.on('message', { event: 'a' }, later('a2', 'async second'))
    // async undefined, then async and sync values: the first defined one, awaited
    app.channels.on('message', { event: 'b' }, later('b1', undefined))
    app.channels.on('message', { event: 'b' }, later('b2', 'awaited'))
    app.channels.on('message', { event: 'b' }, now('b3', 'not the ack'))
    // async undefined, then a sync value
    app.channels.on('message', { event: 'c' }, later('c1', undefined))
    app.channels.on('message', { event: 'c' }, now('c2', 'sync after async'))
    // a later async handler that fails
    app.channels.on('message', { event: 'd' }, later('d1', 'fine'))
    app.channels.on('message', { event: 'd' }, async () => { ran.push('d2'); throw new Error('later failure') })
  })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  t.teardown(() => c.close())
  t.same(await c.request({ type: 'message', event: 'a', id: 1 }), { type: 'ack', id: 1, data: 'sync first' })
  t.same(await c.request({ type: 'message', event: 'b', id: 2 }), { type: 'ack', id: 2, data: 'awaited' })
  t.same(await c.request({ type: 'message', event: 'c', id: 3 }), { type: 'ack', id: 3, data: 'sync after async' })
  t.same(await c.request({ type: 'message', event: 'd', id: 4 }), { type: 'error', id: 4, code: 'HANDLER_ERROR', message: 'the handler failed' })
  t.same(ran, ['a1', 'a2', 'b1', 'b2', 'b3', 'c1', 'c2', 'd1', 'd2'], 'every handler ran, in order')
})

t.test('a frame without a channel gives handlers a meta without a channel key', async (t) => {
  const metas: object[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('message', (_socket, _data, meta) => { metas.push(meta) })
  })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  t.teardown(() => c.close())
  await c.subscribe('room')
  await c.request({ type: 'message', event: 'e', id: 1 })
  await c.request({ type: 'message', event: 'e', channel: 'room', id: 2 })
  t.same(metas.map((meta) => Object.keys(meta).sort()), [['event', 'id'], ['channel', 'event', 'id']])
})

t.test('a subscribe handler that throws a plain error refuses with FORBIDDEN and reports it', async (t) => {
  const reported: string[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('subscribe', { channel: 'vault' }, () => { throw new Error('database down') })
    app.channels.on('error', (_socket, err) => { reported.push((err as Error).message) })
  })
  t.teardown(() => app.close())
  const c = await TestClient.connect(url)
  t.teardown(() => c.close())
  t.same(await c.subscribe('vault', 7), { type: 'error', id: 7, code: 'FORBIDDEN', message: 'subscription refused' },
    'the peer learns nothing of the error')
  t.same(reported, ['database down'])
})
