// @ts-check
/**
 * The chat page. Plain JavaScript, no framework, but type-checked (example-chat/tsconfig.page.json):
 * the client is typed by the same TypeBox schemas the server validates with (../events.ts).
 *
 * What the page remembers across reloads (localStorage): the nickname, the rooms it is in and
 * the open one; the passwords of private rooms only for the tab (sessionStorage). Who joined
 * and who left is told from presence, live: the rooms' history keeps no such lines.
 */
import { connect } from 'fastify-channels/client'

/** @typedef {import('../events.js').ChatEvents} ChatEvents */
/** @typedef {import('fastify-channels/client').ChannelsClient<ChatEvents>} ChatClient */
/** @typedef {import('fastify-channels/client').ChannelsClientError} ClientError */
/** @typedef {import('fastify-channels/client').Status} Status */
/** @typedef {import('fastify-channels/client').PresenceState} PresenceState */
/** @typedef {import('fastify-channels/client').PresenceDiff} PresenceDiff */
/**
 * An item's `offset` is its place in the room's stream (the plugin's channel history); the
 * notices told from presence have none: they are never stored.
 * @typedef {{ kind: 'chat', nick: string, text: string, at: number, offset?: number }
 *   | { kind: 'announce', text: string, at: number, offset?: number }
 *   | { kind: 'notice', text: string, at: number, offset?: number }} Item
 * @typedef {{ nick: string, devices: number }} Member
 * @typedef {{
 *   name: string, joined: boolean, kept: boolean, locked: boolean, items: Item[], unread: number,
 *   members: Member[], fresh: boolean, listed: number, joining?: Promise<boolean>
 * }} Room
 * `kept`: the user is in it (or was, and the page is getting back in): remembered across
 * reloads; `members`: the room's presence while joined; `fresh`: waiting for the whole state
 * that follows a (re)subscription (told quietly, not as comings and goings); `listed`: the
 * head count GET /rooms gave, shown for rooms the page is not in.
 */

/** Lines a page asks for when it joins a room (and reloads when it could not recover). */
const backlog = 50

const maxText = 500
const nickRule = /^\S(?:.*\S)?$/
const roomRule = /^[a-z0-9]+(?:-[a-z0-9]+)*$/
const maxRoom = 32

const state = {
  nick: '',
  active: 'lobby',
  /** @type {Map<string, Room>} */
  rooms: new Map(),
  /** passwords of unlocked private rooms, sent again after every reconnect @type {Map<string, string>} */
  passwords: new Map()
}

/** @type {ChatClient} */
let client

// ---- what the page remembers -----------------------------------------------------------------

const keys = {
  nick: 'channels-chat-nick',
  rooms: 'channels-chat-rooms',
  active: 'channels-chat-room',
  passwords: 'channels-chat-passwords'
}

/**
 * Storage may be off (a private window, a setting): the page then forgets on reload, nothing worse.
 * @param {() => Storage} storage @param {string} key
 */
function recall (storage, key) {
  try {
    return storage().getItem(key)
  } catch {
    return null
  }
}

/** @param {() => Storage} storage @param {string} key @param {string} value */
function keep (storage, key, value) {
  try {
    storage().setItem(key, value)
  } catch {
    // see recall()
  }
}

const local = () => localStorage
const tab = () => sessionStorage

/** @param {unknown} name @returns {name is string} */
const isRoomName = (name) => typeof name === 'string' && name.length <= maxRoom && roomRule.test(name)

/** The rooms the page was in, in their sidebar order; the lobby on a first visit. */
function rememberedRooms () {
  try {
    const saved = JSON.parse(recall(local, keys.rooms) ?? 'null')
    const names = Array.isArray(saved) ? saved.filter(isRoomName) : []
    return names.length > 0 ? [...new Set(names)] : ['lobby']
  } catch {
    return ['lobby']
  }
}

/** @returns {Map<string, string>} */
function rememberedPasswords () {
  try {
    const saved = JSON.parse(recall(tab, keys.passwords) ?? '{}')
    return new Map(Object.entries(saved).filter(([name, password]) => isRoomName(name) && typeof password === 'string'))
  } catch {
    return new Map()
  }
}

