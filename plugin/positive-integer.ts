/**
 * The one positive-integer option check, shared by the plugin's options, the history option
 * and the Redis broker's options.
 */
import { InvalidOptionError } from './errors.js'

/** `value` when it is a positive safe integer, `fallback` when undefined; else FST_CHANNELS_INVALID_OPTION. */
export function positiveInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidOptionError(`${name}: expected a positive integer, got ${String(value)}`)
  }
  return value
}
