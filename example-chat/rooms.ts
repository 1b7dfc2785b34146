/**
 * The chat's memory on this node: which of its sockets are in each room (the rooms active
 * here). Who is in a room, over every node, comes from presence (see server.ts); the rooms'
 * lines are not kept here: they are the plugin's channel history.
 */

interface Room {
  /** session id → nick, in join order */
  members: Map<string, string>
}

export class Rooms {
  private readonly rooms = new Map<string, Room>()

  private room (name: string): Room {
    let room = this.rooms.get(name)
    if (room === undefined) this.rooms.set(name, room = { members: new Map() })
    return room
  }

  /** the nicks in `name`, sorted for display */
  members (name: string): string[] {
    return [...this.rooms.get(name)?.members.values() ?? []].sort((a, b) => a.localeCompare(b))
  }

  join (name: string, sessionId: string, nick: string): void {
    this.room(name).members.set(sessionId, nick)
  }

  /** Takes `sessionId` out of `name`; returns the nick it had there, if it was there. */
  leave (name: string, sessionId: string): string | undefined {
    const room = this.rooms.get(name)
    const nick = room?.members.get(sessionId)
    room?.members.delete(sessionId)
    if (room !== undefined && room.members.size === 0) this.rooms.delete(name)
    return nick
  }

  /** Takes `sessionId` out of every room (a safety net once a connection is finished). */
  forget (sessionId: string): void {
    for (const name of [...this.rooms.keys()]) this.leave(name, sessionId)
  }

  rename (name: string, sessionId: string, nick: string): void {
    const room = this.rooms.get(name)
    if (room?.members.has(sessionId) === true) room.members.set(sessionId, nick)
  }

  /** rooms with someone in them, with their head counts */
  active (): Map<string, number> {
    const counts = new Map<string, number>()
    for (const [name, room] of this.rooms) if (room.members.size > 0) counts.set(name, room.members.size)
    return counts
  }
}