/** Writes down the rooms the user is in and the open one. */
function remember () {
  const names = [...state.rooms.values()].filter((r) => r.kept).map((r) => r.name)
  keep(local, keys.rooms, JSON.stringify(names))
  keep(local, keys.active, state.active)
  keep(tab, keys.passwords, JSON.stringify(Object.fromEntries(state.passwords)))
}

// ---- small DOM helpers ---------------------------------------------------------------------

/** @param {string} id */
function $ (id) {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`#${id} is missing`)
  return element
}

/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ ($(id))

/**
 * An element with a class and text (always text: user input never becomes HTML).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {string} [className] @param {string} [text]
 */
function el (tag, className, text) {
  const element = document.createElement(tag)
  if (className) element.className = className
  if (text !== undefined) element.textContent = text
  return element
}

/** Stroke icons, drawn inline (no icon font, no emoji font needed). */
const icons = {
  lock: ['M7 11V8a5 5 0 0 1 10 0v3', 'M5 11h14v10H5z'],
  hash: ['M9 4 7 20', 'M17 4l-2 16', 'M4 9h16', 'M3 15h16'],
  megaphone: ['M3 10v4h3l6 4V6L6 10z', 'M15.5 9a4 4 0 0 1 0 6', 'M18.5 6a8 8 0 0 1 0 12']
}

/** @param {keyof typeof icons} name */
function icon (name) {
  const ns = 'http://www.w3.org/2000/svg'
  const svg = document.createElementNS(ns, 'svg')
  svg.setAttribute('viewBox', '0 0 24 24')
  svg.setAttribute('class', `icon icon-${name}`)
  svg.setAttribute('aria-hidden', 'true')
  for (const d of icons[name]) {
    const path = document.createElementNS(ns, 'path')
    path.setAttribute('d', d)
    svg.append(path)
  }
  return svg
}

/** A stable hue per nickname. @param {string} nick */
function hue (nick) {
  let hash = 0
  for (const char of nick) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0
  return hash % 360
}

/** @param {HTMLElement} element @param {string} nick */
function paintAvatar (element, nick) {
  element.textContent = [...nick][0]?.toUpperCase() ?? '?'
  element.style.setProperty('--hue', String(hue(nick)))
}

/** @param {number} at */
const time = (at) => new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })

// ---- errors in plain words -----------------------------------------------------------------

/** What the fields of the chat's messages are called, and what their pattern asks for. */
const fields = /** @type {Record<string, { noun: string, pattern?: string }>} */ ({
  text: { noun: 'Messages', pattern: 'A message needs at least one character that is not a space.' },
  nick: { noun: 'Nicknames', pattern: 'A nickname cannot start or end with a space.' },
  room: { noun: 'Room names', pattern: 'Room names are lowercase letters, digits and dashes.' },
  password: { noun: 'Passwords' }
})

/**
 * One schema issue of a VALIDATION_FAILED error, `{ path, message }` as the server words it
 * (TypeBox's text), as a sentence for people.
 * @param {{ path: string, message: string }} issue
 */
function plainIssue ({ path, message }) {
  const name = path.split('/').pop() ?? ''
  const field = fields[name]
  const noun = field?.noun ?? (name === '' ? 'The message' : `The field "${name}"`)
  const longest = /length less or equal to (\d+)/.exec(message)
  if (longest !== null) return `${noun} can be at most ${longest[1]} characters.`
  const shortest = /length greater or equal to (\d+)/.exec(message)
  if (shortest !== null) return shortest[1] === '1' ? `${noun} cannot be empty.` : `${noun} need at least ${shortest[1]} characters.`
  if (/to match/.test(message)) return field?.pattern ?? `${noun} contains characters that are not allowed.`
  if (/required property/.test(message)) return `${noun} is missing.`
  if (/Unexpected property/.test(message)) return `The server does not take a field "${name}".`
  return `${noun}: ${message}.`
}

