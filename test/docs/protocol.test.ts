/**
 * docs/protocol.md is the whole protocol for a client written in another language, so it is
 * checked against the protocol's own schemas, walked programmatically: a frame type or a field
 * added to `ClientFrame` or `ServerFrame` later fails this test until it is documented.
 *
 * - Under "Client → server" and "Server → client", one `### \`type\`` section per frame type of
 *   that direction, and no other.
 * - In that section's table, one row per field at any depth (`since.epoch`, `errors[].path`,
 *   `state.<key>[].ref`) and no other, with the field's type, whether it is required, and
 *   every bound of its schema (minLength, maximum, ...).
 * - Every example frame in the section's ```json block passes the frame's schema and the
 *   decoder of its direction; every section has one.
 * - The error-code table lists exactly `ErrorCodes`; the close-code table every `CloseCodes` value.
 */
import t from 'tap'
import { Kind, OptionalKind, type TSchema } from '@sinclair/typebox'
import { Check } from '@sinclair/typebox/value'
import { ClientFrame, CloseCodes, ErrorCodes, PROTOCOL_VERSION, ServerFrame } from '../../schemas/protocol.js'
import { decodeClientFrame } from '../../schemas/codec.js'
import { decodeServerFrame } from '../../schemas/server-frames.js'
import { fencedLines, leadingCode, mentionsNumber, readDoc, section, sections, tableRows } from './markdown.js'

type Schema = TSchema & Record<string | symbol, unknown>

const doc = readDoc('docs/protocol.md')

interface Field {
  /** `channel`, `since.epoch`, `errors[].path`, `state.<key>[].ref` */
  path: string
  schema: Schema
  required: boolean
}

/** Every field of an object schema, nested ones included, in document order. */
function fieldsOf (schema: Schema, prefix = ''): Field[] {
  const required = new Set((schema.required as string[] | undefined) ?? [])
  return Object.entries(schema.properties as Record<string, Schema>).flatMap(([key, property]) => [
    { path: prefix + key, schema: property, required: required.has(key) && property[OptionalKind] !== 'Optional' },
    ...nestedFields(property, prefix + key)
  ])
}

function nestedFields (schema: Schema, path: string): Field[] {
  switch (schema[Kind]) {
    case 'Object': return fieldsOf(schema, `${path}.`)
    case 'Array': return nestedFields(schema.items as Schema, `${path}[]`)
    case 'Record': return nestedFields(Object.values(schema.patternProperties as Record<string, Schema>)[0], `${path}.<key>`)
    default: return []
  }
}

/** How the type column names a schema's kind. */
function typeWord (schema: Schema): string {
  switch (schema[Kind]) {
    case 'Literal': return `\`${JSON.stringify(schema.const)}\``
    case 'String': return 'string'
    case 'Integer': return 'integer'
    case 'Number': return 'number'
    case 'Boolean': return 'boolean'
    case 'Unknown': return 'any JSON'
    case 'Object': case 'Record': return 'object'
    case 'Array': return 'array'
    default: throw new Error(`teach protocol.test.ts how the docs name a ${String(schema[Kind])} field`)
  }
}

const boundKeywords = ['minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems'] as const

/** The frame types of a union, each with its schema. */
function frameTypes (union: TSchema): Map<string, Schema> {
  return new Map((union.anyOf as Schema[]).map((member) => {
    const type = (member.properties as Record<string, Schema>).type.const
    if (typeof type !== 'string') throw new Error('a frame schema without a literal type')
    return [type, member]
  }))
}

const directions = [
  { heading: 'Client → server', frames: frameTypes(ClientFrame), decode: decodeClientFrame },
  { heading: 'Server → client', frames: frameTypes(ServerFrame), decode: decodeServerFrame }
]

