/**
 * The example chat's layout in Chromium, at a desktop size (1280x760) and a phone size
 * (390x844): after 60 messages the list has scrolled inside the window, its newest line and
 * the composer are in view and the page itself does not scroll; a reader scrolled back is not
 * yanked down. On a phone (and under 960 px) the member list and room creation sit behind
 * toggles in the room header, and the room list is not cut off.
 */
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import type { Browser, Page } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import { buildChatApp } from '../../example-chat/server.js'
import type { ChatEvents } from '../../example-chat/events.js'
import { clientFor, ensureClientBundle, statusOf } from '../client/helpers.js'
import { launchChromium, screenshotPath, skipWithoutChromium, enterChat, pageReaches } from './helpers.js'

const skip = skipWithoutChromium()
const desktop = { width: 1280, height: 760 }
const phone = { width: 390, height: 844 }

async function startChat (t: Test): Promise<{ app: FastifyInstance, base: string }> {
  const app = await buildChatApp({ password: 'sesame' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

interface Geometry {
  newest: string
  newestTop: number
  newestBottom: number
  listTop: number
  listBottom: number
  composerTop: number
  composerBottom: number
  windowHeight: number
  pageHeight: number
  /** px between the list's scroll position and its end */
  fromEnd: number
}

/** Where the newest line, the list and the composer are, against the window. */
async function geometry (page: Page): Promise<Geometry> {
  return await page.evaluate(() => {
    const list = document.getElementById('messages') as HTMLElement
    const lines = list.querySelectorAll('.chat .text')
    const newest = lines[lines.length - 1] as HTMLElement
    const composer = (document.getElementById('composer') as HTMLElement).getBoundingClientRect()
    const box = list.getBoundingClientRect()
    const line = newest.getBoundingClientRect()
    return {
      newest: newest.textContent ?? '',
      newestTop: line.top,
      newestBottom: line.bottom,
      listTop: box.top,
      listBottom: box.bottom,
      composerTop: composer.top,
      composerBottom: composer.bottom,
      windowHeight: window.innerHeight,
      pageHeight: (document.scrollingElement as HTMLElement).scrollHeight,
      fromEnd: list.scrollHeight - list.scrollTop - list.clientHeight
    }
  })
}

/** Waits until the drawer `id` has slid in or out (its transition ended). */
async function settled (page: Page, id: string): Promise<void> {
  await page.waitForFunction((id) => (document.getElementById(id) as HTMLElement).getAnimations().length === 0, id, { timeout: 5000 })
}

/** One Chromium for the file (each page still gets its own context, with its own storage). */
let browser: Browser
t.before(async () => {
  await ensureClientBundle()
  if (skip === false) browser = await launchChromium()
})
t.teardown(async () => { await browser?.close() })

t.test('after 60 messages the newest line and the composer are in view', { skip }, async (t) => {
  for (const viewport of [desktop, phone]) {
    await t.test(`at ${viewport.width}x${viewport.height}`, async (t) => {
      const { base } = await startChat(t)
      const reader = await enterChat(browser, base, 'reader', viewport)
      t.teardown(() => reader.page.context().close())
      // Someone else writes: the page must follow by itself (its own lines it always shows).
      const writer = clientFor<ChatEvents>(t, `${base.replace('http', 'ws')}/ws`)
      writer.onStatus((status) => { if (status === 'open') writer.send('nick', { nick: 'writer' }) })
      await statusOf(writer, 'open')
      await writer.subscribe('lobby')
      for (let i = 1; i <= 60; i++) {
        const long = i % 9 === 0 ? ': a longer line, long enough to wrap onto a second line or a third on a phone' : ''
        await writer.request('chat', { text: `line ${i}${long}` }, { channel: 'lobby' })
      }
      const { page } = reader
      await pageReaches(page, () => document.querySelectorAll('#messages .chat').length === 60, 'the reader has all 60 lines')

      const seen = await geometry(page)
      t.equal(seen.newest, 'line 60', 'the last line drawn is the newest')
      t.ok(seen.newestTop >= seen.listTop && seen.newestBottom <= seen.listBottom + 1,
        `the newest line is inside the list's box (line ${seen.newestTop}–${seen.newestBottom}, list ${seen.listTop}–${seen.listBottom})`)
      t.ok(seen.fromEnd <= 1, `the list is scrolled to its end (${seen.fromEnd} px from it)`)
      t.ok(seen.composerTop >= 0 && seen.composerBottom <= seen.windowHeight,
        `the composer is in the window (${seen.composerTop}–${seen.composerBottom} of ${seen.windowHeight})`)
      t.ok(seen.pageHeight <= seen.windowHeight, `the page itself does not scroll (${seen.pageHeight} px tall in ${seen.windowHeight})`)
      t.ok(await page.locator('#text').isVisible(), 'the message box can be typed in')
      await page.screenshot({ path: screenshotPath(`chat-${viewport.width}x${viewport.height}.png`) })

      // A reader who scrolled back to read is left there when a line arrives...
      await page.evaluate(() => { (document.getElementById('messages') as HTMLElement).scrollTop = 0 })
      await writer.request('chat', { text: 'line 61' }, { channel: 'lobby' })
      await page.waitForSelector('.chat .text:text-is("line 61")', { state: 'attached' })
      t.equal(await page.evaluate(() => (document.getElementById('messages') as HTMLElement).scrollTop), 0, 'a reader scrolled back is not yanked down')
      // ...and what they send themselves brings them back to the end.
      await page.fill('#text', 'my own line')
      await page.press('#text', 'Enter')
      await page.waitForSelector('.chat .text:text-is("my own line")')
      const after = await geometry(page)
      t.equal(after.newest, 'my own line')
      t.ok(after.newestBottom <= after.listBottom + 1 && after.composerBottom <= after.windowHeight, 'their own line and the composer are in view')
      t.same(reader.errors, [], 'no page errors')
    })
  }
})

t.test('on a phone, the member list and room creation are behind toggles', { skip }, async (t) => {
  const { base } = await startChat(t)
  const ada = await enterChat(browser, base, 'ada')
  t.teardown(() => ada.page.context().close())
  const grace = await enterChat(browser, base, 'grace', phone)
  t.teardown(() => grace.page.context().close())
  const { page } = grace

  t.ok(await page.locator('#members').isHidden(), 'the member list is not in the way')
  t.ok(await page.locator('#join-input').isHidden(), 'nor the room list')
  t.equal(await page.locator('#people-toggle').getAttribute('aria-expanded'), 'false')
  await pageReaches(page, () => document.getElementById('people-count')?.textContent === '2', 'the people toggle counts 2')

  await page.click('#people-toggle')
  await page.waitForSelector('#members', { state: 'visible' })
  await settled(page, 'people')
  t.same(await page.locator('#members .member-nick').allTextContents(), ['ada', 'grace (you)'], 'the member list, one tap away')
  t.equal(await page.locator('#people-toggle').getAttribute('aria-expanded'), 'true')
  const panel = await page.locator('#people').boundingBox()
  t.ok(panel !== null && panel.x >= 0 && panel.x + panel.width <= phone.width, 'the drawer is inside the window')
  await page.screenshot({ path: screenshotPath('chat-390x844-members.png') })
  await page.keyboard.press('Escape')
  await page.waitForSelector('#members', { state: 'hidden' })
  t.pass('Escape closes it')

  await page.click('#rooms-toggle')
  await page.waitForSelector('#join-input', { state: 'visible' })
  await settled(page, 'sidebar')
  const cut = await page.evaluate((width) => Array.from(document.querySelectorAll('.room-link'), (link) => {
    const rect = link.getBoundingClientRect()
    const name = link.querySelector('.name') as HTMLElement
    return rect.left < 0 || rect.right > width || name.scrollWidth > name.clientWidth ? name.textContent : undefined
  }).filter((name) => name !== undefined), phone.width)
  t.same(cut, [], 'every room is listed whole, none cut off')
  t.same(await page.locator('.room-link .name').allTextContents(), ['lobby', 'random', 'private-lounge'])
  await page.screenshot({ path: screenshotPath('chat-390x844-rooms.png') })

  await page.fill('#join-input', 'from-a-phone')
  await page.press('#join-input', 'Enter')
  await page.waitForSelector('.room-link.active.joined[data-room="from-a-phone"]', { state: 'attached' })
  await page.waitForSelector('#join-input', { state: 'hidden' })
  t.equal(await page.locator('#room-title').textContent(), 'from-a-phone', 'a new room, created and open; the drawer closed')
  await page.fill('#text', 'first!')
  await page.press('#text', 'Enter')
  await page.waitForSelector('.chat .text:text-is("first!")')

  // The scrim closes a drawer too.
  await page.click('#rooms-toggle')
  await page.waitForSelector('#join-input', { state: 'visible' })
  await page.mouse.click(phone.width - 10, phone.height / 2)
  await page.waitForSelector('#join-input', { state: 'hidden' })
  t.same(grace.errors, [], 'no page errors')
})

t.test('between 640 and 960 px the rooms stay, the member list is behind its toggle', { skip }, async (t) => {
  const { base } = await startChat(t)
  const { page, errors } = await enterChat(browser, base, 'ada', { width: 800, height: 700 })
  t.teardown(() => page.context().close())
  t.ok(await page.locator('#join-input').isVisible(), 'room creation in the sidebar')
  t.ok(await page.locator('#rooms-toggle').isHidden(), 'no toggle for it')
  t.ok(await page.locator('#members').isHidden())
  await page.click('#people-toggle')
  await page.waitForSelector('#members .member-nick:text-is("ada (you)")')
  t.same(errors, [])
})
