/**
 * schemas/server-frames.ts: the client's hand-written guards accept exactly the server frames
 * the TypeBox schemas accept. Candidates are derived from the schemas themselves (boundary
 * values of every keyword, every field missing or of every JSON kind, nested arrays and
 * objects, then seeded random combinations), so a new frame type or field is covered as soon
 * as it is in `ServerFrame`: no sample list to keep in step.
 */
import t from 'tap'
import { Kind, type TSchema } from '@sinclair/typebox'
import { Check } from '@sinclair/typebox/value'
import { ServerFrame } from '../../schemas/protocol.js'
import { decodeServerFrame, serverFrameChecks, serverFrameFields } from '../../schemas/server-frames.js'

type Schema = TSchema & Record<string, unknown>

const anyJson: unknown[] = [
  null, true, false, 0, 1, -1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER, '', 'a', 'welcome',
  [], ['a'], {}, { a: 1 }, [{}]
]

/** Values around every constraint of `schema`, plus one of every JSON kind. */
function samples (schema: Schema, depth = 0): unknown[] {
  const values = [...anyJson]
  const kind = schema[Kind] as string
  const add = (...more: unknown[]): void => { values.push(...more) }
  if (kind === 'String') {
    const min = (schema.minLength as number | undefined) ?? 0
    const max = schema.maxLength as number | undefined
    add('x'.repeat(min), 'x'.repeat(min + 1))
    if (min > 0) add('x'.repeat(min - 1))
    if (max !== undefined) add('x'.repeat(max), 'x'.repeat(max + 1))
  } else if (kind === 'Integer' || kind === 'Number') {
    for (const bound of [schema.minimum, schema.maximum] as Array<number | undefined>) {
      if (bound !== undefined) add(bound - 1, bound, bound + 1, bound + 0.5)
    }
  } else if (kind === 'Literal') {
    add(schema.const, typeof schema.const === 'string' ? `${schema.const}x` : String(schema.const))
  } else if (kind === 'Union') {
    for (const member of schema.anyOf as Schema[]) add(...samples(member, depth))
  } else if (depth < 3 && kind === 'Array') {
    const items = samples(schema.items as Schema, depth + 1)
    add(...items.map((item) => [item]), items.slice(0, 6))
  } else if (depth < 3 && kind === 'Object') {
    add(...objectsLike(schema, depth + 1))
  } else if (depth < 3 && kind === 'Record') {
    const [valueSchema] = Object.values(schema.patternProperties as Record<string, Schema>)
    add(...samples(valueSchema, depth + 1).map((value) => ({ key: value })))
  }
  return values
}

/** One valid value of `schema`, taken from its own samples. */
function validValue (schema: Schema, where: string): unknown {
  const found = samples(schema).find((value) => Check(schema, value))
  if (found === undefined) throw new Error(`no valid sample for ${where}: teach samples() its keyword`)
  return found
}

/** A valid object of `schema` with every field, without its optional ones, and one per field changed or removed. */
function objectsLike (schema: Schema, depth: number): Array<Record<string, unknown>> {
  const properties = schema.properties as Record<string, Schema>
  const full = Object.fromEntries(Object.entries(properties).map(([key, property]) => [key, validValue(property, key)]))
  const required = new Set((schema.required as string[] | undefined) ?? [])
  const bare = Object.fromEntries(Object.entries(full).filter(([key]) => required.has(key)))
  const objects = [full, bare, { ...full, extra: 'ignored' }]
  for (const [key, property] of Object.entries(properties)) {
    const { [key]: _removed, ...without } = full
    objects.push(without)
    for (const value of samples(property, depth)) objects.push({ ...full, [key]: value })
  }
  return objects
}

/** A seeded PRNG (mulberry32), so a failure replays. */
function random (seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const members = (ServerFrame.anyOf as Schema[]).map((schema) => {
  const type = (schema.properties as Record<string, Schema>).type.const as string
  return { type, schema }
})

t.test('every server frame type of the protocol has a guard, and no guard is for a type it lacks', async (t) => {
  t.same(Object.keys(serverFrameFields).sort(), members.map((member) => member.type).sort())
  t.same(Object.keys(serverFrameChecks).sort(), members.map((member) => member.type).sort())
})

for (const { type, schema } of members) {
  t.test(`${type}: the guard and the TypeBox schema agree on every candidate`, async (t) => {
    const candidates: unknown[] = [...objectsLike(schema, 0)]
    const properties = schema.properties as Record<string, Schema>
    const pick = random(type.length * 7919)
    for (let i = 0; i < 300; i++) {
      const frame: Record<string, unknown> = {}
      for (const [key, property] of Object.entries(properties)) {
        const options = samples(property)
        const roll = pick()
        if (roll < 0.15) continue // missing
        frame[key] = roll < 0.6 ? validValue(property, key) : options[Math.floor(pick() * options.length)]
      }
      candidates.push(frame)
    }
    const disagreements: string[] = []
    let valid = 0
    for (const frame of candidates) {
      const expected = Check(schema, frame)
      if (expected) valid++
      if (serverFrameChecks[type](frame) !== expected) {
        disagreements.push(`${JSON.stringify(frame)}: TypeBox says ${expected ? 'valid' : 'invalid'}`)
      }
      // And through the decoder, as the client meets it: text, dispatched on its type.
      const text = JSON.stringify(frame)
      if (decodeServerFrame(text).ok !== Check(ServerFrame, JSON.parse(text))) disagreements.push(`decoding ${text}`)
    }
    t.same(disagreements, [], `${candidates.length} candidates`)
    t.ok(valid >= 3 && candidates.length - valid >= 10, `both kinds are tried: ${valid} valid, ${candidates.length - valid} invalid`)
  })
}

t.test('decodeServerFrame dispatches on type and reports malformed frames with their id', async (t) => {
  t.same(decodeServerFrame('{"type":"ack","id":4,"data":[1]}'), { ok: true, frame: { type: 'ack', id: 4, data: [1] } })
  t.match(decodeServerFrame('{"type":"ack","id":4.5}'), { ok: false, code: 'BAD_FRAME', message: /malformed ack/ })
  t.match(decodeServerFrame('{"type":"error","id":9,"code":"","message":"m"}'), { ok: false, message: /malformed error/, id: 9 })
  t.match(decodeServerFrame('{"type":"hasOwnProperty"}'), { ok: false, message: /unknown frame type/ })
  t.match(decodeServerFrame('{"type":"subscribe","channel":"x"}'), { ok: false, message: /unknown frame type/ })
  t.match(decodeServerFrame('{"type":"welcome","sessionId":"s","protocol":1,"__proto__":{}}'), { ok: false, message: /forbidden key/ })
})