/**
 * The sentences of a VALIDATION_FAILED error: one per field (its first issue: the
 * others of a field only say the same again).
 * @param {ReadonlyArray<{ path: string, message: string }>} issues
 */
function plainIssues (issues) {
  /** @type {Map<string, string>} */
  const byPath = new Map()
  for (const issue of issues) if (!byPath.has(issue.path)) byPath.set(issue.path, plainIssue(issue))
  return byPath.size === 0 ? 'The server refused the message.' : [...byPath.values()].join(' ')
}

/** @param {unknown} error */
function describe (error) {
  const err = /** @type {Partial<ClientError>} */ (error)
  switch (err.code) {
    case 'VALIDATION_FAILED': return plainIssues(err.errors ?? [])
    case 'RATE_LIMITED': return 'Slow down: too many messages at once.'
    case 'DISCONNECTED': return 'The connection dropped before the server answered; try again.'
    case 'TIMEOUT': return 'The server did not answer in time.'
    case 'QUEUE_FULL': return 'Too many messages wait for the connection; try again once it is back.'
    default: return err.message ?? String(error)
  }
}

/** @param {string} text @param {'error' | 'info'} [kind] */
function toast (text, kind = 'error') {
  const item = el('div', `toast ${kind}`, text)
  $('toasts').append(item)
  setTimeout(() => item.remove(), 6000)
}

// ---- state -----------------------------------------------------------------------------------

/** Rooms whose presence the page listens to (once each, even if a room is dropped and comes back). */
const watched = new Set()

/** @param {string} name @returns {Room} */
function room (name) {
  let found = state.rooms.get(name)
  if (found === undefined) {
    found = { name, joined: false, kept: false, locked: false, items: [], unread: 0, members: [], fresh: true, listed: 0 }
    state.rooms.set(name, found)
  }
  if (!watched.has(name)) {
    watched.add(name)
    // Rooms are presence channels: the member list is the room's presence, over every node.
    client.onPresence(name, (presence, diff) => presenceChanged(name, presence, diff))
  }
  return found
}

/**
 * The head count a room shows: its presence once the page is in it (the same count as its
 * header and member list), else what GET /rooms said.
 * @param {Room} r
 */
const headCount = (r) => r.joined && r.members.length > 0 ? r.members.length : r.listed

/** @param {string | undefined} channel @param {Item} item */
function add (channel, item) {
  if (channel === undefined) return
  const target = room(channel)
  if (item.offset !== undefined && target.items.some((kept) => kept.offset === item.offset)) return
  target.items.push(item)
  if (target.items.length > 500) target.items.splice(0, target.items.length - 500)
  if (channel !== state.active && item.kind !== 'notice') target.unread++
  if (channel === state.active) appendItem(item, target.items[target.items.length - 2])
  renderRooms()
}

/** Meta `since` of presence entries: a device keeps it through a rename. @param {PresenceState} part */
function sinceOf (part) {
  return new Set(Object.values(part).flat().map((entry) => /** @type {{ since?: unknown }} */ (entry.meta).since).filter((since) => typeof since === 'number'))
}

/**
 * Who came and who went, told from a presence change: a nick that was not there and now is
 * joined, one that was there and now is not left (a second tab of someone present is no
 * news, and neither is the page's own nick: its track follows the room's first state). A
 * leave and a join of one device (the same `since`) within one diff is a rename: the room's
 * `renamed` line tells it.
 * @param {Set<string>} before @param {PresenceState} presence @param {PresenceDiff} diff
 */
function comingsAndGoings (before, presence, diff) {
  const leftSince = sinceOf(diff.leaves)
  const joinedSince = sinceOf(diff.joins)
  const renamed = (/** @type {PresenceState} */ part, /** @type {string} */ nick, /** @type {Set<unknown>} */ other) =>
    part[nick].some((entry) => other.has(/** @type {{ since?: unknown }} */ (entry.meta).since))
  const news = (/** @type {string} */ nick) => nick !== state.nick
  const left = Object.keys(diff.leaves).filter((nick) => news(nick) && before.has(nick) && !Object.hasOwn(presence, nick) && !renamed(diff.leaves, nick, joinedSince))
  const joined = Object.keys(diff.joins).filter((nick) => news(nick) && !before.has(nick) && Object.hasOwn(presence, nick) && !renamed(diff.joins, nick, leftSince))
  return [...left.map((nick) => `${nick} left`), ...joined.map((nick) => `${nick} joined`)]
}

