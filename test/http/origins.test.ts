/**
 * The `origins` option: cross-site WebSocket hijacking is refused with 403 before any socket
 * exists; the server's own origin, upgrades without Origin, listed origins and patterns pass;
 * `trustProxy` decides whether X-Forwarded-Proto/Host name the server's own origin.
 */
import t, { type Test } from 'tap'
import type { FastifyServerOptions } from 'fastify'
import { Writable } from 'node:stream'
import { within } from '../helpers/deadline.js'
import { connectionsSettleAt, openConnections, rawUpgrade, startApp, TestClient, type TestApp } from '../helpers/server.js'
import type { ChannelsOptions } from '../../plugin/index.js'

interface LogLine { level: number, msg: string, origin?: string }

/** An app on loopback whose log lines are kept, closed at the end of the test. */
async function start (t: Test, options: ChannelsOptions = {}, trustProxy: FastifyServerOptions['trustProxy'] = false): Promise<TestApp & { logs: LogLine[] }> {
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  const started = await startApp(options, undefined, { logger: { level: 'info', stream }, trustProxy })
  t.teardown(() => started.app.close())
  return { ...started, logs }
}

/** Opens a socket as a page of `origin` would; resolves to 'open' or the refusing HTTP status. */
async function attempt (url: string, origin: string | undefined, headers: Record<string, string> = {}): Promise<'open' | number> {
  try {
    const client = await TestClient.open(url, { headers: origin === undefined ? headers : { origin, ...headers } })
    client.close()
    await within(client.closed, 3000, 'an accepted client closes when it asks to')
    return 'open'
  } catch (err) {
    return (err as { statusCode?: number }).statusCode ?? -1
  }
}

t.test('by default a page of another origin is refused with 403, a clear body and an info line; no socket is made', async (t) => {
  const { app, port, logs } = await start(t)
  let connects = 0
  app.channels.on('connect', () => { connects++ })

  const answer = await rawUpgrade(port, { origin: 'https://evil.example.net' })
  t.match(answer, /^HTTP\/1.1 403 Forbidden\r\n/, '403, and the server hung up')
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
  t.same(body, {
    statusCode: 403,
    code: 'FST_CHANNELS_FORBIDDEN_ORIGIN',
    error: 'Forbidden',
    message: 'pages from https://evil.example.net may not open a WebSocket here (see the origins option of fastify-channels)'
  })
  const refusal = logs.filter((line) => line.msg === 'channels: upgrade refused: origin not allowed')
  t.equal(refusal.length, 1, 'one log line')
  t.equal(refusal[0]?.level, 30, 'at info')
  t.equal(refusal[0]?.origin, 'https://evil.example.net')
  t.equal(connects, 0, 'no connect handler ran')
  t.equal(app.websocketServer.clients.size, 0, 'no WebSocket was created')
  t.equal(app.channels.stats().sockets, 0)
  await connectionsSettleAt(app, 0)
})

t.test('another port, another scheme, `null` and a malformed Origin are other origins; the own origin and no Origin pass', async (t) => {
  const { port, url } = await start(t)
  t.equal(await attempt(url, `http://127.0.0.1:${port}`), 'open', 'the server\'s own origin')
  t.equal(await attempt(url, `HTTP://127.0.0.1:${port}`), 'open', 'compared as serialized origins')
  t.equal(await attempt(url, undefined), 'open', 'no Origin: not a browser page')
  t.equal(await attempt(url, `http://127.0.0.1:${port + 1}`), 403, 'another port')
  t.equal(await attempt(url, `https://127.0.0.1:${port}`), 403, 'another scheme')
  t.equal(await attempt(url, `http://localhost:${port}`), 403, 'another host name for the same address')
  t.equal(await attempt(url, 'null'), 403, 'a sandboxed page or a file: URL')
  t.equal(await attempt(url, 'not an origin'), 403, 'garbage')
  t.equal(await attempt(url, ''), 403, 'an empty Origin')
  t.equal(await attempt(url, `http://localhost:${port}`, { host: `localhost:${port}` }), 'open',
    'the own origin is the one the Host header names')
  const draft = await TestClient.open(url, { protocolVersion: 8, origin: 'https://evil.example.net' })
    .then(() => 'open', (err: { statusCode?: number }) => err.statusCode)
  t.equal(draft, 403, 'protocol version 8 names it Sec-WebSocket-Origin: refused all the same')
})

