/**
 * The admin page in headless Chromium, on two nodes over Redis: both nodes shown, their numbers
 * move within 2 s of a change, a session on the other node is disconnected from the page (after
 * its confirmation), a channel's presence and history show, errors show, the page is readable on
 * a phone, and without `authorize` saying yes the page and its feed are refused with 401.
 */
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import type { Page } from 'playwright-core'
import { within } from '../helpers/deadline.js'
import { TestClient } from '../helpers/server.js'
import { launchChromium, pageErrors, pageReaches, screenshotPath, skipWithoutChromium } from '../browser/helpers.js'
import { deleteKeys, startNode, uniquePrefix, withRedis } from '../redis/helpers.js'

const skip = skipWithoutChromium()
const token = 'page-token'
/** The page's requests carry its query string: a token there is one way to authorize. */
const authorize = (request: FastifyRequest): boolean => (request.query as { token?: string }).token === token

async function cellText (page: Page, node: string, field: string): Promise<string> {
  return await page.locator(`#nodes tr[data-node="${node}"] td[data-field="${field}"]`).innerText()
}

t.test('the admin page over two nodes', { skip }, async (t) => {
  await withRedis(t, async () => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const options = { admin: { authorize }, presence: /^room-/, history: { channel: /^room-/, size: 20 } }
    const setup = (app: Awaited<ReturnType<typeof startNode>>['app']): void => {
      app.channels.on('message', { event: 'here' }, async (socket, data, meta) => {
        await socket.track(meta.channel ?? '', String(data), { from: 'test' })
      })
      app.channels.on('message', { event: 'fail' }, () => { throw new Error('<b>boom</b>') })
    }
    const one = await startNode(t, { prefix }, setup, options)
    const two = await startNode(t, { prefix }, setup, options)
    const oneId = one.app.channels.stats().node
    const twoId = two.app.channels.stats().node
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    context.setDefaultTimeout(10_000)
    const page = await context.newPage()
    const errors = pageErrors(page)

    const base = `http://127.0.0.1:${one.port}/channels/admin`
    const refused = await page.goto(base)
    t.equal(refused?.status(), 401, 'the page without the token')
    t.notMatch(await page.content(), /admin\.js|EventSource/, 'nothing of the page')
    const feed = await page.request.get(`${base}/api/feed`)
    t.equal(feed.status(), 401, 'the feed without the token')
    errors.length = 0 // the 401 above is logged by the browser as a failed resource

    await page.goto(`${base}?token=${token}`)
    await pageReaches(page, () => document.querySelectorAll('#nodes tbody tr').length === 2, 'both nodes shown')
    t.equal(await page.locator('#status').getAttribute('data-status'), 'live')
    t.equal(await page.locator('#nodes tr.self').getAttribute('data-node'), oneId, 'this node first')

    // numbers move within 2 s: a connection and a subscription on the other node
    const client = await TestClient.connect(two.url)
    await client.subscribe('room-1')
    const moved = Date.now()
    await pageReaches(page, () => {
      const row = Array.from(document.querySelectorAll<HTMLElement>('#nodes tbody tr')).find((row) => !row.classList.contains('self'))
      return row?.querySelector('[data-field="connections"]')?.textContent === '1' && row.querySelector('[data-field="subscriptions"]')?.textContent === '1'
    }, 'the other node\'s connection shows', 2500)
    t.ok(Date.now() - moved <= 2500, `shown after ${Date.now() - moved} ms`)
    t.equal(await cellText(page, twoId, 'connections'), '1')
    t.equal(await page.locator('#total-connections').innerText(), '1')

    // a busy channel: publications on node one show in the busiest list and in the rates
    const publishing = setInterval(() => { one.app.broadcastChannel('room-1', { at: Date.now() }, { event: 'tick' }).catch(() => {}) }, 50)
    t.teardown(() => clearInterval(publishing))
    await pageReaches(page, () => document.querySelector('#busiest tr[data-channel="room-1"]') !== null, 'the busy channel listed', 3000)
    await pageReaches(page, () => Number(document.querySelector('#total-deliveries')?.textContent) > 0, 'deliveries per second move', 3000)
    clearInterval(publishing)

    // a channel's presence and history
    client.send({ type: 'message', event: 'here', channel: 'room-1', data: 'ada', id: 1 })
    await client.next((frame) => frame.type === 'ack' && frame.id === 1)
    await page.click('#busiest tr[data-channel="room-1"] button')
    await pageReaches(page, () => /presence: 1 key/.test(document.querySelector('#channel-view')?.textContent ?? ''), 'the presence shows')
    t.match(await page.locator('#channel-view').innerText(), /ada × 1/)
    t.match(await page.locator('#channel-view').innerText(), /tick: \{"at":\d+\}/, 'the last history entries show')

    // an error on the other node shows, as text
    client.send({ type: 'message', event: 'fail', data: null, id: 2 })
    await pageReaches(page, () => document.querySelector('#events tr[data-kind="error"]') !== null, 'the error shows', 3000)
    t.match(await page.locator('#events tr[data-kind="error"] td.message').innerText(), 'Error: <b>boom</b>', 'as text, not HTML')
    t.equal(await page.locator('#events b').count(), 0)

    // disconnect the session on the other node, after the confirmation
    const dialogs: string[] = []
    page.once('dialog', (dialog) => { dialogs.push(dialog.message()); dialog.accept().catch(() => {}) })
    await page.fill('#session-input', client.sessionId)
    await page.click('#disconnect-form button[type=submit]')
    const { code } = await within(client.closed, 3000, 'the session is closed from the page')
    t.equal(code, 1008)
    t.match(dialogs[0], client.sessionId, 'asked first')
    await pageReaches(page, () => /asked every node/.test(document.querySelector('#disconnect-result')?.textContent ?? ''), 'the result shows')
    await pageReaches(page, () => {
      const row = Array.from(document.querySelectorAll<HTMLElement>('#nodes tbody tr')).find((row) => !row.classList.contains('self'))
      return row?.querySelector('[data-field="connections"]')?.textContent === '0'
    }, 'the count drops', 2500)

    // dismissed: nothing happens
    const kept = await TestClient.connect(two.url)
    t.teardown(() => kept.close())
    page.once('dialog', (dialog) => { dialog.dismiss().catch(() => {}) })
    await page.fill('#session-input', kept.sessionId)
    await page.click('#disconnect-form button[type=submit]')
    await new Promise((resolve) => setTimeout(resolve, 500))
    t.equal(kept.ws.readyState, kept.ws.OPEN, 'a dismissed confirmation closes nothing')

    await page.screenshot({ path: screenshotPath('admin-desktop.png'), fullPage: true })
    await page.setViewportSize({ width: 390, height: 844 })
    const width = await page.evaluate(() => document.documentElement.scrollWidth)
    t.ok(width <= 390, `no sideways scrolling of the page on a phone (${width}px)`)
    await page.screenshot({ path: screenshotPath('admin-phone.png'), fullPage: true })

    // the node that closes leaves the page
    await two.app.close()
    await pageReaches(page, () => document.querySelectorAll('#nodes tbody tr').length === 1, 'the closed node leaves', 3000)
    t.same(errors, [], 'no page errors')
  })
})
