/**
 * Channel-name rules, shared by the server (which answers INVALID_CHANNEL) and the client
 * (which can refuse a bad name before sending it).
 */
export const MAX_CHANNEL_LENGTH = 200

// C0 controls, DEL, C1 controls, and everything JavaScript's `\s` matches.
// eslint-disable-next-line no-control-regex
const forbiddenInChannel = /[\u0000-\u001f\u007f-\u009f\s]/u

// A surrogate code unit without its partner (with the `u` flag a well-formed pair is one code
// point and does not match). Names cross Redis as UTF-8, which turns every lone surrogate into
// U+FFFD: 'room-\uD800', 'room-\uDBFF' and 'room-\uFFFD' would become one Redis channel.
const loneSurrogate = /\p{Cs}/u

/** Why `name` is not a valid channel name, or `undefined` when it is one. */
export function channelNameProblem (name: unknown): string | undefined {
  if (typeof name !== 'string') return 'channel must be a string'
  if (name.length === 0) return 'channel must not be empty'
  if (name.length > MAX_CHANNEL_LENGTH) return `channel must be at most ${MAX_CHANNEL_LENGTH} characters`
  if (forbiddenInChannel.test(name)) return 'channel must not contain control or white-space characters'
  if (loneSurrogate.test(name)) return 'channel must be well-formed Unicode (no lone surrogate)'
  return undefined
}

export function isValidChannelName (name: unknown): name is string {
  return channelNameProblem(name) === undefined
}
