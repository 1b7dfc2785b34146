/**
 * TypeBox schemas as plain JSON Schema for a document (the AsyncAPI one). A TypeBox schema is
 * JSON Schema already, plus what a document cannot carry:
 *
 * - Symbol keys (`[Kind]`, `[Hint]`, `[OptionalKind]`): dropped;
 * - `$id` and `$ref` by bare id: `Type.Recursive` names itself `T0` and points back with
 *   `{ $ref: 'T0' }`, a `Type.Module` import is `{ $defs: {...}, $ref: 'Name' }`, a schema with
 *   its own `$id` is referenced by `Type.Ref`. Inside a bigger document such a `$ref` would be
 *   read as a relative URL. So every referenced schema also goes to the document's
 *   `components.schemas` under a key made from its id, and every `$ref` points there;
 *   `$id` and `$defs` are removed. A payload stays the schema itself, inline;
 * - types JSON cannot hold (`Type.Date`, `Type.Undefined`, `Type.BigInt`...): no JSON value
 *   ever passes them, so they become `{ not: {} }` (an optional such property: "absent"),
 *   with the TypeBox type kept in `x-typebox-type`; `Type.RegExp` becomes a string pattern.
 *
 * A schema that JSON cannot hold at all (a cycle, typically in a `default` or `examples` value,
 * or nesting past `maxSchemaDepth`) is refused with an `UnwritableSchemaError` naming where.
 */
import type { TSchema } from '@sinclair/typebox'

export type JsonSchema = Record<string, unknown>

const componentsPrefix = '#/components/schemas/'
const jsonTypes = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'])

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** Deepest nesting a schema (its data values included) may have: deeper ones are refused, not a stack overflow. */
export const maxSchemaDepth = 1000

/** A schema that cannot be written as JSON; `message` says why and where (a JSON pointer). */
export class UnwritableSchemaError extends Error {
  override name = 'UnwritableSchemaError'
}

/** The objects and arrays being copied, root first, with the key that led to each (for a pointer). */
interface Trail {
  readonly open: Set<object>
  readonly keys: string[]
}

function pointer (keys: readonly string[]): string {
  return keys.map((key) => '/' + key.replace(/~/g, '~0').replace(/\//g, '~1')).join('')
}

/**
 * A JSON copy: string keys only, no functions, undefined or symbols (TypeBox's Kind and Hint).
 * A value reached twice on different paths is copied twice; one that contains itself throws.
 */
function plainCopy (value: unknown, trail: Trail = { open: new Set(), keys: [] }): Json | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value !== 'object') return undefined
  if (trail.open.has(value)) throw new UnwritableSchemaError(`a cycle at ${pointer(trail.keys) || '/'}`)
  if (trail.open.size >= maxSchemaDepth) throw new UnwritableSchemaError(`nested deeper than ${maxSchemaDepth} levels at ${pointer(trail.keys)}`)
  trail.open.add(value)
  let copy: Json[] | Record<string, Json>
  if (Array.isArray(value)) {
    copy = value.map((item, index) => {
      trail.keys.push(String(index))
      const itemCopy = plainCopy(item, trail) ?? null
      trail.keys.pop()
      return itemCopy
    })
  } else {
    copy = {}
    for (const key of Object.keys(value)) {
      trail.keys.push(key)
      const item = plainCopy((value as Record<string, unknown>)[key], trail)
      trail.keys.pop()
      if (item !== undefined) copy[key] = item
    }
  }
  trail.open.delete(value)
  return copy
}

/** Why `schema` cannot be written as JSON (a cycle, too deep), or undefined when it can. */
export function unwritable (schema: unknown): string | undefined {
  try {
    plainCopy(schema)
    return undefined
  } catch (err) {
    if (err instanceof UnwritableSchemaError) return err.message
    throw err
  }
}

function isObject (value: Json | undefined): value is { [key: string]: Json } {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Keywords whose values are data, not schemas: never rewritten. */
const dataKeywords = new Set(['const', 'enum', 'default', 'examples', 'example'])
/** Keywords whose values map names to schemas: the names are the app's (a property may be called "$defs"). */
const schemaMaps = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'])

/** Calls `visit` on every schema object in the tree, data values and the maps that hold schemas aside. */
function walk (node: Json, visit: (object: { [key: string]: Json }) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit)
  } else if (isObject(node)) {
    visit(node)
    for (const key of Object.keys(node)) {
      const value = node[key]
      if (schemaMaps.has(key) && isObject(value)) {
        for (const schema of Object.values(value)) walk(schema, visit)
      } else if (!dataKeywords.has(key)) {
        walk(value, visit)
      }
    }
  }
}

/** `wanted` with every run of characters AsyncAPI keys (^[A-Za-z0-9_.-]+$) do not allow made `_`. */
export function keyOf (wanted: string): string {
  return wanted.replace(/[^A-Za-z0-9_.-]+/g, '_')
}