for (const { heading, frames, decode } of directions) {
  const documented = new Map(sections(section(doc, 2, heading).body, 3).map((s) => [leadingCode(s.heading), s]))

  t.test(`${heading}: one section per frame type`, async (t) => {
    t.same([...documented.keys()].sort(), [...frames.keys()].sort(), `the ### \`type\` sections under "## ${heading}"`)
  })

  for (const [type, schema] of frames) {
    const part = documented.get(type)
    if (part === undefined) continue // reported above

    t.test(`${heading} \`${type}\`: a table row for every field, exact`, async (t) => {
      const rows = new Map(tableRows(part.body).map((cells) => [leadingCode(cells[0]) ?? cells[0], cells]))
      const fields = fieldsOf(schema)
      t.same([...rows.keys()], fields.map((field) => field.path), 'the rows name the fields, in schema order')
      for (const field of fields) {
        const cells = rows.get(field.path)
        if (cells === undefined) continue // reported above
        const [, typeCell = '', requiredCell = '', meaning = ''] = cells
        t.ok(typeCell.includes(typeWord(field.schema)), `${field.path}: the type column says ${typeWord(field.schema)} (it says "${typeCell}")`)
        t.equal(requiredCell, field.required ? 'yes' : 'no', `${field.path}: required column`)
        for (const keyword of boundKeywords) {
          const bound = field.schema[keyword]
          if (typeof bound !== 'number') continue
          t.ok(mentionsNumber(`${typeCell} ${meaning}`, bound), `${field.path}: its ${keyword} ${bound} is stated`)
        }
        if (field.path !== 'type') t.not(meaning, '', `${field.path}: has a meaning`)
      }
    })

    t.test(`${heading} \`${type}\`: every example passes the schema`, async (t) => {
      const examples = fencedLines(part.body, 'json')
      t.ok(examples.length > 0, 'the section shows at least one example frame')
      for (const line of examples) {
        const frame = JSON.parse(line) as { type?: unknown, protocol?: unknown }
        t.equal(frame.type, type, `${line}: a ${type} frame`)
        t.ok(Check(schema, frame), `${line}: passes the ${type} schema`)
        t.ok(decode(line).ok, `${line}: decoded by the ${heading} decoder`)
        if (type === 'welcome') t.equal(frame.protocol, PROTOCOL_VERSION, 'the welcome example names this protocol version')
      }
    })
  }
}

t.test('the error-code table lists exactly the protocol\'s error codes', async (t) => {
  const codes = tableRows(section(doc, 2, 'Error codes').body).map((cells) => leadingCode(cells[0]))
  t.same(codes, [...ErrorCodes], 'one row per code, in the order of ErrorCodes')
})

t.test('the close-code table lists every close code the server uses', async (t) => {
  const codes = new Set(tableRows(section(doc, 2, 'Close codes').body).map((cells) => Number(cells[0])))
  for (const [name, code] of Object.entries(CloseCodes)) t.ok(codes.has(code), `${code} (${name}) has a row`)
})

t.test('the walk itself: fields of every depth are found', async (t) => {
  // If the schema walk stopped finding nested fields, every check above would pass vacuously.
  const subscribe = fieldsOf(frameTypes(ClientFrame).get('subscribe') as Schema).map((field) => field.path)
  t.ok(subscribe.includes('since.session'), 'an object inside a frame')
  const error = fieldsOf(frameTypes(ServerFrame).get('error') as Schema).map((field) => field.path)
  t.ok(error.includes('errors[].path'), 'an array of objects')
  const presence = fieldsOf(frameTypes(ServerFrame).get('presence') as Schema)
  t.same(presence.map((field) => field.path), ['type', 'channel', 'state', 'state.<key>[].ref', 'state.<key>[].meta'], 'a record of arrays of objects')
  t.same(presence.map((field) => field.required), [true, true, true, true, true])
  t.equal(fieldsOf(frameTypes(ClientFrame).get('ping') as Schema).find((field) => field.path === 'id')?.required, false, 'an optional field')
})