t.test('listed origins and anchored patterns are allowed on top of the own origin', async (t) => {
  const { port, url } = await start(t, {
    origins: ['https://app.example.com', 'http://localhost:5173', /https:\/\/[a-z0-9-]+\.preview\.example\.com/g]
  })
  t.equal(await attempt(url, 'https://app.example.com'), 'open', 'an exact origin')
  t.equal(await attempt(url, 'https://app.example.com:443'), 'open', 'the default port is the same origin')
  t.equal(await attempt(url, 'http://localhost:5173'), 'open', 'a dev server on another port')
  t.equal(await attempt(url, `http://127.0.0.1:${port}`), 'open', 'the own origin still')
  t.equal(await attempt(url, 'https://pr-12.preview.example.com'), 'open', 'a pattern')
  t.equal(await attempt(url, 'https://pr-13.preview.example.com'), 'open', 'a pattern with the g flag keeps matching')
  t.equal(await attempt(url, 'https://pr-13.preview.example.com'), 'open', 'again')
  t.equal(await attempt(url, 'http://app.example.com'), 403, 'http is not https')
  t.equal(await attempt(url, 'https://app.example.com:8443'), 403, 'another port is not listed')
  t.equal(await attempt(url, 'http://localhost:5174'), 403)
  t.equal(await attempt(url, 'https://pr-12.preview.example.com.evil.net'), 403, 'a pattern matches the whole origin')
  t.equal(await attempt(url, 'https://evil.net#https://pr-12.preview.example.com'), 403, 'not the tail of one either')
  t.equal(await attempt(url, 'https://x.pr-12.preview.example.com'), 403)
})

t.test("'*' allows every page", async (t) => {
  const { url } = await start(t, { origins: '*' })
  t.equal(await attempt(url, 'https://evil.example.net'), 'open')
  t.equal(await attempt(url, 'null'), 'open')
  t.equal(await attempt(url, undefined), 'open')
})

t.test('behind a trusted proxy the own origin is the one X-Forwarded-Proto and X-Forwarded-Host name', async (t) => {
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'chat.example.com' }
  await t.test('trustProxy: true', async (t) => {
    const { port, url } = await start(t, {}, true)
    t.equal(await attempt(url, 'https://chat.example.com', forwarded), 'open', 'the page the proxy served')
    t.equal(await attempt(url, 'https://chat.example.com', { ...forwarded, 'x-forwarded-proto': 'wss' }), 'open',
      'a proxy that names the WebSocket scheme')
    t.equal(await attempt(url, 'http://chat.example.com', forwarded), 403, 'the http page of that host')
    t.equal(await attempt(url, `http://127.0.0.1:${port}`, forwarded), 403, 'the address behind the proxy')
    t.equal(await attempt(url, 'https://chat.example.com', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example.net, chat.example.com' }),
      'open', 'the last (nearest) proxy\'s entry counts, as in request.host')
    t.equal(await attempt(url, `http://127.0.0.1:${port}`), 'open', 'no forwarding headers: the Host header')
  })
  await t.test('without trustProxy the forwarding headers are anyone\'s and are ignored', async (t) => {
    const { port, url } = await start(t)
    t.equal(await attempt(url, 'https://chat.example.com', forwarded), 403)
    t.equal(await attempt(url, `http://127.0.0.1:${port}`, forwarded), 'open')
  })
  await t.test('trustProxy naming another address: a peer on loopback is not trusted', async (t) => {
    const { url } = await start(t, {}, '10.0.0.1')
    t.equal(await attempt(url, 'https://chat.example.com', forwarded), 403)
  })
})

