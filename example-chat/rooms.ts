/**
 * The chat's memory on this node: which of its sockets are in each room (the rooms active
 * here) and each room's recent history. In-process, so with a Redis broker each node keeps its
 * own history (a real app would keep it in Redis); who is in a room, over every node, comes
 * from presence (see server.ts).
 */
import type { Static } from '@sinclair/typebox'
import type { Announcement, ChatLine } from './events.js'

export type HistoryItem = Static<typeof ChatLine> | Static<typeof Announcement>

interface Room {
  /** session id → nick, in join order */
  members: Map<string, string>
  history: HistoryItem[]
}

export class Rooms {
  private readonly rooms = new Map<string, Room>()

  constructor (private readonly historySize: number) {}

  private room (name: string): Room {
    let room = this.rooms.get(name)
    if (room === undefined) this.rooms.set(name, room = { members: new Map(), history: [] })
    return room
  }

  /** the nicks in `name`, sorted for display */
  members (name: string): string[] {
    return [...this.rooms.get(name)?.members.values() ?? []].sort((a, b) => a.localeCompare(b))
  }

  history (name: string): HistoryItem[] {
    return [...this.rooms.get(name)?.history ?? []]
  }

  join (name: string, sessionId: string, nick: string): void {
    this.room(name).members.set(sessionId, nick)
  }

  /** Takes `sessionId` out of `name`; returns the nick it had there, if it was there. */
  leave (name: string, sessionId: string): string | undefined {
    const room = this.rooms.get(name)
    const nick = room?.members.get(sessionId)
    room?.members.delete(sessionId)
    if (room !== undefined && room.members.size === 0 && room.history.length === 0) this.rooms.delete(name)
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

  record (name: string, item: HistoryItem): void {
    const { history } = this.room(name)
    history.push(item)
    if (history.length > this.historySize) history.splice(0, history.length - this.historySize)
  }

  /** rooms with someone in them, with their head counts */
  active (): Map<string, number> {
    const counts = new Map<string, number>()
    for (const [name, room] of this.rooms) if (room.members.size > 0) counts.set(name, room.members.size)
    return counts
  }
}