/**
 * One entry per nick (its key), however many tabs or devices it is tracked from.
 * @param {string} channel @param {PresenceState} presence @param {PresenceDiff} diff
 */
function presenceChanged (channel, presence, diff) {
  const target = state.rooms.get(channel)
  if (target === undefined) return
  const before = new Set(target.members.map((member) => member.nick))
  // The whole state after a (re)subscription is who is there, not who just came; a room the
  // page left reports everyone as gone.
  const holding = client.channels.includes(channel)
  const quiet = target.fresh || !holding
  target.fresh = false
  target.members = holding
    ? Object.entries(presence).map(([nick, devices]) => ({ nick, devices: devices.length })).sort((a, b) => a.nick.localeCompare(b.nick))
    : []
  if (!quiet) for (const text of comingsAndGoings(before, presence, diff)) add(channel, { kind: 'notice', text, at: Date.now() })
  if (channel === state.active) renderMembers()
  renderRooms()
}

// ---- rendering -------------------------------------------------------------------------------

const isPrivate = (/** @type {string} */ name) => name.startsWith('private-')

function renderRooms () {
  const list = $('rooms')
  list.replaceChildren(...[...state.rooms.values()].map((r) => {
    const item = el('li')
    const button = el('button', `room-link${r.name === state.active ? ' active' : ''}${r.joined ? ' joined' : ''}`)
    button.type = 'button'
    button.dataset.room = r.name
    button.append(icon(isPrivate(r.name) ? 'lock' : 'hash'), el('span', 'name', r.name))
    const count = headCount(r)
    if (r.unread > 0) button.append(el('span', 'badge', String(r.unread)))
    else if (count > 0) button.append(el('span', 'count', String(count)))
    button.addEventListener('click', () => { openRoom(r.name) })
    item.append(button)
    return item
  }))
  // On a phone the room list is behind a toggle: a dot on it says another room has news.
  $('rooms-unread').hidden = ![...state.rooms.values()].some((r) => r.name !== state.active && r.unread > 0)
}

function renderMembers () {
  const current = room(state.active)
  const { members } = current
  const count = members.length
  $('member-count').textContent = String(count)
  $('people-count').textContent = current.joined ? String(count) : '' // not in it: who is there is not known
  $('members').replaceChildren(...members.map(({ nick, devices }) => {
    const item = el('li', nick === state.nick ? 'me' : '')
    const avatar = el('span', 'avatar small')
    paintAvatar(avatar, nick)
    item.append(avatar, el('span', 'member-nick', nick === state.nick ? `${nick} (you)` : nick))
    if (devices > 1) item.append(el('span', 'member-devices', `${devices} devices`))
    return item
  }))
  $('room-meta').textContent = current.joined
    ? (count === 0 ? 'joining…' : `${count} ${count === 1 ? 'person' : 'people'} here`)
    : (isPrivate(current.name) ? 'private room' : 'not joined')
}

/** The list follows new lines while it is scrolled to its end (within a line or so). */
function atEnd () {
  const list = $('messages')
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80
}

function scrollToEnd () {
  const list = $('messages')
  list.scrollTop = list.scrollHeight
}

/** @param {Item} item @param {Item | undefined} previous */
function appendItem (item, previous) {
  const list = $('messages')
  list.querySelector('.empty')?.remove()
  const follow = atEnd()
  list.append(renderItem(item, previous))
  if (follow || (item.kind === 'chat' && item.nick === state.nick)) scrollToEnd()
}

