// @ts-check
/**
 * The chat page. Plain JavaScript, no framework, but type-checked (example-chat/tsconfig.page.json):
 * the client is typed by the same TypeBox schemas the server validates with (../events.ts).
 */
import { connect } from 'fastify-channels/client'

/** @typedef {import('../events.js').ChatEvents} ChatEvents */
/** @typedef {import('fastify-channels/client').ChannelsClient<ChatEvents>} ChatClient */
/** @typedef {import('fastify-channels/client').ChannelsClientError} ClientError */
/** @typedef {import('fastify-channels/client').Status} Status */
/**
 * @typedef {{ kind: 'chat', nick: string, text: string, at: number }
 *   | { kind: 'announce', text: string, at: number }
 *   | { kind: 'notice', text: string, at: number }} Item
 * @typedef {{ nick: string, devices: number }} Member
 * @typedef {{ name: string, joined: boolean, locked: boolean, members: Member[], items: Item[], unread: number, count: number }} Room
 * @typedef {import('fastify-channels/client').PresenceState} PresenceState
 */

const maxText = 500
const nickRule = /^\S(?:.*\S)?$/

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

/** @param {unknown} error */
function describe (error) {
  const err = /** @type {Partial<ClientError>} */ (error)
  switch (err.code) {
    case 'VALIDATION_FAILED': return `Refused by the server: ${(err.errors ?? []).map((issue) => issue.message).join('; ')}`
    case 'RATE_LIMITED': return 'Slow down: too many messages at once.'
    case 'DISCONNECTED': return 'The connection dropped before the server answered; try again.'
    case 'TIMEOUT': return 'The server did not answer in time.'
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

/** @param {string} name @returns {Room} */
function room (name) {
  let found = state.rooms.get(name)
  if (found === undefined) {
    found = { name, joined: false, locked: false, members: [], items: [], unread: 0, count: 0 }
    state.rooms.set(name, found)
    // Rooms are presence channels: the member list is the room's presence, over every node.
    client.onPresence(name, (presence) => setMembers(name, presence))
  }
  return found
}

/** @param {string | undefined} channel @param {Item} item */
function add (channel, item) {
  if (channel === undefined) return
  const target = room(channel)
  target.items.push(item)
  if (target.items.length > 500) target.items.splice(0, target.items.length - 500)
  if (channel !== state.active && item.kind !== 'notice') target.unread++
  if (channel === state.active) appendItem(item, target.items[target.items.length - 2])
  renderRooms()
}

/**
 * One entry per nick (its key), however many tabs or devices it is tracked from.
 * @param {string} channel @param {PresenceState} presence
 */
function setMembers (channel, presence) {
  const target = room(channel)
  target.members = Object.entries(presence)
    .map(([nick, devices]) => ({ nick, devices: devices.length }))
    .sort((a, b) => a.nick.localeCompare(b.nick))
  target.count = target.members.length
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
    if (r.unread > 0) button.append(el('span', 'badge', String(r.unread)))
    else if (r.count > 0) button.append(el('span', 'count', String(r.count)))
    button.addEventListener('click', () => { openRoom(r.name) })
    item.append(button)
    return item
  }))
}

function renderMembers () {
  const { members } = room(state.active)
  $('member-count').textContent = String(members.length)
  $('members').replaceChildren(...members.map(({ nick, devices }) => {
    const item = el('li', nick === state.nick ? 'me' : '')
    const avatar = el('span', 'avatar small')
    paintAvatar(avatar, nick)
    item.append(avatar, el('span', 'member-nick', nick === state.nick ? `${nick} (you)` : nick))
    if (devices > 1) item.append(el('span', 'member-devices', `${devices} devices`))
    return item
  }))
  const count = members.length
  $('room-meta').textContent = room(state.active).joined
    ? `${count} ${count === 1 ? 'person' : 'people'} here`
    : (isPrivate(state.active) ? 'private room' : 'not joined')
}

