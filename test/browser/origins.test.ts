/**
 * Cross-site WebSocket hijacking, tried in a real browser (headless Chromium): a page served by
 * a second server on another port opens a socket to the example chat. Cookies do not isolate
 * ports, so that upgrade carries the chat user's cookie; the chat refuses it (403) by default,
 * while the chat's own page connects. Listing the other origin in `origins` lets it in.
 */
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import type { Browser } from 'playwright-core'
import { buildChatApp } from '../../example-chat/server.js'
import type { ChannelsOptions } from '../../plugin/index.js'
import { ensureClientBundle } from '../client/helpers.js'
import { enterChat, launchChromium, pageReaches, skipWithoutChromium } from './helpers.js'

const skip = skipWithoutChromium()

interface LogLine { msg: string, origin?: string }
interface Upgrade { origin?: string, cookie?: string }
interface Chat { app: FastifyInstance, base: string, logs: LogLine[], upgrades: Upgrade[] }

const baseOf = (app: FastifyInstance): string => `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

async function startChat (channels: ChannelsOptions = {}): Promise<Chat> {
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  const app = await buildChatApp({ password: 'sesame', logger: { level: 'info', stream }, channels })
  const upgrades: Upgrade[] = []
  app.addHook('onRequest', async (request) => {
    if (request.ws) upgrades.push({ origin: request.headers.origin, cookie: request.headers.cookie })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, logs, upgrades, base: baseOf(app) }
}

/** The hijacking site: one page that tries to open a socket to `target` and reports how it went. */
async function startOtherSite (): Promise<{ app: FastifyInstance, base: string, setTarget: (url: string) => void }> {
  let target = ''
  const app = Fastify()
  app.get('/favicon.ico', (_request, reply) => reply.code(204).send())
  app.get('/', (_request, reply) => reply.type('text/html').send(`<!doctype html><meta charset="utf-8"><title>other site</title>
<script>
const outcome = window.outcome = { frames: [] }
const ws = new WebSocket(${JSON.stringify(target)})
ws.onopen = () => { outcome.opened = true }
ws.onmessage = (event) => { outcome.frames.push(JSON.parse(event.data)) }
ws.onclose = (event) => { outcome.closed = event.code }
</script>`))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, base: baseOf(app), setTarget: (url) => { target = url } }
}

interface Outcome { opened?: boolean, closed?: number, frames: Array<{ type: string }> }

/**
 * Visits the other site in a fresh context holding the chat's session cookie; returns what its
 * socket did once it was either closed or welcomed.
 */
async function visitOtherSite (browser: Browser, chatBase: string, siteBase: string): Promise<Outcome> {
  const context = await browser.newContext()
  await context.addCookies([{ name: 'session', value: 'alice-secret', url: chatBase }])
  const page = await context.newPage()
  await page.goto(siteBase)
  await pageReaches(page, () => {
    const outcome = (window as unknown as { outcome: Outcome }).outcome
    return outcome.closed !== undefined || outcome.frames.some((frame) => frame.type === 'welcome')
  }, 'the other site\'s socket is either closed or welcomed')
  const outcome = await page.evaluate(() => (window as unknown as { outcome: Outcome }).outcome)
  await context.close()
  return outcome
}

t.test('in Chromium, a page of another site cannot open the chat\'s socket; the chat\'s own page can', { skip }, async (t) => {
  await ensureClientBundle()
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const site = await startOtherSite()
  t.teardown(() => site.app.close())

  await t.test('by default the other site is refused with 403, though its upgrade carries the user\'s cookie', async (t) => {
    const chat = await startChat()
    t.teardown(() => chat.app.close())
    site.setTarget(`${chat.base.replace('http:', 'ws:')}/ws`)

    const outcome = await visitOtherSite(browser, chat.base, site.base)
    t.notOk(outcome.opened, 'the socket never opened')
    t.equal(outcome.closed, 1006, 'the browser reports a failed handshake')
    t.same(outcome.frames, [], 'not a frame reached the other site')
    t.same(chat.upgrades, [{ origin: site.base, cookie: 'session=alice-secret' }],
      'the browser sent the chat\'s cookie with the other site\'s upgrade: this is what the check is for')
    t.same(chat.logs.filter((line) => line.msg === 'channels: upgrade refused: origin not allowed').map((line) => line.origin),
      [site.base], 'the refusal is logged with the page\'s origin')
    t.equal(chat.app.channels.stats().sockets, 0, 'no socket on the chat')

    // The chat's own page, in its real UI, connects and joins the lobby.
    const { page, errors } = await enterChat(browser, chat.base, 'ada')
    t.teardown(() => page.context().close())
    t.equal(chat.app.channels.stats().sockets, 1, 'the chat\'s own page holds a socket')
    t.equal(chat.upgrades.at(-1)?.origin, chat.base, 'sent from the chat\'s own origin')
    t.same(errors, [])
  })

  await t.test('listed in origins, the other site may open a socket', async (t) => {
    const chat = await startChat({ origins: [site.base] })
    t.teardown(() => chat.app.close())
    site.setTarget(`${chat.base.replace('http:', 'ws:')}/ws`)
    const outcome = await visitOtherSite(browser, chat.base, site.base)
    t.ok(outcome.opened)
    t.equal(outcome.frames[0]?.type, 'welcome')
  })
})