/**
 * The keys of one map of the document (components, channels, operations and messages): a key
 * wanted twice gets `_2`, `_3`... Each base remembers the next number to try, so n keys wanted
 * alike cost n steps, not n².
 */
export class KeySpace {
  private readonly taken = new Set<string>()
  /** base → the number its next key tries first */
  private readonly next = new Map<string, number>()

  /** `reserved`: fixed keys (such as `protocol`), never given out */
  constructor (reserved: Iterable<string> = []) {
    for (const key of reserved) this.taken.add(key)
  }

  get size (): number {
    return this.taken.size
  }

  /** `base` itself when free, else the first free `base_n` (n ≥ 2); it is taken from now on. */
  take (base: string): string {
    let n = this.next.get(base) ?? 1
    let key = n === 1 ? base : `${base}_${n}`
    while (this.taken.has(key)) key = `${base}_${++n}`
    this.next.set(base, n + 1)
    this.taken.add(key)
    return key
  }
}

/** A components key. */
function componentKey (id: string): string {
  const key = keyOf(id)
  return key.length === 0 ? 'Schema' : key
}

/** The `components.schemas` of one document, filled as schemas are converted. */
export class SchemaComponents {
  readonly schemas: Record<string, JsonSchema> = {}
  /** `$id` → its key, over every schema converted so far (a `Type.Ref` may point at another payload's schema) */
  private readonly keyById = new Map<string, string>()
  /** every key given out so far */
  private readonly keys = new KeySpace()
  /** base key → the JSON of each original schema given a key from it → that key (a reused id or a clash) */
  private readonly keyBySource = new Map<string, Map<string, string>>()

  /** The JSON Schema of `schema`, with its referenced parts registered in `schemas`. */
  convert (schema: TSchema): JsonSchema {
    const root = plainCopy(schema)
    if (!isObject(root)) return {}
    // The ids this schema defines, and the keys they get (a clash with another schema's id gets a new key).
    const scope = new Map<string, string>()
    const named: Array<[string, { [key: string]: Json }]> = []
    walk(root, (node) => {
      if (typeof node.$id === 'string') named.push([node.$id, node])
      for (const defs of [node.$defs, node.definitions]) {
        if (!isObject(defs)) continue
        for (const [name, def] of Object.entries(defs)) {
          if (isObject(def) && typeof def.$id !== 'string') named.push([name, def])
        }
      }
    })
    for (const [id, node] of named) scope.set(id, this.reserve(id, JSON.stringify(node)))
    let rootKey: string | undefined
    const rootRef = (): string => {
      rootKey ??= this.reserve(`Schema${this.keys.size + 1}`, JSON.stringify(root))
      return componentsPrefix + rootKey
    }
    const resolve = (ref: string): string => {
      const local = /^#\/(?:\$defs|definitions)\/([^/]+)(.*)$/.exec(ref)
      if (local !== null && scope.has(local[1])) return componentsPrefix + (scope.get(local[1]) as string) + local[2]
      if (ref === '#') return rootRef()
      if (ref.startsWith('#/')) return rootRef() + ref.slice(1)
      const key = scope.get(ref) ?? this.keyById.get(ref)
      return key === undefined ? ref : componentsPrefix + key
    }
    for (const [id, node] of named) {
      const key = scope.get(id) as string
      if (!(key in this.schemas)) this.schemas[key] = rewrite(node, resolve)
      if (!this.keyById.has(id)) this.keyById.set(id, key)
    }
    const converted = rewrite(root, resolve)
    if (rootKey !== undefined) this.schemas[rootKey] = converted
    return converted
  }

  /** The key for `id`: the one given to the same schema under that id before, else its own key when free, else a numbered one. */
  private reserve (id: string, source: string): string {
    const base = componentKey(id)
    let bySource = this.keyBySource.get(base)
    if (bySource === undefined) this.keyBySource.set(base, bySource = new Map())
    let key = bySource.get(source)
    if (key === undefined) bySource.set(source, key = this.keys.take(base))
    return key
  }
}

/** A converted copy of `node`: no `$id`/`$defs`, `$ref`s resolved, non-JSON types replaced. */
function rewrite (node: Json, resolve: (ref: string) => string): JsonSchema {
  const copy = plainCopy(node)
  if (!isObject(copy)) return {}
  walk(copy, (object) => {
    // Only where they are keywords: a property may be called "$id" in a `properties` map.
    if (typeof object.$id === 'string') delete object.$id
    if (isObject(object.$defs)) delete object.$defs
    if (isObject(object.definitions)) delete object.definitions
    if (typeof object.$ref === 'string') object.$ref = resolve(object.$ref)
    const type = object.type
    if (typeof type !== 'string' || jsonTypes.has(type)) return
    if (type === 'RegExp' && typeof object.source === 'string') {
      object.type = 'string'
      object.pattern = object.source
      delete object.source
      delete object.flags
      return
    }
    delete object.type
    object.not = {}
    object['x-typebox-type'] = type
  })
  return copy
}
