/**
 * The example chat's member lists in Chromium, with two chat nodes on one Redis: pages on
 * different nodes see each other, two tabs of one nick show once with a device count, and a
 * page that leaves is gone from the other node's list.
 */
import t from 'tap'
import type { AddressInfo } from 'node:net'
import type { Page } from 'playwright-core'
import { buildChatApp } from '../../example-chat/server.js'
import { redisBroker } from '../../plugin/index.js'
import { ensureClientBundle } from '../client/helpers.js'
import { deleteKeys, redisUrl, uniquePrefix, withRedis } from '../redis/helpers.js'
import { launchChromium, skipWithoutChromium, enterChat } from './helpers.js'

const skip = skipWithoutChromium()

async function startNode (prefix: string): Promise<{ base: string, close: () => Promise<void> }> {
  const app = await buildChatApp({ password: 'sesame', channels: { broker: redisBroker({ url: redisUrl, prefix }) } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: async () => await app.close() }
}

/** Waits until the member list shows exactly `expected` (nick text, then device label if any). */
async function membersAre (page: Page, expected: string[]): Promise<void> {
  const shown = async (): Promise<string[]> => await page.locator('#members li').allTextContents()
  try {
    await page.waitForFunction((want) => JSON.stringify(Array.from(document.querySelectorAll('#members li'))
      .map((li) => li.textContent ?? '')) === JSON.stringify(want), expected, { timeout: 15000 })
  } catch {
    throw new Error(`member list ${JSON.stringify(expected)} not shown within 15 s; it shows ${JSON.stringify(await shown())}`)
  }
}

t.test('member lists over two chat nodes on one Redis', { skip }, async (t) => {
  await withRedis(t, async () => {
    await ensureClientBundle()
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const nodeA = await startNode(prefix)
    const nodeB = await startNode(prefix)
    t.teardown(async () => { await nodeA.close(); await nodeB.close() })
    const browser = await launchChromium()
    t.teardown(() => browser.close())

    const ada = await enterChat(browser, nodeA.base, 'ada')
    const grace = await enterChat(browser, nodeB.base, 'grace')
    await membersAre(ada.page, ['Aada (you)', 'Ggrace'])
    await membersAre(grace.page, ['Aada', 'Ggrace (you)'])
    t.pass('pages on two nodes see each other')

    const graceTab = await enterChat(browser, nodeA.base, 'grace')
    await membersAre(ada.page, ['Aada (you)', 'Ggrace2 devices'])
    await membersAre(grace.page, ['Aada', 'Ggrace (you)2 devices'])
    t.pass('two tabs of one nick: one member, two devices')

    await graceTab.page.close()
    await membersAre(ada.page, ['Aada (you)', 'Ggrace'])
    await grace.page.click('#leave')
    await membersAre(ada.page, ['Aada (you)'])
    t.pass('a closed tab and a left room update the other node\'s list')
    t.same([...ada.errors, ...grace.errors, ...graceTab.errors], [], 'no page errors')
  })
})