/** @param {Item} item @param {Item | undefined} previous */
function renderItem (item, previous) {
  if (item.kind === 'notice') return el('li', 'notice', item.text)
  if (item.kind === 'announce') {
    const li = el('li', 'announcement')
    li.append(icon('megaphone'), el('span', 'text', item.text), el('time', 'time', time(item.at)))
    return li
  }
  // A line right after one by the same person (within 5 minutes) is drawn without its header.
  const followUp = previous?.kind === 'chat' && previous.nick === item.nick && item.at - previous.at < 5 * 60_000
  const li = el('li', `chat${item.nick === state.nick ? ' mine' : ''}${followUp ? ' follow-up' : ''}`)
  const avatar = el('span', 'avatar')
  if (!followUp) paintAvatar(avatar, item.nick)
  const body = el('div', 'body')
  if (!followUp) {
    const header = el('div', 'meta')
    header.append(el('span', 'nick', item.nick), el('time', 'time', time(item.at)))
    body.append(header)
  }
  body.append(el('p', 'text', item.text))
  li.append(avatar, body)
  return li
}

/**
 * The curl command that announces in `name`, in short lines (continued with a backslash), so
 * it fits its box; a URL too long for a line may wrap, but only after a slash. Over plain
 * HTTP the scheme is left out: it is curl's default.
 * @param {string} name
 */
function announceLines (name) {
  const base = window.location.protocol === 'http:' ? window.location.host : window.location.origin
  return [
    "curl -d '{\"text\":\"hello\"}' \\",
    '  -H content-type:application/json \\',
    `  ${base}/rooms/${name}/announce`
  ]
}

/** @param {string} name */
function renderAnnounceCommand (name) {
  $('announce-command').replaceChildren(...announceLines(name).map((line, index, lines) => {
    const span = el('span', 'line')
    // <wbr> after each slash: a break opportunity that copying never turns into a character.
    line.split(/(?<=\/)/).forEach((part, i) => { if (i > 0) span.append(el('wbr')); span.append(part) })
    if (index < lines.length - 1) span.append('\n')
    return span
  }))
}

function renderRoom () {
  const current = room(state.active)
  current.unread = 0
  $('room-title').replaceChildren(icon(isPrivate(current.name) ? 'lock' : 'hash'), el('span', 'title-text', current.name))
  $('locked').hidden = !current.locked
  $('locked-room').textContent = current.name
  $('messages').hidden = current.locked
  $('composer').hidden = !current.joined
  $('leave').hidden = !current.joined
  input('text').placeholder = `Message #${current.name}`
  renderAnnounceCommand(current.name)
  $('composer-error').textContent = ''
  const list = $('messages')
  list.replaceChildren(...current.items.map((item, index) => renderItem(item, current.items[index - 1])))
  if (current.items.length === 0 && current.joined) list.append(el('li', 'empty', 'No messages yet. Say hi!'))
  scrollToEnd()
  renderMembers()
  renderRooms()
}

/** @param {Status} status */
function renderStatus (status) {
  const labels = { connecting: 'connecting…', open: 'online', reconnecting: 'reconnecting…', closed: 'offline' }
  const badge = $('status')
  badge.dataset.status = status
  badge.textContent = labels[status]
  $('offline').hidden = status !== 'reconnecting'
}

function renderMe () {
  $('me-nick').textContent = state.nick
  paintAvatar($('me-avatar'), state.nick)
}

// ---- drawers: the room list and the member list on narrow screens ----------------------------

/** @type {Record<'rooms' | 'people', { panel: string, toggle: string }>} */
const drawers = {
  rooms: { panel: 'sidebar', toggle: 'rooms-toggle' },
  people: { panel: 'people', toggle: 'people-toggle' }
}

/**
 * Opens one drawer (closing the other), or closes both with `undefined`. On a wide screen the
 * panels are always shown and the toggles hidden; the classes then change nothing.
 * @param {'rooms' | 'people' | undefined} which
 */
function showDrawer (which) {
  const app = $('app')
  const wasOpen = /** @type {Array<'rooms' | 'people'>} */ (['rooms', 'people']).find((name) => app.classList.contains(`show-${name}`))
  for (const [name, { toggle }] of Object.entries(drawers)) {
    app.classList.toggle(`show-${name}`, name === which)
    $(toggle).setAttribute('aria-expanded', String(name === which))
  }
  if (which !== undefined) $(drawers[which].panel).querySelector('button')?.focus()
  else if (wasOpen !== undefined && document.activeElement?.closest('.drawer') !== null) $(drawers[wasOpen].toggle).focus()
}

