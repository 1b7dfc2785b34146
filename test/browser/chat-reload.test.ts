/**
 * The example chat across reloads, in Chromium: the counts a page shows agree (also on the
 * newest of three joiners, whose room list may answer after its presence); join and leave
 * notices are shown live but never stored, so a reload brings none back; a rename is one
 * line; a reload keeps the nickname, the rooms and the open one (and a private room's
 * password for the tab only).
 */
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import type { ChannelSocket } from '../../plugin/types.js'
import { buildChatApp } from '../../example-chat/server.js'
import { ensureClientBundle } from '../client/helpers.js'
import { until } from '../helpers/server.js'
import { launchChromium, pageErrors, screenshotPath, skipWithoutChromium, enterChat, pageReaches } from './helpers.js'

const skip = skipWithoutChromium()

async function startChat (t: Test, prepare: (app: FastifyInstance) => void = () => {}): Promise<{ app: FastifyInstance, base: string }> {
  const app = await buildChatApp({ password: 'sesame' })
  prepare(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

async function say (page: Page, text: string): Promise<void> {
  await page.fill('#text', text)
  await page.press('#text', 'Enter')
  await page.waitForSelector(`.chat .text:text-is("${text}")`)
}

/** Opens `room` from the sidebar's join field (desktop size). */
async function join (page: Page, room: string): Promise<void> {
  await page.fill('#join-input', room)
  await page.press('#join-input', 'Enter')
  await page.waitForSelector(`.room-link.active.joined[data-room="${room}"]`)
}

const notices = (page: Page): Promise<string[]> => page.locator('#messages .notice').allTextContents()

/** Every count of the open room the page shows: the sidebar's, the header's, the member list's, the toggle's. */
async function counts (page: Page, room: string): Promise<Record<string, string>> {
  return await page.evaluate((room) => ({
    sidebar: document.querySelector(`.room-link[data-room="${room}"] .count`)?.textContent ?? '(none)',
    header: document.getElementById('room-meta')?.textContent ?? '',
    members: document.getElementById('member-count')?.textContent ?? '',
    toggle: document.getElementById('people-count')?.textContent ?? '',
    listed: String(document.querySelectorAll('#members li').length)
  }), room)
}

/** One Chromium for the file (each page still gets its own context, with its own storage). */
let browser: Browser
t.before(async () => {
  await ensureClientBundle()
  if (skip === false) browser = await launchChromium()
})
t.teardown(async () => { await browser?.close() })

t.test('three joiners: every count on every page agrees', { skip }, async (t) => {
  // GET /rooms counts before the joiner is tracked; slowed down, its answer lands after the
  // presence frame (as it did on a busy server): it must not override the count the page has.
  let answered = 0
  const { base } = await startChat(t, (app) => {
    app.addHook('onSend', async (request, _reply, payload) => {
      if (request.url === '/rooms') await new Promise((resolve) => setTimeout(resolve, 400))
      return payload
    })
    app.addHook('onResponse', async (request) => { if (request.url === '/rooms') answered++ })
  })
  const pages: Page[] = []
  for (const nick of ['ada', 'grace', 'ben']) {
    const { page } = await enterChat(browser, base, nick)
    t.teardown(() => page.context().close())
    pages.push(page)
    await pageReaches(page, () => document.querySelectorAll('#members li').length > 0, `${nick} has the presence`)
    // This page's own GET /rooms answered too (and a moment to handle it).
    await until(() => answered >= pages.length, 5000, `${nick}'s GET /rooms answered`)
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100)))
  }
  const three = { sidebar: '3', header: '3 people here', members: '3', toggle: '3', listed: '3' }
  for (const [i, page] of pages.entries()) {
    await pageReaches(page, () => document.querySelectorAll('#members li').length === 3, `page ${i} lists three`)
    t.same(await counts(page, 'lobby'), three, `${['ada', 'grace', 'ben'][i]}'s page: one count everywhere`)
  }
  await pages[2].screenshot({ path: screenshotPath('chat-counts.png') })
})

