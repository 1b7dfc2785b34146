/**
 * Tiny run-time checks, the browser's stand-in for TypeBox's compiler: a few hundred bytes
 * instead of ~25 KB gzipped. Each builder returns a `Guard`; `fields({...})` combines them into
 * the check of one object. They mirror the TypeBox keywords the protocol uses (an optional key
 * may be absent or undefined; extra keys are allowed, as in a TypeBox object).
 */
export type Guard = (value: unknown) => boolean

/** Any value (TypeBox's `Unknown`). */
export const anything: Guard = () => true

/** A string of `min` to `max` UTF-16 code units (TypeBox's `String({ minLength, maxLength })`). */
export const text = (min = 0, max = Infinity): Guard =>
  (value) => typeof value === 'string' && value.length >= min && value.length <= max

/** An integer from `min` to `max` (TypeBox's `Integer({ minimum, maximum })`). */
export const integer = (min = -Infinity, max = Infinity): Guard =>
  (value) => Number.isInteger(value) && (value as number) >= min && (value as number) <= max

export const boolean: Guard = (value) => typeof value === 'boolean'

/** Exactly `literal` (TypeBox's `Literal`). */
export const exactly = (literal: string | number | boolean): Guard => (value) => value === literal

/** A key that may be missing (TypeBox's `Optional`). */
export const optional = (guard: Guard): Guard => (value) => value === undefined || guard(value)

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** An array whose every item passes `item` (TypeBox's `Array`). */
export const arrayOf = (item: Guard): Guard => (value) => Array.isArray(value) && value.every(item)

/** An object whose every own value passes `item` (TypeBox's `Record(String(), item)`). */
export const recordOf = (item: Guard): Guard =>
  (value) => isObject(value) && Object.values(value).every(item)

/** An object whose listed keys pass their guards; other keys are allowed (TypeBox's `Object`). */
export const fields = (guards: Readonly<Record<string, Guard>>): Guard => {
  const entries = Object.entries(guards)
  return (value) => isObject(value) && entries.every(([key, guard]) => guard(Object.hasOwn(value, key) ? value[key] : undefined))
}
