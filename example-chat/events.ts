/**
 * Every event of the chat, as TypeBox schemas: the server validates with them and the page's
 * client is typed by them (`ChatEvents`), so neither side can drift from the other.
 */
import { Type } from '@sinclair/typebox'
import type { EventMap } from '../schemas/events.js'

/** Room names are channel names: lowercase words joined by dashes; `private-*` rooms need the password. */
export const roomPattern = /^[a-z0-9]+(?:-[a-z0-9]+)*$/
export const maxRoomLength = 32
export const privatePrefix = 'private-'

export const RoomName = Type.String({ minLength: 1, maxLength: maxRoomLength, pattern: roomPattern.source })
/** 1–24 characters, no white space at either end. */
export const Nick = Type.String({ minLength: 1, maxLength: 24, pattern: '^\\S(?:.*\\S)?$' })
/** 1–500 characters, at least one of them not white space. */
export const Text = Type.String({ minLength: 1, maxLength: 500, pattern: '\\S' })

// ---- client → server
export const SetNick = Type.Object({ nick: Nick }, { additionalProperties: false })
export const Unlock = Type.Object({ room: RoomName, password: Type.String({ maxLength: 200 }) }, { additionalProperties: false })
export const ChatMessage = Type.Object({ text: Text }, { additionalProperties: false })
export const Ok = Type.Object({ ok: Type.Literal(true) })

// ---- server → client
export const ChatLine = Type.Object({ nick: Nick, text: Type.String(), at: Type.Number() })
export const Announcement = Type.Object({ text: Type.String(), at: Type.Number() })
/**
 * `renamed`: a rename is said in the room and kept in its history (later lines carry the new
 * nick). Who comes and goes is not: the pages tell it from presence, live, and history keeps
 * no join or leave lines.
 */
export const Renamed = Type.Object({ from: Type.String(), to: Type.String() })
/**
 * The presence meta of each device of a member: its nick, and since when it is in the room
 * (a rename keeps it, so a page can tell a rename from a leave and a join).
 */
export const MemberMeta = Type.Object({ nick: Type.String(), since: Type.Number() })

export const chatEvents = {
  nick: { send: SetNick, reply: SetNick },
  unlock: { send: Unlock, reply: Ok },
  chat: { send: ChatMessage, receive: ChatLine, reply: Ok },
  renamed: { receive: Renamed },
  announce: { receive: Announcement }
}
export type ChatEvents = EventMap<typeof chatEvents>

// ---- HTTP
export const RoomParams = Type.Object({ room: RoomName })
export const AnnounceBody = Type.Object({ text: Text }, { additionalProperties: false })
/** `GET /rooms/:room/history`: the room's stream position and its last publications. */
export const RoomHistory = Type.Object({
  epoch: Type.String(),
  offset: Type.Integer(),
  messages: Type.Array(Type.Object({ offset: Type.Integer(), event: Type.String(), data: Type.Unknown() }))
})
export const RoomList = Type.Object({
  rooms: Type.Array(Type.Object({ name: Type.String(), members: Type.Integer(), private: Type.Boolean() }))
})
