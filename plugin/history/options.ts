/**
 * The `history` option: which channels keep their last publications (history channels), how
 * many and for how long. Resolved once at registration into a `HistoryPolicy`.
 */
import type { HistoryLimits } from '../broker/types.js'
import { InvalidOptionError } from '../errors.js'
import { channelMatches } from '../handlers.js'
import { positiveInteger } from '../positive-integer.js'
import type { ChannelFilter } from '../types.js'

export const defaultHistorySize = 100
export const defaultHistoryTtl = 300_000
/** An epoch and a top offset outlive a channel's entries by at least this long (SPEC: 24 h). */
export const historyStateTtl = 24 * 60 * 60 * 1000

export interface HistoryOptions {
  /** the history channels: a name or a pattern [every channel] */
  channel?: ChannelFilter
  /** publications kept per channel [100] */
  size?: number
  /** ms a publication is kept [300000] */
  ttl?: number
}

export interface HistoryPolicy extends HistoryLimits {
  /** whether `channel` is a history channel */
  covers (channel: string): boolean
}

const known = new Set(['channel', 'size', 'ttl'])

/** `undefined` when history is off (`false` or absent). */
export function resolveHistory (value: unknown): HistoryPolicy | undefined {
  if (value === undefined || value === false) return undefined
  const options: HistoryOptions = value === true ? {} : value as HistoryOptions
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidOptionError('history: expected true, false or { channel?, size?, ttl? }')
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new InvalidOptionError(`history.${key}: unknown option`)
  }
  let { channel } = options
  if (channel instanceof RegExp) {
    // A `g` or `y` RegExp remembers lastIndex between tests: matching would depend on history.
    if (channel.global || channel.sticky) channel = new RegExp(channel.source, channel.flags.replace(/[gy]/g, ''))
  } else if (channel !== undefined && typeof channel !== 'string') {
    throw new InvalidOptionError('history.channel: expected a string or a RegExp')
  }
  const filter = channel
  return Object.freeze({
    size: positiveInteger('history.size', options.size, defaultHistorySize),
    ttl: positiveInteger('history.ttl', options.ttl, defaultHistoryTtl),
    covers: (name: string) => channelMatches(filter, name)
  })
}
