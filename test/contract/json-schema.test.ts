/**
 * TypeBox schemas as document JSON Schema: no Symbols, no $id, every $ref a pointer into the
 * document, non-JSON types replaced, data values untouched.
 */
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { KeySpace, SchemaComponents, keyOf } from '../../plugin/contract/json-schema.js'

t.test('plain schemas come out as their JSON', async (t) => {
  const schema = Type.Object({ a: Type.Optional(Type.Union([Type.String(), Type.Null()])), b: Type.Array(Type.Integer(), { maxItems: 3 }) })
  const components = new SchemaComponents()
  t.same(components.convert(schema), JSON.parse(JSON.stringify(schema)))
  t.same(Object.getOwnPropertySymbols(components.convert(schema)), [], 'no Symbol keys')
  t.same(components.schemas, {}, 'nothing referenced, no components')
})

t.test('Type.Recursive: the payload inline, its self-reference into components', async (t) => {
  const components = new SchemaComponents()
  const List = Type.Recursive((This) => Type.Object({ value: Type.Number(), next: Type.Optional(This) }))
  const id = List.$id as string
  const expected = { type: 'object', required: ['value'], properties: { value: { type: 'number' }, next: { $ref: `#/components/schemas/${id}` } } }
  t.same(components.convert(List), expected)
  t.same(components.schemas[id], expected)
})

t.test('two different schemas with the same $id get different keys; the same schema twice one', async (t) => {
  const components = new SchemaComponents()
  const A = Type.Recursive((This) => Type.Object({ a: Type.Array(This) }), { $id: 'Node' })
  const B = Type.Recursive((This) => Type.Object({ b: Type.Optional(This) }), { $id: 'Node' })
  const a = components.convert(A)
  components.convert(A)
  const b = components.convert(B)
  t.same(Object.keys(components.schemas), ['Node', 'Node_2'])
  t.same((a.properties as { a: { items: unknown } }).a.items, { $ref: '#/components/schemas/Node' })
  t.same((b.properties as { b: unknown }).b, { $ref: '#/components/schemas/Node_2' })
})

t.test('a Type.Ref to a schema converted before points at its component', async (t) => {
  const components = new SchemaComponents()
  const Point = Type.Object({ x: Type.Number() }, { $id: 'Point' })
  components.convert(Type.Object({ p: Point }))
  t.same(components.convert(Type.Object({ at: Type.Ref(Point) })), { type: 'object', required: ['at'], properties: { at: { $ref: '#/components/schemas/Point' } } })
})