// ---- actions ---------------------------------------------------------------------------------

/** Client-side failures, after which the server may still accept the room on a later try. */
const transient = new Set(['DISCONNECTED', 'TIMEOUT', 'CLOSED', 'QUEUE_FULL'])

/**
 * Joins `name` (with its last lines) without opening it; true once in. A private room the
 * server refuses stays listed, locked; any other refusal drops it from the sidebar.
 * @param {string} name @returns {Promise<boolean>}
 */
function joinRoom (name) {
  const target = room(name)
  if (target.joined) return Promise.resolve(true)
  if (target.joining !== undefined) return target.joining
  target.fresh = true
  const joining = client.subscribe(name, { last: backlog }).then(() => {
    target.joined = true
    target.kept = true
    target.locked = false
    return true
  }, (error) => {
    const err = /** @type {ClientError} */ (error)
    if (err.code === 'FORBIDDEN' && isPrivate(name)) {
      target.locked = true // the unlock form is the answer
    } else {
      toast(`Could not join ${name}: ${describe(err)}`)
      // A name the server refused (INVALID_ROOM, ...) leaves no empty room behind in the sidebar.
      if (!transient.has(err.code) && target.items.length === 0) dropRoom(name)
    }
    return false
  }).finally(() => {
    target.joining = undefined
    remember()
    if (state.active === name) renderRoom()
    else renderRooms()
  })
  target.joining = joining
  remember()
  return joining
}

/** Shows `name`, joining it if the page is not in it yet. @param {string} name */
async function openRoom (name) {
  state.active = name
  room(name)
  remember()
  renderRoom()
  showDrawer(undefined)
  await joinRoom(name)
}

/** Forgets a room the server refused; if it was open, goes back to one the page is in. @param {string} name */
function dropRoom (name) {
  state.rooms.delete(name)
  remember()
  if (state.active !== name) return
  const back = [...state.rooms.values()].find((r) => r.joined)
  state.active = back?.name ?? 'lobby'
  room(state.active)
  renderRoom()
}

/** @param {string} name */
async function leaveRoom (name) {
  const target = room(name)
  target.joined = false
  target.kept = false
  target.items = []
  target.members = []
  remember()
  await client.unsubscribe(name)
  const next = [...state.rooms.values()].find((r) => r.joined)
  if (next !== undefined) await openRoom(next.name)
  else renderRoom()
}

/**
 * @param {{ event: string, data: unknown, offset: number }} message
 * @returns {Item}
 */
function itemOf ({ event, data, offset }) {
  const payload = /** @type {Record<string, unknown>} */ (data)
  const at = typeof payload.at === 'number' ? payload.at : Date.now()
  switch (event) {
    case 'chat': return { kind: 'chat', nick: String(payload.nick), text: String(payload.text), at, offset }
    case 'announce': return { kind: 'announce', text: String(payload.text), at, offset }
    case 'renamed': return { kind: 'notice', text: `${String(payload.from)} is now known as ${String(payload.to)}`, at, offset }
    default: return { kind: 'notice', text: event, at, offset }
  }
}

/**
 * What the page shows could not be brought up to date (`recovered: false`: the server lost
 * the room's history, or more was missed than it keeps): reload the room's last lines, keep
 * what arrived live since, and say so.
 * @param {string} name
 */
async function reloadRoom (name) {
  const target = room(name)
  const password = state.passwords.get(name)
  try {
    const response = await fetch(`/rooms/${encodeURIComponent(name)}/history`, password === undefined ? {} : { headers: { 'x-room-password': password } })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    const view = /** @type {{ offset: number, messages: Array<{ event: string, data: unknown, offset: number }> }} */ (await response.json())
    const live = target.items.filter((item) => item.offset !== undefined && item.offset > view.offset)
    target.items = [...view.messages.map(itemOf), { kind: 'notice', text: 'Some messages could not be recovered after the reconnect: the room was reloaded.', at: Date.now() }, ...live]
  } catch (error) {
    add(name, { kind: 'notice', text: `Some messages may be missing (reload failed: ${describe(error)})`, at: Date.now() })
  }
  if (name === state.active) renderRoom()
}

