/**
 * Puts the history stream's republished entries back in the order of their offsets, per channel,
 * before the core gets them. The stream stores a channel's entries in offset order, but nats-server
 * may hand two entries stored at nearly the same moment (two nodes appending at once) to its
 * republish out of that order under load; a subscriber that went on would see offset 53 before 52,
 * and the bundled client drops an offset at or below the last it saw: 52 would be lost to it.
 *
 * Owns: per channel subject, the epoch and last offset handed on, and the entries held because
 * one before them has not come yet. Imports nothing of the engine: the transport feeds it.
 *
 * Per channel:
 *
 *   in order ──an offset past the next one──▶ holding ──the missing one came, or reorderWindowMs──▶ in order
 *
 * - An entry of a new epoch (or the first the node sees of a channel) is handed on at once and sets
 *   the position.
 * - The next offset is handed on at once, with whatever held entries follow it without a gap.
 * - An offset past the next one is held, at most `reorderWindowMs`: a real gap (an entry the node
 *   dropped as late never comes, a void entry's offset is taken again) must not stall the channel.
 *   When the window ends, the held entries go on in offset order.
 * - An offset at or below the last one handed on goes on at once: the receiver decides about it.
 * - An entry this node dropped (it came after its deadline) still counts as come: `skip()`.
 */

/** how long an entry waits for the ones before it, in ms: far above the reordering seen (a few ms) */
export const reorderWindowMs = 200
/** the most entries held per channel: past it, the held ones go on at once */
export const mostHeld = 1000

interface Held {
  offset: number
  envelope: string
}

interface ChannelOrder {
  epoch: string
  /** the last offset handed on (or skipped) */
  last: number
  held: Held[]
  timer: NodeJS.Timeout | undefined
}

export class HistoryOrder {
  private readonly channels = new Map<string, ChannelOrder>()

  constructor (private readonly deliver: (envelope: string) => void, private readonly windowMs = reorderWindowMs) {}

  /** An entry of `subject` (a channel's history subject) at `epoch` and `offset`. */
  receive (subject: string, epoch: string, offset: number, envelope: string): void {
    const order = this.channels.get(subject)
    if (order === undefined || order.epoch !== epoch) {
      if (order !== undefined) this.release(order)
      this.channels.set(subject, { epoch, last: offset, held: [], timer: undefined })
      this.deliver(envelope)
      return
    }
    if (offset <= order.last) {
      this.deliver(envelope)
      return
    }
    if (offset === order.last + 1) {
      order.last = offset
      this.deliver(envelope)
      this.drain(order)
      return
    }
    this.hold(order, { offset, envelope })
  }

  /** An entry of `subject` this node will not deliver (it came too late) still fills its place. */
  skip (subject: string, epoch: string, offset: number): void {
    const order = this.channels.get(subject)
    if (order === undefined || order.epoch !== epoch || offset !== order.last + 1) return
    order.last = offset
    this.drain(order)
  }

  /** The node no longer listens to `subject`: what is held goes on, and its position is forgotten. */
  forget (subject: string): void {
    const order = this.channels.get(subject)
    if (order === undefined) return
    this.channels.delete(subject)
    this.release(order)
  }

  /** Everything held goes on, every position is forgotten (a close). */
  clear (): void {
    for (const subject of [...this.channels.keys()]) this.forget(subject)
  }

  /** Entries held now, over every channel. */
  get holding (): number {
    let count = 0
    for (const order of this.channels.values()) count += order.held.length
    return count
  }

  private hold (order: ChannelOrder, entry: Held): void {
    const at = order.held.findIndex((held) => held.offset >= entry.offset)
    if (at === -1) order.held.push(entry)
    else order.held.splice(at, 0, entry)
    if (order.held.length > mostHeld) {
      this.release(order)
      return
    }
    // every way out of holding (drained, released, forgotten, a new epoch) stops the window
    order.timer ??= setTimeout(() => {
      order.timer = undefined
      this.release(order)
    }, this.windowMs)
  }

  /** Hands on the held entries that follow the last one without a gap; stops the window when none is left. */
  private drain (order: ChannelOrder): void {
    while (order.held.length > 0 && order.held[0].offset <= order.last + 1) {
      const next = order.held.shift()!
      order.last = Math.max(order.last, next.offset)
      this.deliver(next.envelope)
    }
    if (order.held.length === 0) this.stopWindow(order)
  }

  /** The window ended (or the channel is left): every held entry goes on, in offset order. */
  private release (order: ChannelOrder): void {
    this.stopWindow(order)
    const held = order.held
    order.held = []
    for (const entry of held) {
      order.last = Math.max(order.last, entry.offset)
      this.deliver(entry.envelope)
    }
  }

  private stopWindow (order: ChannelOrder): void {
    if (order.timer !== undefined) clearTimeout(order.timer)
    order.timer = undefined
  }
}