t.test('join and leave notices are live, never stored; a rename is one line', { skip }, async (t) => {
  const { app, base } = await startChat(t)
  const ada = await enterChat(browser, base, 'ada')
  t.teardown(() => ada.page.context().close())
  await say(ada.page, 'before anyone came')

  const grace = await enterChat(browser, base, 'grace')
  t.teardown(() => grace.page.context().close())
  await ada.page.waitForSelector('.notice:text-is("grace joined")')
  t.same(await notices(grace.page), [], 'the joiner is told who is there by the member list, not by notices')

  // A rename: one "is now known as" line, not a leave and a join.
  await grace.page.click('#me-nick')
  await grace.page.fill('#rename-input', 'Grace H.')
  await grace.page.press('#rename-input', 'Enter')
  await ada.page.waitForSelector('.notice:text-is("grace is now known as Grace H.")')
  await ada.page.waitForSelector('#members .member-nick:text-is("Grace H.")')
  t.same(await notices(ada.page), ['grace joined', 'grace is now known as Grace H.'])

  // Two tabs of one person: the second is no news, closing one of them neither.
  const tab = await enterChat(browser, base, 'Grace H.')
  t.teardown(() => tab.page.context().close())
  await ada.page.waitForSelector('#members .member-devices:text-is("2 devices")')
  await tab.page.context().close()
  await ada.page.waitForSelector('#members .member-devices', { state: 'detached' })
  await grace.page.context().close()
  await ada.page.waitForSelector('.notice:text-is("Grace H. left")')
  t.same(await notices(ada.page), ['grace joined', 'grace is now known as Grace H.', 'Grace H. left'], 'live, once each')

  const stored = (await app.channels.history('lobby', { last: 50 })).messages.map((message) => message.event)
  t.same(stored, ['chat', 'renamed'], 'the room\'s history: the line and the rename, no join or leave')

  await ada.page.reload()
  await ada.page.waitForSelector('.room-link.active.joined[data-room="lobby"]')
  await ada.page.waitForSelector('.chat .text:text-is("before anyone came")')
  t.same(await notices(ada.page), ['grace is now known as Grace H.'], 'after a reload: no join or leave line came back')
  t.same(ada.errors, [])
})

/** The chat in a new context holding `storageState` (an earlier page's storage): a returning visitor. */
async function returning (browser: Browser, base: string, storageState: Awaited<ReturnType<BrowserContext['storageState']>>): Promise<{ page: Page, errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 }, storageState })
  context.setDefaultTimeout(10_000)
  const page = await context.newPage()
  const errors = pageErrors(page)
  await page.goto(base)
  return { page, errors }
}

t.test('a reload keeps the nickname, the rooms and the open one', { skip }, async (t) => {
  const { app, base } = await startChat(t)
  const sockets: ChannelSocket[] = []
  app.channels.on('connect', (socket) => { sockets.push(socket) })
  const { page, errors } = await enterChat(browser, base, 'ada')
  t.teardown(() => page.context().close())
  await say(page, 'in the lobby')
  await join(page, 'side-room')
  await say(page, 'in the side room')
  await page.click('[data-room="private-lounge"]')
  await page.fill('#unlock-input', 'sesame')
  await page.click('#unlock-form button[type=submit]')
  await page.waitForSelector('.room-link.active.joined[data-room="private-lounge"]')
  await say(page, 'behind the password')
  await page.click('[data-room="side-room"]')

  await page.reload()
  await page.waitForSelector('#status[data-status="open"]')
  t.ok(await page.locator('#gate').isHidden(), 'no nickname asked again')
  t.equal(await page.locator('#me-nick').textContent(), 'ada')
  await page.waitForSelector('.room-link.active.joined[data-room="side-room"]')
  await page.waitForSelector('.chat .text:text-is("in the side room")')
  t.pass('the room that was open is open again, with its lines')
  for (const room of ['lobby', 'private-lounge']) await page.waitForSelector(`.room-link.joined[data-room="${room}"]`)
  t.pass('the other rooms are joined again, the private one with the tab\'s password')
  const latest = sockets.at(-1)
  t.same([latest?.context.nick, [...latest?.channels ?? []].sort()], ['ada', ['lobby', 'private-lounge', 'side-room']], 'the server agrees')
  await page.click('[data-room="lobby"]')
  await page.waitForSelector('.chat .text:text-is("in the lobby")')
  t.same(await page.locator('#messages .chat .text').allTextContents(), ['in the lobby'], 'each room its own lines, from its history')

  // Leaving a room is remembered too.
  await page.click('[data-room="side-room"]')
  await page.click('#leave')
  await page.waitForSelector('.room-link.active.joined[data-room="lobby"]')

  // Another tab (the same browser storage, a new session): nickname and rooms, but the
  // private room's password stayed with its tab.
  const other = await returning(browser, base, await page.context().storageState())
  t.teardown(() => other.page.context().close())
  await other.page.waitForSelector('#status[data-status="open"]')
  t.equal(await other.page.locator('#me-nick').textContent(), 'ada')
  await other.page.waitForSelector('.room-link.active.joined[data-room="lobby"]')
  await other.page.waitForSelector('.room-link[data-room="random"]') // GET /rooms answered
  t.equal(await other.page.locator('[data-room="side-room"]').count(), 0, 'the room left is not back')
  await other.page.click('[data-room="private-lounge"]')
  await other.page.waitForSelector('#locked:not([hidden])')
  t.pass('the private room asks for its password in a new tab')
  t.same([...errors, ...other.errors], [], 'no page errors')
})