/** Head counts of the listed rooms (and any active room the page does not list yet). */
async function loadRooms () {
  try {
    const response = await fetch('/rooms')
    const { rooms } = /** @type {{ rooms: Array<{ name: string, members: number }> }} */ (await response.json())
    // A room the page is in counts from its presence: this answer may be older than the
    // presence frame (it was counted before the page's own track), so it never overrides it.
    for (const listed of rooms) room(listed.name).listed = listed.members
    renderRooms()
  } catch {
    // the room list is a convenience: joining by name still works
  }
}

/** Into the chat as `nick`: back into the rooms the page was in, the open one first. @param {string} nick */
function start (nick) {
  state.nick = nick
  state.passwords = rememberedPasswords()
  $('gate').hidden = true
  $('app').hidden = false
  // The nickname is the connection's user on the server: every tab of one nick is one member.
  client = /** @type {ChatClient} */ (connect('/ws', { params: () => ({ nick: state.nick }) }))

  client.onStatus((status) => {
    renderStatus(status)
    if (status !== 'open') return
    // Sent from the "open" listener, these frames precede the client's (re)subscribe: the
    // server knows the nickname and the passwords before it runs the join handlers.
    client.request('nick', { nick: state.nick }).catch((error) => toast(`Nickname refused: ${describe(error)}`))
    for (const [name, password] of state.passwords) client.send('unlock', { room: name, password })
    // Each room the client rejoins sends its whole presence again: who is there, not who came.
    for (const r of state.rooms.values()) if (r.joined) r.fresh = true
  })
  client.onError((error) => {
    if (error.channel !== undefined) {
      const target = room(error.channel)
      target.joined = false
      target.locked = error.code === 'FORBIDDEN' && isPrivate(error.channel)
      if (error.channel === state.active) renderRoom()
    }
    toast(describe(error))
  })

  // Every (re)subscription after a reconnect: whether what the room missed follows (the page
  // keeps its lines and appends it) or must be reloaded. Who is there comes from presence.
  client.onSubscribed((channel, { recovered }) => {
    if (recovered !== false) return
    // The lines shown belong to a stream that cannot be continued (its offsets may even start
    // over): drop them; what arrives from now on is kept, and the reload goes before it.
    room(channel).items = []
    reloadRoom(channel)
  })
  client.on('chat', (line, { channel, offset }) => add(channel, { kind: 'chat', ...line, offset }))
  client.on('announce', (announcement, { channel, offset }) => add(channel, { kind: 'announce', ...announcement, offset }))
  client.on('renamed', ({ from, to }, { channel, offset }) => {
    add(channel, { kind: 'notice', text: `${from} is now known as ${to}`, at: Date.now(), offset })
  })

  renderStatus(client.status)
  renderMe()
  const rooms = rememberedRooms()
  const saved = recall(local, keys.active)
  const active = saved !== null && rooms.includes(saved) ? saved : rooms[0]
  for (const name of ['lobby', ...rooms]) room(name)
  for (const name of rooms) room(name).kept = true
  loadRooms()
  setInterval(loadRooms, 30_000) // the counts of the rooms the page is not in
  openRoom(active)
  for (const name of rooms) if (name !== active) joinRoom(name)
  // Not on a touch screen: there the keyboard would cover half the room at once.
  if (window.matchMedia('(pointer: fine)').matches) input('text').focus({ preventScroll: true })
}

// ---- forms -----------------------------------------------------------------------------------

/** @param {string} id @param {(form: HTMLFormElement) => unknown} handler */
function onSubmit (id, handler) {
  const form = /** @type {HTMLFormElement} */ ($(id))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    handler(form)
  })
}