t.test('the own origin whatever the letter case of Host, and with its default port or an IPv6 address', async (t) => {
  const { port, url } = await start(t)
  t.equal(await attempt(url, `http://localhost:${port}`, { host: `LOCALHOST:${port}` }), 'open', 'Host in upper case')
  t.equal(await attempt(url, `http://chat.example.com:${port}`, { host: `Chat.Example.COM:${port}` }), 'open', 'Host in mixed case')
  t.equal(await attempt(url, `http://CHAT.example.com:${port}`, { host: `chat.EXAMPLE.com:${port}` }), 'open',
    'an Origin in another case than Host (browsers send it lower-cased; compared as serialized origins)')
  t.equal(await attempt(url, 'http://chat.example.com', { host: 'CHAT.EXAMPLE.COM:80' }), 'open', 'the default port in Host is the same origin')
  t.equal(await attempt(url, `http://[::1]:${port}`, { host: `[::1]:${port}` }), 'open', 'an IPv6 Host')
  t.equal(await attempt(url, `http://chat.example.com:${port + 1}`, { host: `CHAT.EXAMPLE.COM:${port}` }), 403, 'case aside, another port is another origin')
  t.equal(await attempt(url, `http://chat.example.net:${port}`, { host: `CHAT.EXAMPLE.COM:${port}` }), 403, 'and another host another origin')
})

t.test('behind a trusted proxy, X-Forwarded-Host names the own origin: alone, with a port, in any letter case', async (t) => {
  const { port, url } = await start(t, {}, true)
  t.equal(await attempt(url, 'http://chat.example.com', { 'x-forwarded-host': 'chat.example.com' }), 'open',
    'without X-Forwarded-Proto the scheme is the connection\'s own (http)')
  t.equal(await attempt(url, 'https://chat.example.com', { 'x-forwarded-host': 'chat.example.com' }), 403, 'so not https')
  t.equal(await attempt(url, 'https://chat.example.com', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'CHAT.Example.COM' }), 'open',
    'X-Forwarded-Host in mixed case')
  t.equal(await attempt(url, 'https://chat.example.com:8443', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'chat.example.com:8443' }), 'open',
    'a port in X-Forwarded-Host')
  t.equal(await attempt(url, 'https://chat.example.com', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'Chat.Example.Com:443' }), 'open',
    'the default port of the forwarded scheme is the same origin')
  t.equal(await attempt(url, 'https://chat.example.com', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'chat.example.com:8443' }), 403,
    'a forwarded port other than the default is part of the origin')
  t.equal(await attempt(url, `http://127.0.0.1:${port}`, { 'x-forwarded-host': 'CHAT.EXAMPLE.COM', host: `127.0.0.1:${port}` }), 403,
    'X-Forwarded-Host wins over Host: the address behind the proxy is not the page\'s origin')
  t.equal(await attempt(url, 'http://chat.example.com', { 'x-forwarded-host': 'evil.example.net, CHAT.example.com' }), 'open',
    'the nearest proxy\'s entry counts, in any case')
  for (const proto of ['HTTPS', 'WSS', 'Wss', 'http, WSS']) {
    t.equal(await attempt(url, 'https://chat.example.com', { 'x-forwarded-proto': proto, 'x-forwarded-host': 'chat.example.com' }), 'open',
      `X-Forwarded-Proto: ${proto}`)
  }
  t.equal(await attempt(url, 'http://chat.example.com', { 'x-forwarded-proto': 'WS', 'x-forwarded-host': 'chat.example.com' }), 'open',
    'X-Forwarded-Proto: WS is the http page')
})

t.test('a plain HTTP GET of the route is not an upgrade: the origin check leaves it alone', async (t) => {
  const { app } = await start(t)
  const response = await app.inject({ url: '/ws', headers: { origin: 'https://evil.example.net' } })
  t.equal(response.statusCode, 404, "@fastify/websocket's own answer")
})

t.test('hundreds of refused upgrades leave no socket, and fastify.close() stays prompt', async (t) => {
  const { app, port, url } = await start(t)
  const kept = await TestClient.connect(url)
  const answers: string[] = []
  for (let batch = 0; batch < 6; batch++) {
    answers.push(...await Promise.all(Array.from({ length: 50 }, () => rawUpgrade(port, { origin: 'https://evil.example.net' }))))
  }
  t.equal(answers.filter((answer) => answer.startsWith('HTTP/1.1 403 ')).length, 300, '300 refused with 403')
  await connectionsSettleAt(app, 1)
  t.equal(app.websocketServer.clients.size, 1, 'only the accepted socket')
  t.equal(app.channels.stats().sockets, 1)
  const closeStarted = performance.now()
  await app.close()
  const ms = performance.now() - closeStarted
  t.ok(ms < 1000, `close() completed promptly (${Math.round(ms)} ms)`)
  t.equal((await within(kept.closed, 3000, 'fastify.close() closes the accepted socket')).code, 1001)
  t.equal(await openConnections(app), 0)
})
