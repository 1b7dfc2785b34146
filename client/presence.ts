/**
 * The client's view of presence: per channel, who is there, folded from the server's
 * `presence` frame (the whole state, after every `subscribed`, so also after a reconnect)
 * and its `presence_diff` frames (leaves apply before joins).
 *
 * Listeners get the new state and what changed. A fresh `presence` frame (a resubscription)
 * replaces the state and is reported as the difference from the old one, so a page that
 * renders diffs needs no special case for reconnects.
 */
import type { PresenceDiffFrame, PresenceEntry, PresenceFrame, PresenceState } from '../schemas/protocol.js'

export interface PresenceDiff {
  joins: PresenceState
  leaves: PresenceState
}

export type PresenceListener = (state: PresenceState, diff: PresenceDiff) => void

/** key → ref → entry, so a leave finds its entry at once */
type Members = Map<string, Map<string, PresenceEntry>>

function membersOf (state: PresenceState): Members {
  const members: Members = new Map()
  for (const [key, entries] of Object.entries(state)) {
    const byRef = new Map<string, PresenceEntry>()
    for (const entry of entries) byRef.set(entry.ref, entry)
    if (byRef.size > 0) members.set(key, byRef)
  }
  return members
}

function toState (members: Members): PresenceState {
  const state: PresenceState = {}
  for (const [key, byRef] of members) state[key] = [...byRef.values()]
  return state
}

function add (state: PresenceState, key: string, entry: PresenceEntry): void {
  if (Object.hasOwn(state, key)) state[key].push(entry)
  else state[key] = [entry]
}

/** What is in `from` but not in `to`, by ref. */
function missing (from: Members, to: Members): PresenceState {
  const result: PresenceState = {}
  for (const [key, byRef] of from) {
    for (const [ref, entry] of byRef) if (to.get(key)?.has(ref) !== true) add(result, key, entry)
  }
  return result
}

export class PresenceBook {
  private readonly channels = new Map<string, Members>()
  private readonly listeners = new Map<string, Set<PresenceListener>>()

  /** the current state of `channel`: `{}` when none is known */
  state (channel: string): PresenceState {
    const members = this.channels.get(channel)
    return members === undefined ? {} : toState(members)
  }

  on (channel: string, listener: PresenceListener): () => void {
    let set = this.listeners.get(channel)
    if (set === undefined) this.listeners.set(channel, set = new Set())
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.listeners.get(channel) === set) this.listeners.delete(channel)
    }
  }

  received (frame: PresenceFrame | PresenceDiffFrame, call: (fn: PresenceListener, state: PresenceState, diff: PresenceDiff) => void): void {
    const old = this.channels.get(frame.channel) ?? new Map()
    let diff: PresenceDiff
    if (frame.type === 'presence') {
      const members = membersOf(frame.state)
      diff = { joins: missing(members, old), leaves: missing(old, members) }
      this.channels.set(frame.channel, members)
    } else {
      diff = { joins: frame.joins, leaves: frame.leaves }
      for (const [key, entries] of Object.entries(frame.leaves)) {
        const byRef = old.get(key)
        if (byRef === undefined) continue
        for (const { ref } of entries) byRef.delete(ref)
        if (byRef.size === 0) old.delete(key)
      }
      for (const [key, entries] of Object.entries(frame.joins)) {
        let byRef = old.get(key)
        if (byRef === undefined) old.set(key, byRef = new Map())
        for (const entry of entries) byRef.set(entry.ref, entry)
      }
      this.channels.set(frame.channel, old)
    }
    this.notify(frame.channel, diff, call)
  }

  /** The channel was left (or the client closed): its state is gone, reported as leaves. */
  forget (channel: string, call: (fn: PresenceListener, state: PresenceState, diff: PresenceDiff) => void): void {
    const old = this.channels.get(channel)
    if (old === undefined) return
    this.channels.delete(channel)
    if (old.size > 0) this.notify(channel, { joins: {}, leaves: toState(old) }, call)
  }

  forgetAll (call: (fn: PresenceListener, state: PresenceState, diff: PresenceDiff) => void): void {
    for (const channel of [...this.channels.keys()]) this.forget(channel, call)
  }

  private notify (channel: string, diff: PresenceDiff, call: (fn: PresenceListener, state: PresenceState, diff: PresenceDiff) => void): void {
    const set = this.listeners.get(channel)
    if (set === undefined) return
    const state = this.state(channel)
    for (const listener of [...set]) call(listener, state, diff)
  }
}
