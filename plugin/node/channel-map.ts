/**
 * Which local sockets hold which channel. Channels exist while they have a subscriber:
 * the last one to leave removes the entry, so the map never grows with dead names.
 */
export class ChannelMap<Member> {
  private readonly members = new Map<string, Set<Member>>()
  private held = 0

  /** Adds `member`; true when it is the channel's first local subscriber. */
  add (channel: string, member: Member): boolean {
    const set = this.members.get(channel)
    if (set === undefined) {
      this.members.set(channel, new Set([member]))
      this.held++
      return true
    }
    if (!set.has(member)) this.held++
    set.add(member)
    return false
  }

  /** Removes `member`; true when the channel has no local subscriber left. */
  remove (channel: string, member: Member): boolean {
    const set = this.members.get(channel)
    if (set === undefined || !set.delete(member)) return false
    this.held--
    if (set.size > 0) return false
    this.members.delete(channel)
    return true
  }

  get (channel: string): ReadonlySet<Member> | undefined {
    return this.members.get(channel)
  }

  /** subscriptions held, over every channel (a member of three channels counts three) */
  get subscriptions (): number {
    return this.held
  }

  /** how many channels have a local subscriber */
  get size (): number {
    return this.members.size
  }
}
