/**
 * The chat's memory on this node: which of its sockets are in each room (the rooms active
 * here), and since when. Who is in a room, over every node, comes from presence (see
 * server.ts); the rooms' lines are not kept here: they are the plugin's channel history.
 */

/** One socket in one room. */
export interface Seat {
  nick: string
  /** when the socket joined the room (ms since the epoch); a rename keeps it */
  since: number
}

export class Rooms {
  /** room → session id → seat, in join order */
  private readonly rooms = new Map<string, Map<string, Seat>>()

  /** the nicks in `name`, sorted for display */
  members (name: string): string[] {
    return [...this.rooms.get(name)?.values() ?? []].map((seat) => seat.nick).sort((a, b) => a.localeCompare(b))
  }

  /** Seats `sessionId` in `name` (now, unless it sits there already); returns its seat. */
  join (name: string, sessionId: string, nick: string, now = Date.now()): Seat {
    let room = this.rooms.get(name)
    if (room === undefined) this.rooms.set(name, room = new Map())
    let seat = room.get(sessionId)
    if (seat === undefined) room.set(sessionId, seat = { nick, since: now })
    else seat.nick = nick
    return seat
  }

  seat (name: string, sessionId: string): Seat | undefined {
    return this.rooms.get(name)?.get(sessionId)
  }

  /** Takes `sessionId` out of `name`; returns the seat it had there, if it was there. */
  leave (name: string, sessionId: string): Seat | undefined {
    const room = this.rooms.get(name)
    const seat = room?.get(sessionId)
    room?.delete(sessionId)
    if (room !== undefined && room.size === 0) this.rooms.delete(name)
    return seat
  }

  /** Takes `sessionId` out of every room (a safety net once a connection is finished). */
  forget (sessionId: string): void {
    for (const name of [...this.rooms.keys()]) this.leave(name, sessionId)
  }

  rename (name: string, sessionId: string, nick: string): void {
    const seat = this.rooms.get(name)?.get(sessionId)
    if (seat !== undefined) seat.nick = nick
  }

  /** rooms with someone in them, with their head counts */
  active (): Map<string, number> {
    const counts = new Map<string, number>()
    for (const [name, room] of this.rooms) if (room.size > 0) counts.set(name, room.size)
    return counts
  }
}
