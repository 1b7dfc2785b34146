/**
 * Delivery of one pre-encoded frame to many local sockets. A message is encoded once by the
 * caller and wrapped in one OutboundFrame, whose WebSocket frame is built once and shared by
 * every recipient (see frame-writer.ts); this module only decides who gets which frame.
 * Nothing here allocates per recipient.
 */
import { toOutbound, type OutboundFrame } from './frame-writer.js'

/** What fan-out needs of a connection. */
export interface Recipient {
  readonly id: string
  /** the number of the last multi-channel delivery this recipient got (dedupe without a Set) */
  deliveryStamp: number
  sendFrame (frame: OutboundFrame): void
}

let lastStamp = 0

/** Sends `frame` to every recipient but the one with id `except`; returns how many got it. */
export function deliverToAll (recipients: Iterable<Recipient>, frame: string | OutboundFrame, except?: string): number {
  const outbound = toOutbound(frame)
  let count = 0
  for (const recipient of recipients) {
    if (recipient.id === except) continue
    recipient.sendFrame(outbound)
    count++
  }
  return count
}

/**
 * Sends `frames[i]` to the members of `channels[i]`, each recipient once: one in several of the
 * channels gets the frame of the first of them. Returns how many recipients got a frame.
 */
export function deliverToChannels (
  membersOf: (channel: string) => Iterable<Recipient> | undefined,
  channels: readonly string[],
  frames: ReadonlyArray<string | OutboundFrame>,
  except?: string
): number {
  if (channels.length === 1) {
    const members = membersOf(channels[0])
    return members === undefined ? 0 : deliverToAll(members, frames[0], except)
  }
  const stamp = ++lastStamp
  let count = 0
  for (let i = 0; i < channels.length; i++) {
    const members = membersOf(channels[i])
    if (members === undefined) continue
    let outbound: OutboundFrame | undefined
    for (const recipient of members) {
      if (recipient.deliveryStamp === stamp || recipient.id === except) continue
      recipient.deliveryStamp = stamp
      outbound ??= toOutbound(frames[i])
      recipient.sendFrame(outbound)
      count++
    }
  }
  return count
}