onSubmit('nick-form', () => {
  const nick = input('nick-input').value.trim()
  if (!nickRule.test(nick)) {
    $('nick-error').textContent = 'A nickname is 1–24 characters.'
    return
  }
  keep(local, keys.nick, nick)
  start(nick)
})

onSubmit('composer', async () => {
  const field = input('text')
  const text = field.value
  if (text.trim() === '') {
    $('composer-error').textContent = 'Type a message first: only spaces are not sent.'
    field.focus()
    return
  }
  const channel = state.active
  try {
    await client.request('chat', { text }, { channel })
    if (field.value === text) field.value = ''
    $('composer-error').textContent = ''
    updateCounter()
  } catch (error) {
    $('composer-error').textContent = describe(error)
  }
})

onSubmit('unlock-form', async () => {
  const name = state.active
  const password = input('unlock-input').value
  try {
    await client.request('unlock', { room: name, password })
    state.passwords.set(name, password)
    input('unlock-input').value = ''
    $('unlock-error').textContent = ''
    room(name).locked = false
    await openRoom(name)
  } catch (error) {
    $('unlock-error').textContent = describe(error)
  }
})

onSubmit('join-form', () => {
  const name = input('join-input').value.trim().toLowerCase().replace(/\s+/g, '-')
  if (name === '') return
  input('join-input').value = ''
  openRoom(name)
})

onSubmit('rename-form', async () => {
  const nick = input('rename-input').value.trim()
  $('rename-form').hidden = true
  if (nick === '' || nick === state.nick) return
  try {
    const reply = await client.request('nick', { nick })
    state.nick = reply.nick
    keep(local, keys.nick, reply.nick)
    renderMe()
    renderRoom()
  } catch (error) {
    toast(`Nickname refused: ${describe(error)}`)
  }
})

$('me-nick').addEventListener('click', () => {
  const form = $('rename-form')
  form.hidden = !form.hidden
  input('rename-input').value = state.nick
  if (!form.hidden) input('rename-input').select()
})

$('leave').addEventListener('click', () => { leaveRoom(state.active) })

$('rooms-toggle').addEventListener('click', () => { showDrawer($('app').classList.contains('show-rooms') ? undefined : 'rooms') })
$('people-toggle').addEventListener('click', () => { showDrawer($('app').classList.contains('show-people') ? undefined : 'people') })
$('scrim').addEventListener('click', () => { showDrawer(undefined) })
for (const button of document.querySelectorAll('[data-close-drawer]')) button.addEventListener('click', () => { showDrawer(undefined) })
document.addEventListener('keydown', (event) => { if (event.key === 'Escape') showDrawer(undefined) })

$('copy-command').addEventListener('click', async () => {
  const button = $('copy-command')
  const text = $('announce-command').textContent ?? ''
  try {
    await navigator.clipboard.writeText(text)
    button.textContent = 'Copied'
  } catch {
    // No clipboard here (a page served over plain HTTP from another host): select it to copy by hand.
    window.getSelection()?.selectAllChildren($('announce-command'))
    button.textContent = 'Selected'
  }
  setTimeout(() => { button.textContent = 'Copy' }, 2000)
})

// The list keeps its end in view when its box shrinks (a phone's keyboard, a rotation).
let wasAtEnd = true
$('messages').addEventListener('scroll', () => { wasAtEnd = atEnd() }, { passive: true })
new window.ResizeObserver(() => { if (wasAtEnd) scrollToEnd() }).observe($('messages'))

function updateCounter () {
  $('composer-error').textContent = ''
  const length = input('text').value.length
  const counter = $('counter')
  counter.textContent = length > maxText * 0.8 ? `${length}/${maxText}` : ''
  counter.classList.toggle('over', length > maxText)
}
input('text').addEventListener('input', updateCounter)

// A returning page goes straight in as the nick it had; a first visit picks one.
const returning = recall(local, keys.nick)?.trim() ?? ''
if (nickRule.test(returning) && returning.length <= 24) {
  start(returning)
} else {
  $('gate').hidden = false
  input('nick-input').focus()
}
