/**
 * dispatch.ts: one inbound frame to its answer. Here, the schema rule of SPEC.md: a payload
 * that ANY matching handler's schema rejects runs no handler at all, wherever that handler
 * sits in registration order.
 */
import t, { type Test } from 'tap'
import { Type, type TSchema } from '@sinclair/typebox'
import { startApp, TestClient } from '../helpers/server.js'

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
