/**
 * How the docs write a plugin option's default (`maxPayload` [`65536`], `origins` [same origin])
 * and what the code resolves it to, for the tests that hold the two together.
 */
import { resolveOptions } from '../../plugin/options.js'
import { sameOriginOnly } from '../../plugin/http/origins.js'

/** A default written as a JS literal in backticks (`'/ws'`, `65536`, `{ max: 100, interval: 1000 }`), as a value. */
export function literal (text: string): unknown {
  const code = /^`(.+)`$/.exec(text)?.[1]
  if (code === undefined) return undefined
  const json = code.replace(/'/g, '"').replace(/([{,]\s*)([A-Za-z_]\w*)\s*:/g, '$1"$2":')
  return JSON.parse(json)
}

/** Defaults a doc may give in words, with the value the code resolves them to. */
export const defaultsInWords: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  broker: { 'in-process memory broker': undefined },
  origins: { 'same origin': sameOriginOnly },
  maxConnections: { unlimited: Infinity },
  user: { none: undefined }
}

/** What `resolveOptions({})` gives for `name`, as the docs state it (`false` for a history that is off). */
export function resolvedDefault (name: string): unknown {
  const value = (resolveOptions({}) as unknown as Record<string, unknown>)[name]
  return name === 'history' && value === undefined ? false : value
}

/** `` `name` [default] `` → name and the default's text (undefined when there is none). */
export function optionCell (cell: string): { name: string, fallback: string | undefined } | undefined {
  const match = /^`([^`]+)`(?: \[(.+?)\])?$/.exec(cell)
  return match === null ? undefined : { name: match[1], fallback: match[2] }
}

/** Checks one documented default; returns what is wrong, or undefined. */
export function defaultProblem (name: string, fallback: string): string | undefined {
  const words = defaultsInWords[name]
  const expected = resolvedDefault(name)
  if (words !== undefined && Object.hasOwn(words, fallback)) {
    return words[fallback] === expected ? undefined : `${name} [${fallback}]: the code's default is ${String(expected)}`
  }
  const value = literal(fallback)
  if (value === undefined) return `${name} [${fallback}]: write the default as a literal in backticks or as one of ${JSON.stringify(Object.keys(words ?? {}))}`
  return JSON.stringify(value) === JSON.stringify(expected) && typeof value === typeof expected
    ? undefined
    : `${name} [${fallback}]: the code's default is ${JSON.stringify(expected)}`
}
