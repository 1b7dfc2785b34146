/**
 * The bundled client in Chromium, on a bare page: it loads from /channels/client.js as an ES
 * module, resolves a relative URL, subscribes, requests, gets coded errors, reconnects and
 * resubscribes; and it still works under a Content-Security-Policy that forbids eval (the
 * codec falls back from compiled to interpreted checks).
 */
import t from 'tap'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { ChannelError } from '../../plugin/index.js'
import type { ChannelSocket } from '../../plugin/types.js'
import { ensureClientBundle } from '../client/helpers.js'
import { startApp, until } from '../helpers/server.js'
import { launchChromium, pageErrors, pageReaches, skipWithoutChromium } from './helpers.js'

const skip = skipWithoutChromium()

const page = (csp: boolean): string => `<!doctype html><meta charset="utf-8"><title>client test</title>
${csp ? '' : '<!-- no CSP -->'}<script type="module" src="/test.js"></script>`

// Runs in the page: drives the client and reports every step on window.results.
const script = `
import { connect } from '/channels/client.js'
const results = window.results = { steps: [], errors: [], statuses: [] }
try { results.evalAllowed = new Function('return true')() } catch { results.evalAllowed = false }
const client = window.client = connect('/ws', { backoff: () => 20 })
client.onStatus((status) => results.statuses.push(status))
client.on('news', (data, meta) => results.steps.push(['news', data, meta.channel]))
try {
  await client.subscribe('room-1')
  results.steps.push(['subscribed', client.channels])
  results.steps.push(['reply', await client.request('echo', { text: 'hi' }, { channel: 'room-1' })])
  for (const attempt of [
    () => client.subscribe('private-x'),
    () => client.request('echo', { text: 42 }, { channel: 'room-1' }),
    () => client.request('echo', { text: 'hi' }, { channel: 'room-2' })
  ]) {
    await attempt().then(() => results.errors.push('accepted'), (err) => results.errors.push({ code: err.code, errors: err.errors, name: err.name }))
  }
  results.ready = true
} catch (err) {
  results.failed = String(err && err.stack || err)
}
`

async function server (csp: boolean): Promise<{ app: FastifyInstance, base: string, sockets: ChannelSocket[] }> {
  const sockets: ChannelSocket[] = []
  const { app, port } = await startApp({ client: '/channels/' }, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket) })
    app.channels.on('subscribe', { channel: /^private-/ }, () => { throw new ChannelError('FORBIDDEN', 'no') })
    app.channels.on('message', { event: 'echo', schema: Type.Object({ text: Type.String() }) }, (_socket, data) => data)
    app.addHook('onSend', async (_request, reply) => {
      if (csp) reply.header('content-security-policy', "default-src 'self'; script-src 'self'; connect-src 'self'")
    })
    app.get('/', (_request, reply) => reply.type('text/html').send(page(csp)))
    app.get('/favicon.ico', (_request, reply) => reply.code(204).send())
    app.get('/test.js', (_request, reply) => reply.type('text/javascript').send(script))
  })
  return { app, sockets, base: `http://127.0.0.1:${port}` }
}

for (const csp of [false, true]) {
  t.test(`the bundled client in Chromium${csp ? ', under a CSP without unsafe-eval' : ''}`, { skip }, async (t) => {
    await ensureClientBundle()
    const { app, base, sockets } = await server(csp)
    t.teardown(() => app.close())
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const tab = await browser.newPage()
    const errors = pageErrors(tab)
    await tab.goto(base)
    await pageReaches(tab, () => {
      const results = (window as unknown as { results?: { ready?: boolean, failed?: string } }).results
      return results?.ready === true || results?.failed !== undefined
    }, 'the page\'s script runs to its end')
    const results = await tab.evaluate(() => (window as unknown as { results: Record<string, unknown> }).results)
    t.equal(results.failed, undefined)
    t.equal(results.evalAllowed, !csp, csp ? 'the CSP forbids eval: the codec checks frames without compiling' : 'eval allowed')
    t.same(results.steps, [['subscribed', ['room-1']], ['reply', { text: 'hi' }]])
    t.match(results.errors, [
      { code: 'FORBIDDEN', name: 'ChannelsClientError' },
      { code: 'VALIDATION_FAILED', errors: [{ path: '/text' }] },
      { code: 'NOT_SUBSCRIBED' }
    ])
    t.same(results.statuses, ['open'])
    t.equal(sockets.length, 1)
    t.equal(await tab.evaluate(() => (window as unknown as { client: { sessionId: string } }).client.sessionId), sockets[0].id,
      'the relative URL reached this server')

    // The server drops the connection: the page reconnects and resubscribes by itself.
    sockets[0].close(4000, 'test')
    await until(() => sockets.length === 2 && sockets[1].channels.has('room-1'), 10_000, 'the page reconnects and resubscribes room-1')
    await app.broadcastChannel('room-1', { n: 1 }, { event: 'news' })
    await pageReaches(tab, () => (window as unknown as { results: { steps: unknown[][] } }).results.steps.some((step) => step[0] === 'news'),
      'the news broadcast after the reconnect reaches the page')
    const after = await tab.evaluate(() => (window as unknown as { results: { steps: unknown[], statuses: string[] } }).results)
    t.same(after.statuses, ['open', 'reconnecting', 'open'])
    t.same(after.steps.at(-1), ['news', { n: 1 }, 'room-1'])
    t.same(errors.filter((error) => !/WebSocket/.test(error)), [], 'no page errors')
  })
}