/** @param {Item} item @param {Item | undefined} previous */
function appendItem (item, previous) {
  const list = $('messages')
  list.querySelector('.empty')?.remove()
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80
  list.append(renderItem(item, previous))
  if (nearBottom || (item.kind === 'chat' && item.nick === state.nick)) list.scrollTop = list.scrollHeight
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

function renderRoom () {
  const current = room(state.active)
  current.unread = 0
  $('room-title').replaceChildren(icon(isPrivate(current.name) ? 'lock' : 'hash'), current.name)
  $('locked').hidden = !current.locked
  $('locked-room').textContent = current.name
  $('messages').hidden = current.locked
  $('composer').hidden = !current.joined
  $('leave').hidden = !current.joined
  input('text').placeholder = `Message #${current.name}`
  // One argument per line: the box is narrow, and a URL must never break mid-word.
  $('announce-command').textContent = [
    "curl -H 'content-type: application/json' \\",
    "  -d '{\"text\":\"hello\"}' \\",
    `  ${window.location.origin}/rooms/${current.name}/announce`
  ].join('\n')
  $('composer-error').textContent = ''
  const list = $('messages')
  list.replaceChildren(...current.items.map((item, index) => renderItem(item, current.items[index - 1])))
  if (current.items.length === 0 && current.joined) list.append(el('li', 'empty', 'No messages yet. Say hi!'))
  list.scrollTop = list.scrollHeight
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

// ---- actions ---------------------------------------------------------------------------------

/** Client-side failures, after which the server may still accept the room on a later try. */
const transient = new Set(['DISCONNECTED', 'TIMEOUT', 'CLOSED', 'QUEUE_FULL'])

/** @param {string} name */
async function openRoom (name) {
  const previous = state.active
  state.active = name
  const target = room(name)
  renderRoom()
  if (target.joined) return
  try {
    await client.subscribe(name)
    target.joined = true
    target.locked = false
  } catch (error) {
    const err = /** @type {ClientError} */ (error)
    if (err.code === 'FORBIDDEN' && isPrivate(name)) {
      target.locked = true // the unlock form is the answer
    } else {
      toast(`Could not join ${name}: ${describe(err)}`)
      // A name the server refused (INVALID_ROOM, ...) leaves no empty room behind in the sidebar.
      if (!transient.has(err.code) && !target.joined && target.items.length === 0) return dropRoom(name, previous)
    }
  }
  if (state.active === name) renderRoom()
}

/** Forgets a room the server refused, and goes back to where the user was. @param {string} name @param {string} previous */
function dropRoom (name, previous) {
  state.rooms.delete(name)
  if (state.active !== name) return renderRooms()
  const back = state.rooms.get(previous) ?? [...state.rooms.values()].find((r) => r.joined)
  state.active = back?.name ?? 'lobby'
  renderRoom()
}

/** @param {string} name */
async function leaveRoom (name) {
  await client.unsubscribe(name)
  const target = room(name)
  target.joined = false
  target.items = []
  target.members = []
  target.count = 0
  const next = [...state.rooms.values()].find((r) => r.joined)
  if (next !== undefined) await openRoom(next.name)
  else renderRoom()
}

async function loadRooms () {
  try {
    const response = await fetch('/rooms')
    const { rooms } = /** @type {{ rooms: Array<{ name: string, members: number }> }} */ (await response.json())
    for (const listed of rooms) room(listed.name).count = listed.members
    renderRooms()
  } catch {
    // the room list is a convenience: joining by name still works
  }
}

function start () {
  client = /** @type {ChatClient} */ (connect('/ws'))

  client.onStatus((status) => {
    renderStatus(status)
    if (status !== 'open') return
    // Sent from the "open" listener, these frames precede the client's resubscribe: the
    // server knows the nickname and the passwords before it runs the join handlers.
    client.request('nick', { nick: state.nick }).catch((error) => toast(`Nickname refused: ${describe(error)}`))
    for (const [name, password] of state.passwords) client.send('unlock', { room: name, password })
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

  client.on('room', ({ history }, { channel }) => {
    if (channel === undefined) return
    const target = room(channel)
    target.items = history.map((item) => 'nick' in item ? { kind: 'chat', ...item } : { kind: 'announce', ...item })
    if (channel === state.active) renderRoom()
  })
  client.on('chat', (line, { channel }) => add(channel, { kind: 'chat', ...line }))
  client.on('announce', (announcement, { channel }) => add(channel, { kind: 'announce', ...announcement }))
  client.on('joined', ({ nick }, { channel }) => {
    add(channel, { kind: 'notice', text: `${nick} joined`, at: Date.now() })
  })
  client.on('left', ({ nick }, { channel }) => {
    add(channel, { kind: 'notice', text: `${nick} left`, at: Date.now() })
  })
  client.on('renamed', ({ from, to }, { channel }) => {
    add(channel, { kind: 'notice', text: `${from} is now known as ${to}`, at: Date.now() })
  })

  renderStatus(client.status)
  renderMe()
  room('lobby')
  loadRooms()
  openRoom('lobby')
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
  localStorage.setItem('channels-chat-nick', nick)
  state.nick = nick
  $('gate').hidden = true
  $('app').hidden = false
  start()
  input('text').focus()
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
    localStorage.setItem('channels-chat-nick', reply.nick)
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

function updateCounter () {
  $('composer-error').textContent = ''
  const length = input('text').value.length
  const counter = $('counter')
  counter.textContent = length > maxText * 0.8 ? `${length}/${maxText}` : ''
  counter.classList.toggle('over', length > maxText)
}
input('text').addEventListener('input', updateCounter)

input('nick-input').value = localStorage.getItem('channels-chat-nick') ?? ''