t.test('local JSON pointers (#, #/$defs/..., #/definitions/...) are rebased into components', async (t) => {
  const components = new SchemaComponents()
  const raw = Type.Unsafe<unknown>({
    type: 'object',
    properties: { self: { $ref: '#' }, item: { $ref: '#/$defs/Item' }, deep: { $ref: '#/properties/self' } },
    $defs: { Item: { type: 'string' } }
  })
  const converted = components.convert(raw) as { properties: Record<string, { $ref: string }> }
  t.equal(converted.properties.item.$ref, '#/components/schemas/Item')
  t.match(converted.properties.self.$ref, /^#\/components\/schemas\/Schema\d+$/)
  t.equal(converted.properties.deep.$ref, converted.properties.self.$ref + '/properties/self')
  const rootKey = converted.properties.self.$ref.split('/').pop() as string
  t.same(components.schemas[rootKey], converted, 'the root is a component its pointers can reach')
  t.same(components.schemas.Item, { type: 'string' })
})

t.test('types JSON cannot hold never validate; RegExp is a string pattern', async (t) => {
  const components = new SchemaComponents()
  const converted = components.convert(Type.Object({
    when: Type.Date(),
    big: Type.BigInt(),
    gone: Type.Optional(Type.Undefined()),
    code: Type.RegExp(/^[a-z]+$/)
  }))
  t.same(converted.properties, {
    when: { not: {}, 'x-typebox-type': 'Date' },
    big: { not: {}, 'x-typebox-type': 'bigint' },
    gone: { not: {}, 'x-typebox-type': 'undefined' },
    code: { type: 'string', pattern: '^[a-z]+$' }
  })
})

t.test('data values and property names are not keywords', async (t) => {
  const components = new SchemaComponents()
  const schema = Type.Object({
    $id: Type.String(),
    type: Type.Literal('Date'),
    meta: Type.Unknown({ default: { $ref: 'kept', $id: 'kept', type: 'Date' }, examples: [{ $ref: 'x' }] })
  })
  t.same(components.convert(schema), JSON.parse(JSON.stringify(schema)))
})

t.test('properties called $defs, definitions, $id or $ref are properties like any other', async (t) => {
  const components = new SchemaComponents()
  const schema = Type.Object({
    $defs: Type.String(),
    definitions: Type.Object({ $ref: Type.Number() }),
    properties: Type.Object({ $id: Type.Literal('x') }),
    nested: Type.Object({ $defs: Type.Array(Type.Date()) })
  })
  const expected = JSON.parse(JSON.stringify(schema)) as { properties: { nested: { properties: { $defs: { items: unknown } } } } }
  expected.properties.nested.properties.$defs.items = { not: {}, 'x-typebox-type': 'Date' }
  t.same(components.convert(schema), expected)
  t.same(components.schemas, {})
})

t.test('what JSON cannot hold is left out: functions, symbols, bigints, NaN and Infinity (null in arrays)', async (t) => {
  const components = new SchemaComponents()
  const raw = Type.Unsafe<unknown>({
    type: 'number',
    maximum: Infinity,
    minimum: Number.NaN,
    default: 1n,
    transform: () => 1,
    tag: Symbol('x'),
    examples: [1, Infinity, () => 1, 'two']
  })
  t.strictSame(components.convert(raw), { type: 'number', examples: [1, null, null, 'two'] })
})

t.test('component keys: the characters AsyncAPI allows, runs of others one underscore, "Schema" for an empty id', async (t) => {
  const components = new SchemaComponents()
  components.convert(Type.Object({ a: Type.Object({ x: Type.Number() }, { $id: 'urn:a  b/c' }), b: Type.Object({ y: Type.Number() }, { $id: '' }) }))
  t.same(Object.keys(components.schemas), ['urn_a_b_c', 'Schema'])
})

t.test('pointers into a local definition keep their rest; the first schema with an id keeps its key', async (t) => {
  const components = new SchemaComponents()
  const raw = Type.Unsafe<unknown>({
    type: 'object',
    properties: { deep: { $ref: '#/definitions/Item/properties/name' }, other: { $ref: 'Elsewhere' } },
    definitions: { Item: { type: 'object', properties: { name: { type: 'string' } } } }
  })
  const converted = components.convert(raw) as { properties: Record<string, { $ref: string }> }
  t.equal(converted.properties.deep.$ref, '#/components/schemas/Item/properties/name')
  t.equal(converted.properties.other.$ref, 'Elsewhere', 'an id no schema defines is left as it is')
  const A = Type.Object({ a: Type.Number() }, { $id: 'Same' })
  const B = Type.Object({ b: Type.Number() }, { $id: 'Same' })
  components.convert(Type.Object({ a: A }))
  components.convert(Type.Object({ b: B }))
  t.same(components.convert(Type.Object({ r: Type.Ref(A) })).properties, { r: { $ref: '#/components/schemas/Same' } }, 'a Type.Ref to the id: the first schema')
  t.same(components.schemas.Same_2, { type: 'object', required: ['b'], properties: { b: { type: 'number' } } })
})

t.test('a definition with an $id of its own is one component, under its id', async (t) => {
  const components = new SchemaComponents()
  const raw = Type.Unsafe<unknown>({ type: 'array', items: { $ref: 'ItemId' }, $defs: { Item: { $id: 'ItemId', type: 'string' } } })
  t.same(components.convert(raw), { type: 'array', items: { $ref: '#/components/schemas/ItemId' } })
  t.same(components.schemas, { ItemId: { type: 'string' } })
})

t.test('a RegExp keeps its pattern, not its flags', async (t) => {
  const components = new SchemaComponents()
  t.same(components.convert(Type.RegExp(/^a+$/i)), { type: 'string', pattern: '^a+$' })
})

t.test('data under const, enum, examples and example is never rewritten; nulls are kept', async (t) => {
  const components = new SchemaComponents()
  const raw = Type.Unsafe<unknown>({
    type: 'object',
    const: { type: 'Date', $ref: '#' },
    enum: [{ $id: 'x', type: 'Date' }],
    examples: [{ type: 'Date' }],
    example: { $ref: '#', definitions: { a: {} } },
    nullable: null
  } as Record<string, unknown>)
  t.same(components.convert(raw), JSON.parse(JSON.stringify(raw)))
  t.same(components.schemas, {})
})

t.test('names in patternProperties and dependentSchemas are the app\'s; schemas in arrays are converted', async (t) => {
  const components = new SchemaComponents()
  const raw = Type.Unsafe<unknown>({
    type: 'object',
    patternProperties: { $defs: { type: 'string' } },
    dependentSchemas: { definitions: { type: 'object' } },
    anyOf: [Type.Date(), Type.Null()]
  })
  t.same(components.convert(raw), {
    type: 'object',
    patternProperties: { $defs: { type: 'string' } },
    dependentSchemas: { definitions: { type: 'object' } },
    anyOf: [{ not: {}, 'x-typebox-type': 'Date' }, { type: 'null' }]
  })
})

t.test('a schema converted again after another with its id keeps its key; local definitions leave the copy', async (t) => {
  const components = new SchemaComponents()
  const A = Type.Recursive((This) => Type.Object({ a: Type.Array(This) }), { $id: 'Node' })
  const B = Type.Recursive((This) => Type.Object({ b: Type.Optional(This) }), { $id: 'Node' })
  components.convert(A)
  components.convert(B)
  const again = components.convert(A)
  t.same((again.properties as { a: { items: unknown } }).a.items, { $ref: '#/components/schemas/Node' })
  t.same(Object.keys(components.schemas), ['Node', 'Node_2'])
  const local = components.convert(Type.Unsafe<unknown>({ type: 'array', items: { $ref: '#/definitions/Item' }, definitions: { Item: { type: 'string' } } }))
  t.same(local, { type: 'array', items: { $ref: '#/components/schemas/Item' } })
})

t.test('KeySpace: a key wanted again is numbered from 2, skipping keys taken otherwise; reserved keys are never given', async (t) => {
  const keys = new KeySpace(['protocol'])
  t.equal(keys.take('protocol'), 'protocol_2')
  t.same(['a', 'a_2', 'a', 'a', 'a_3'].map((base) => keys.take(base)), ['a', 'a_2', 'a_3', 'a_4', 'a_3_2'])
  t.equal(keys.size, 7)
  t.equal(keyOf('receive_chat message/ü'), 'receive_chat_message_')
})
