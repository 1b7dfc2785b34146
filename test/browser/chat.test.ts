/**
 * The example chat in a real browser (headless Chromium): two people talk in a room, a
 * too-long message is refused in plain words, a blank message and a refused room name get
 * feedback, the curl command of the page fits its box and works when pasted into a shell, a
 * private room refuses and then admits, an announcement posted over HTTP appears, the server
 * drops a connection and the page reconnects and resubscribes by itself.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import type { Page } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import type { ChannelSocket } from '../../plugin/types.js'
import { buildChatApp } from '../../example-chat/server.js'
import { ensureClientBundle } from '../client/helpers.js'
import { until } from '../helpers/server.js'
import { launchChromium, screenshotPath, skipWithoutChromium, enterChat, pageReaches } from './helpers.js'

const skip = skipWithoutChromium()
const curl = process.env.PATH?.split(delimiter).some((dir) => existsSync(join(dir, 'curl'))) === true

interface Chat {
  app: FastifyInstance
  base: string
  /** the live sockets, as the server sees them */
  sockets: Set<ChannelSocket>
}

async function startChat (): Promise<Chat> {
  await ensureClientBundle()
  const app = await buildChatApp({ password: 'sesame' })
  const sockets = new Set<ChannelSocket>()
  app.channels.on('connect', (socket) => { sockets.add(socket) })
  app.channels.on('finish', (socket) => { sockets.delete(socket) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, sockets, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

async function say (page: Page, text: string): Promise<void> {
  await page.fill('#text', text)
  await page.press('#text', 'Enter')
}

const texts = (page: Page, selector: string): Promise<string[]> => page.locator(selector).allTextContents()

t.test('the example chat in Chromium', { skip }, async (t) => {
  const chat = await startChat()
  t.teardown(() => chat.app.close())
  const browser = await launchChromium()
  t.teardown(() => browser.close())

  const ada = await enterChat(browser, chat.base, 'ada')
  const grace = await enterChat(browser, chat.base, 'grace')

  await t.test('two people talk in a room', async (t) => {
    await ada.page.waitForSelector('.notice:has-text("grace joined")')
    await pageReaches(ada.page, () => document.querySelectorAll('#members li').length === 2, 'ada\'s member list shows two')
    t.same(await texts(ada.page, '#members .member-nick'), ['ada (you)', 'grace'])

    await say(ada.page, 'Hello Grace! Did you see the new channels plugin?')
    await grace.page.waitForSelector('.chat .text:has-text("Did you see the new channels plugin?")')
    await say(grace.page, 'Yes, and the client reconnects by itself.')
    await say(ada.page, 'Typed from the same TypeBox schemas, too.')
    await ada.page.waitForSelector('.chat .text:has-text("reconnects by itself")')
    await grace.page.waitForSelector('.chat .text:has-text("same TypeBox schemas")')
    t.same(await texts(grace.page, '.chat .text'), [
      'Hello Grace! Did you see the new channels plugin?',
      'Yes, and the client reconnects by itself.',
      'Typed from the same TypeBox schemas, too.'
    ], 'both see the conversation in order')
    t.same(await texts(grace.page, '.chat .nick'), ['ada', 'grace', 'ada'])
    t.equal(await grace.page.locator('#composer-error').textContent(), '')
  })

  await t.test('a message the schema refuses is explained in plain words', async (t) => {
    await say(ada.page, 'x'.repeat(501))
    await ada.page.waitForSelector('#composer-error:not(:empty)')
    t.equal(await ada.page.locator('#composer-error').textContent(), 'Messages can be at most 500 characters.',
      'the server\'s VALIDATION_FAILED issue (/text, TypeBox\'s "Expected string length less or equal to 500") as a sentence')
    t.equal(await ada.page.inputValue('#text'), 'x'.repeat(501), 'the refused text stays in the box to fix')
    t.equal(await ada.page.locator('#counter').textContent(), '501/500', 'the counter said so before sending')
    await ada.page.fill('#text', '')
  })

  await t.test('a message of only spaces is not sent, and the page says why', async (t) => {
    const before = await texts(grace.page, '.chat .text')
    await say(ada.page, '     ')
    await ada.page.waitForSelector('#composer-error:has-text("only spaces")')
    await say(ada.page, 'after the blank one')
    await grace.page.waitForSelector('.chat .text:has-text("after the blank one")')
    t.same(await texts(grace.page, '.chat .text'), [...before, 'after the blank one'], 'nothing was sent for the blank line')
    t.equal(await ada.page.locator('#composer-error').textContent(), '', 'the hint goes once a message is sent')
  })

  await t.test('a room name the server refuses leaves the sidebar, and the error is shown', async (t) => {
    const { page } = ada
    const rooms = await page.locator('.room-link').evaluateAll((links) => links.map((link) => (link as HTMLElement).dataset.room))
    await page.fill('#join-input', 'no_underscores')
    await page.press('#join-input', 'Enter')
    await page.waitForSelector('.toast:has-text("Could not join no_underscores")')
    t.match(await page.locator('.toast').last().textContent(), /room names are lowercase letters/)
    await page.waitForSelector('.room-link.active.joined[data-room="lobby"]')
    t.same(await page.locator('.room-link').evaluateAll((links) => links.map((link) => (link as HTMLElement).dataset.room)), rooms,
      'the refused name is gone from the sidebar; the lobby is open again')
    t.ok(await page.locator('#composer').isVisible(), 'back in a room one can write in')
  })

  await t.test('the curl command fits its box in short lines', async (t) => {
    const { page } = ada
    const command = await page.locator('#announce-command').textContent() ?? ''
    const host = new URL(chat.base).host
    t.equal(command, [
      "curl -d '{\"text\":\"hello\"}' \\",
      '  -H content-type:application/json \\',
      `  ${host}/rooms/lobby/announce`
    ].join('\n'), 'short lines, continued with a backslash (over plain HTTP, curl\'s default scheme is left out)')
    const layout = await page.evaluate(() => {
      const box = document.getElementById('announce-command') as HTMLElement
      // Each line's text in one line box: a wrapped line would have rects at two heights.
      const heights = Array.from(box.querySelectorAll('.line'), (line) => {
        const range = document.createRange()
        range.selectNodeContents(line)
        return new Set(Array.from(range.getClientRects(), (rect) => Math.round(rect.top))).size
      })
      return { heights, overflow: box.scrollWidth - box.clientWidth }
    })
    t.same(layout, { heights: [1, 1, 1], overflow: 0 }, 'at 1280 px every line fits on one line: nothing is cut off or scrolled')
  })

  await t.test('the curl command works pasted into a shell', { skip: curl ? false : 'no curl on PATH: the command is not run' }, async (t) => {
    const command = await ada.page.locator('#announce-command').textContent() ?? ''
    const { stdout } = await promisify(execFile)('sh', ['-c', command.replace('hello', 'pasted from the page')], { timeout: 10_000 })
    t.match(JSON.parse(stdout), { ok: true, room: 'lobby', members: 2 }, 'the server took it')
    for (const { page } of [ada, grace]) await page.waitForSelector('.announcement .text:has-text("pasted from the page")')
  })

  await t.test('an announcement posted over HTTP appears', async (t) => {
    const response = await fetch(`${chat.base}/rooms/lobby/announce`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'Deploy at 17:00: be nice to the servers' })
    })
    t.equal(response.status, 202)
    for (const { page } of [ada, grace]) {
      await page.waitForSelector('.announcement .text:has-text("Deploy at 17:00")')
    }
  })

  await ada.page.screenshot({ path: screenshotPath('chat-lobby.png') })

  await t.test('a private room refuses without the password, admits with it', async (t) => {
    const { page } = grace
    await page.click('[data-room="private-lounge"]')
    await page.waitForSelector('#locked:not([hidden])')
    t.ok(await page.locator('#composer').isHidden(), 'no composer for a refused room')
    await page.screenshot({ path: screenshotPath('chat-private-refused.png') })

    await page.fill('#unlock-input', 'guess')
    await page.click('#unlock-form button[type=submit]')
    await page.waitForSelector('#unlock-error:has-text("wrong password")')

    await page.fill('#unlock-input', 'sesame')
    await page.click('#unlock-form button[type=submit]')
    await page.waitForSelector('.room-link.active.joined[data-room="private-lounge"]')
    t.ok(await page.locator('#locked').isHidden())
    await say(page, 'Only people with the password read this.')
    await page.waitForSelector('.chat .text:has-text("Only people with the password")')
    t.equal(await ada.page.locator('text=Only people with the password').count(), 0, 'ada, outside, never got it')
  })

  await t.test('a server-side disconnect is survived: reconnect, re-unlock, resubscribe', async (t) => {
    const { page } = grace
    // Record every status the page shows, so a quick reconnect cannot go unseen.
    await page.evaluate(() => {
      const badge = document.getElementById('status') as HTMLElement
      const seen: string[] = []
      ;(window as unknown as { statuses: string[] }).statuses = seen
      new MutationObserver(() => seen.push(badge.dataset.status ?? '')).observe(badge, { attributes: true })
    })
    const before = [...chat.sockets].find((socket) => socket.context.nick === 'grace')
    t.ok(before, 'the server holds grace')
    ;(before as ChannelSocket).close(4000, 'kicked by the test')

    await until(() => [...chat.sockets].some((socket) => socket !== before && socket.context.nick === 'grace' &&
      socket.channels.has('lobby') && socket.channels.has('private-lounge')), 10_000, 'grace reconnects and rejoins lobby and private-lounge')
    t.pass('a new connection holds lobby and private-lounge again (the password was sent before the resubscribe)')
    await pageReaches(page, () => (window as unknown as { statuses: string[] }).statuses.includes('open'), 'grace\'s page shows open again')
    t.same(await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses), ['reconnecting', 'open'])

    await page.click('[data-room="lobby"]')
    await say(ada.page, 'Welcome back, Grace.')
    await page.waitForSelector('.chat .text:has-text("Welcome back, Grace.")')
    await say(page, 'Thanks, I never left.')
    await ada.page.waitForSelector('.chat .text:has-text("Thanks, I never left.")')
  })

  await grace.page.screenshot({ path: screenshotPath('chat-after-reconnect.png') })

  t.same(ada.errors, [], 'no errors in ada\'s page')
  // A dropped WebSocket is reported on the console by Chromium itself; nothing else may be.
  t.same(grace.errors.filter((error) => !/WebSocket/.test(error)), [], 'no errors in grace\'s page')
})
