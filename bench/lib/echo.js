// @ts-check
// The inbound case's message: a schema of the size chat-like apps use (a few typed fields
// with bounds) and a valid instance of it, which the load client sends.
import { Type } from '@sinclair/typebox'

export const Echo = Type.Object({
  text: Type.String({ minLength: 1, maxLength: 500 }),
  n: Type.Integer({ minimum: 0 }),
  tags: Type.Array(Type.String({ maxLength: 20 }), { maxItems: 10 })
})

export const echoData = { text: 'hello from the bench', n: 42, tags: ['a', 'bb', 'ccc'] }
