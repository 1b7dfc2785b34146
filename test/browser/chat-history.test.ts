/**
 * The example chat on the Redis broker in Chromium: the server restarts (and a line is posted
 * on a second chat node meanwhile); both pages keep their lines, get what they missed once,
 * and nothing is lost or doubled. Then a restart that loses the history (another prefix, as a
 * Redis without persistence would): the page reloads the room and says so.
 */
import t from 'tap'
import type { AddressInfo } from 'node:net'
import type { Page } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import { redisBroker } from '../../plugin/index.js'
import { buildChatApp } from '../../example-chat/server.js'
import { ensureClientBundle } from '../client/helpers.js'
import { deleteKeys, redisUrl, uniquePrefix, withRedis } from '../redis/helpers.js'
import { launchChromium, screenshotPath, skipWithoutChromium, enterChat } from './helpers.js'

const skip = skipWithoutChromium()

async function chatNode (prefix: string, port = 0): Promise<{ app: FastifyInstance, port: number }> {
  const app = await buildChatApp({ password: 'sesame', channels: { broker: redisBroker({ url: redisUrl, prefix }) } })
  await app.listen({ port, host: '127.0.0.1' })
  return { app, port: (app.server.address() as AddressInfo).port }
}

async function say (page: Page, text: string): Promise<void> {
  await page.fill('#text', text)
  await page.press('#text', 'Enter')
}

async function announce (port: number, text: string): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/rooms/lobby/announce`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text })
  })
  if (response.status !== 202) throw new Error(`announce: ${response.status}`)
}

const lines = (page: Page): Promise<string[]> => page.locator('#messages .chat .text, #messages .announcement .text').allTextContents()

t.test('the chat on Redis survives a server restart without losing or doubling a line', { skip }, async (t) => {
  await withRedis(t, async () => {
    await ensureClientBundle()
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    let main = await chatNode(prefix)
    t.teardown(() => main.app.close())
    const other = await chatNode(prefix)
    t.teardown(() => other.app.close())
    const base = `http://127.0.0.1:${main.port}`
    const browser = await launchChromium()
    t.teardown(() => browser.close())

    const ada = await enterChat(browser, base, 'ada')
    await say(ada.page, 'one')
    await ada.page.waitForSelector('.chat .text:has-text("one")')
    const grace = await enterChat(browser, base, 'grace')
    await grace.page.waitForSelector('.chat .text:has-text("one")') // the backlog (`last: 50`) on join
    await say(grace.page, 'two')
    for (const { page } of [ada, grace]) await page.waitForSelector('.chat .text:has-text("two")')

    await main.app.close()
    for (const { page } of [ada, grace]) await page.waitForSelector('#status[data-status="reconnecting"]')
    await announce(other.port, 'posted while the server was down')
    main = await chatNode(prefix, main.port)
    for (const { page } of [ada, grace]) {
      await page.waitForSelector('#status[data-status="open"]', { timeout: 15000 })
      await page.waitForSelector('.announcement .text:has-text("posted while the server was down")')
    }
    await say(ada.page, 'three')
    for (const { page } of [ada, grace]) await page.waitForSelector('.chat .text:has-text("three")')
    for (const { page } of [ada, grace]) {
      t.same(await lines(page), ['one', 'two', 'posted while the server was down', 'three'], 'every line once, in order')
    }
    await grace.page.screenshot({ path: screenshotPath('chat-after-restart.png') })

    // History lost (a restart on a Redis without persistence): the page reloads the room and says so.
    const lost = uniquePrefix()
    t.teardown(() => deleteKeys(lost))
    await main.app.close()
    await ada.page.waitForSelector('#status[data-status="reconnecting"]')
    main = await buildChatApp({ password: 'sesame', channels: { broker: redisBroker({ url: redisUrl, prefix: lost }) } })
      .then(async (app) => { await app.listen({ port: main.port, host: '127.0.0.1' }); return { app, port: main.port } })
    await ada.page.waitForSelector('.notice:has-text("could not be recovered")', { timeout: 15000 })
    t.same(await lines(ada.page), [], 'the reloaded room is what the server has now')
    await say(grace.page, 'four')
    await ada.page.waitForSelector('.chat .text:has-text("four")')
    // Chromium logs each refused reconnect while the server is down: that is expected.
    const unexpected = (errors: string[]): string[] => errors.filter((error) => !/WebSocket connection to .* failed/.test(error))
    t.same(unexpected(ada.errors), [])
    t.same(unexpected(grace.errors), [])
  })
})
