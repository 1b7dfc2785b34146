/**
 * The presence envelope: what a node publishes on a channel's Redis channel when tracks change
 * (see redis-presence.ts). One line per field; keys travel as JSON, metas as the JSON text they
 * already are, so nothing contains a raw line feed:
 *
 *   p \n nodeId \n channel \n L \n ref1 … refL \n (ref \n key as JSON \n meta) per join
 */
import type { PresenceChanges, PresenceTrack } from '../types.js'

export interface PresenceEnvelope {
  nodeId: string
  channel: string
  changes: PresenceChanges
}

export function encodePresenceEnvelope (nodeId: string, channel: string, { joins, leaves }: PresenceChanges): string {
  const lines = ['p', nodeId, channel, String(leaves.length), ...leaves]
  for (const { ref, key, meta } of joins) lines.push(ref, JSON.stringify(key), meta)
  return lines.join('\n')
}

/** `undefined` for text that is not a well-formed presence envelope. */
export function decodePresenceEnvelope (text: string): PresenceEnvelope | undefined {
  const lines = text.split('\n')
  const count = Number(lines[3])
  if (lines[0] !== 'p' || lines.length < 4 || !Number.isSafeInteger(count) || count < 0) return undefined
  const start = 4 + count
  if (start > lines.length || (lines.length - start) % 3 !== 0) return undefined
  const joins: PresenceTrack[] = []
  try {
    for (let i = start; i < lines.length; i += 3) joins.push({ ref: lines[i], key: JSON.parse(lines[i + 1]) as string, meta: lines[i + 2] })
  } catch {
    return undefined
  }
  return { nodeId: lines[1], channel: lines[2], changes: { joins, leaves: lines.slice(4, start) } }
}
