/**
 * The one place a message frame gets its offset. Frames are encoded once as JSON objects
 * (`{"type":"message",...}`), so the offset is appended as a last key without a re-encode.
 * The Redis broker's Lua script does the same to the same text (see broker/redis-history.ts).
 */
export function withOffset (frame: string, offset: number): string {
  return `${frame.slice(0, -1)},"offset":${offset}}`
}
