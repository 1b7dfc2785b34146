/**
 * The admin routes on one node: the `admin` option's checks, `authorize` on every route (the
 * page, its assets, the API and the live feed: 401 and nothing of the page otherwise), the feed,
 * a channel's presence and history, and a session disconnect. The page in a browser, on two
 * nodes over Redis, is browser.test.ts.
 */
import t from 'tap'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyRequest } from 'fastify'
import Fastify from 'fastify'
import fastifyChannels, { memoryBroker, type Broker } from '../../plugin/index.js'
import type { BrokerConnection, PresenceBroker } from '../../plugin/broker/types.js'
import { disconnectReason, FeedHub } from '../../plugin/admin/routes.js'
import { adminHtml } from '../../plugin/admin/page.js'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient } from '../helpers/server.js'

const token = 'secret-token'
const authorize = (request: FastifyRequest): boolean => request.headers.authorization === `Bearer ${token}`
const auth = { authorization: `Bearer ${token}` }

/** Opens the live feed; resolves with the response and its first `nodes` event. */
function openFeed (port: number, path: string, headers: Record<string, string>): Promise<{ response: IncomingMessage, first: Promise<unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (response) => {
      let text = ''
      const first = new Promise((resolve) => {
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString()
          const match = /event: nodes\ndata: (.*)\n\n/.exec(text)
          if (match !== null) resolve(JSON.parse(match[1]))
        })
      })
      resolve({ response, first })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('the admin option: authorize is required, a path must be a route path', async (t) => {
  const bad: unknown[] = [true, {}, { path: '/x' }, { authorize: 'yes' }, { authorize, path: 5 }, { authorize, path: '' }, () => true, 'admin', { authorize, path: 'admin' }, { authorize, path: '/' },
    { authorize, path: '/admin/' }, { authorize, extra: 1 }, null, []]
  for (const admin of bad) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(fastifyChannels, { admin } as never) }, { code: 'FST_CHANNELS_INVALID_OPTION' }, JSON.stringify(admin))
    await app.close()
  }
  const messages: Array<[unknown, RegExp]> = [
    ['admin', /admin: expected false or \{ path\?, authorize \} \(authorize is required\)/], [() => true, /admin: expected false or/],
    [{ authorize, extra: 1 }, /admin\.extra: unknown option/],
    [{ path: '/x' }, /admin\.authorize: required, a function \(request\) => boolean \| Promise<boolean>/],
    [{ authorize, path: '/admin/' }, /admin\.path: expected a route path starting with "\/" and not ending with one, got \/admin\//]
  ]
  for (const [admin, message] of messages) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(fastifyChannels, { admin } as never) }, { message }, `the message says what is wrong: ${typeof admin === 'function' ? 'a function' : JSON.stringify(admin)}`)
    await app.close()
  }
  const app = Fastify()
  await app.register(fastifyChannels, { admin: false, client: false })
  t.equal((await app.inject('/channels/admin')).statusCode, 404, 'off by default: nothing served')
  await app.close()
})

t.test('without authorize saying true, every route answers 401 and nothing of the page', async (t) => {
  const calls: string[] = []
  const { app } = await startApp({
    admin: {
      authorize: async (request) => {
        calls.push(request.url)
        if (request.headers['x-throw'] !== undefined) throw new Error('authorize broke')
        if (request.headers['x-truthy'] !== undefined) return 'yes' as unknown as boolean
        return authorize(request)
      }
    }
  })
  t.teardown(() => app.close())
  const routes: Array<{ method: 'GET' | 'POST' | 'HEAD', url: string }> = [
    { method: 'GET', url: '/channels/admin' }, { method: 'HEAD', url: '/channels/admin' },
    { method: 'GET', url: '/channels/admin/admin.js' }, { method: 'GET', url: '/channels/admin/admin.css' },
    { method: 'GET', url: '/channels/admin/api/nodes' }, { method: 'GET', url: '/channels/admin/api/feed' },
    { method: 'GET', url: '/channels/admin/api/channel?name=room' }, { method: 'POST', url: '/channels/admin/api/disconnect' }
  ]
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { ...auth, 'x-throw': '1' }, { ...auth, 'x-truthy': '1' }]) {
    for (const route of routes) {
      const reply = await app.inject({ ...route, headers, ...(route.method === 'POST' ? { payload: { sessionId: 'x' } } : {}) })
      t.equal(reply.statusCode, 401, `${route.method} ${route.url} ${JSON.stringify(headers)}`)
      t.notMatch(reply.body, /admin|<html|nodes|EventSource/i, 'nothing of the page in the answer')
      t.equal(reply.headers['cache-control'], 'no-store')
    }
  }
  t.equal(calls.length, routes.length * 4, 'authorize ran for every request')
  for (const route of routes.filter((route) => route.method === 'GET' && !route.url.endsWith('/feed'))) { // the feed, a stream: below
    const reply = await app.inject({ ...route, headers: auth })
    t.equal(reply.statusCode, 200, `${route.url} with authorize true`)
  }
})

t.test('the page and its assets, with headers that keep it out of frames and caches', async (t) => {
  const { app } = await startApp({ admin: { path: '/ops', authorize } })
  t.teardown(() => app.close())
  const page = await app.inject({ url: '/ops', headers: auth })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], /frame-ancestors 'none'/)
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.match(page.body, 'src="/ops/admin.js"')
  const withQuery = await app.inject({ url: '/ops?token=a&b="1"', headers: auth })
  t.match(withQuery.body, 'src="/ops/admin.js?token=a&amp;b=%221%22"', 'the assets are asked for with the page\'s query')
  t.match(withQuery.body, 'href="/ops/admin.css?token=a&amp;b=%221%22"')
  const raw = adminHtml('/ops', '?a="><script>alert(1)</script>')
  t.notMatch(raw, '"><script>alert', 'a query is escaped in the HTML')
  t.match(raw, 'src="/ops/admin.js?a=&quot;&gt;&lt;script&gt;')
  t.match(adminHtml('/ops', "?a='b&c"), 'src="/ops/admin.js?a=&#39;b&amp;c"', 'quotes and ampersands too')
  t.match(adminHtml('/ops'), 'src="/ops/admin.js"></script>', 'no query: nothing after the asset\'s path')
  t.match(page.body, 'data-base="/ops"')
  const script = await app.inject({ url: '/ops/admin.js', headers: auth })
  t.match(script.headers['content-type'], /^text\/javascript/)
  t.match(script.body, /EventSource/)
  t.doesNotThrow(() => new Function(script.body), 'the served script parses') // eslint-disable-line no-new-func
  const css = await app.inject({ url: '/ops/admin.css', headers: auth })
  t.match(css.headers['content-type'], /^text\/css/)
  t.match(css.body, /@media|grid-template-columns/, 'the stylesheet itself, its layout that stacks on a phone')
  t.equal((await app.inject({ url: '/channels/admin', headers: auth })).statusCode, 404, 'only under the path asked for')
})

t.test('the live feed: nodes() once a second, through authorize; fastify.close() ends it', async (t) => {
  const { app, port, url } = await startApp({ admin: { authorize } })
  let closed = false
  t.teardown(async () => { if (!closed) await app.close() })
  const refused = await openFeed(port, '/channels/admin/api/feed', {})
  t.equal(refused.response.statusCode, 401, 'the feed refused without authorize')
  refused.response.resume()

  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  const { response, first } = await openFeed(port, '/channels/admin/api/feed', auth)
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/event-stream/)
  const feed = await within(first, 3000, 'the first nodes event') as { nodes: Array<{ connections: number, node: string }> }
  t.equal(feed.nodes.length, 1)
  t.equal(feed.nodes[0].connections, 1)
  t.equal(feed.nodes[0].node, app.channels.stats().node)
  const ended = new Promise((resolve) => response.on('end', resolve))
  closed = true
  await within(app.close(), 5000, 'fastify.close() does not wait on an open feed')
  await within(ended, 1000, 'the feed ends on close')
})

t.test('a channel: its presence and its last history entries', async (t) => {
  const { app, url } = await startApp({ admin: { authorize }, presence: /^room-/, history: { channel: /^room-/, size: 50 } }, (app) => {
    app.channels.on('message', { event: 'here' }, async (socket, _data, meta) => {
      await socket.track(meta.channel ?? '', 'ada', { device: 'phone' })
    })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  await client.subscribe('room-1')
  await client.request({ type: 'message', event: 'here', channel: 'room-1', data: null, id: 9 })
  for (let i = 1; i <= 12; i++) await app.broadcastChannel('room-1', { i }, { event: 'chat' })
  const reply = await app.inject({ url: '/channels/admin/api/channel?name=room-1', headers: auth })
  t.equal(reply.statusCode, 200)
  const view = reply.json()
  t.equal(view.channel, 'room-1')
  t.equal(view.subscribers, 1)
  t.match(view.presence, { ada: [{ meta: { device: 'phone' } }] })
  t.equal(view.history.messages.length, 10, 'the last 10')
  t.same(view.history.messages.at(-1), { offset: 12, event: 'chat', data: { i: 12 } })

  const plain = (await app.inject({ url: '/channels/admin/api/channel?name=lobby', headers: auth })).json()
  t.same(plain, { channel: 'lobby', subscribers: 0, presence: null, history: null }, 'neither presence nor history')
  for (const query of ['', '?name=', '?name=a%20b', `?name=${'x'.repeat(201)}`]) {
    const bad = await app.inject({ url: `/channels/admin/api/channel${query}`, headers: auth })
    t.equal(bad.statusCode, 400, `bad name: ${query}`)
  }
})

t.test('disconnect: a session here, one on another node, one nobody holds, bad bodies', async (t) => {
  const broker = memoryBroker()
  const one = await startApp({ broker, admin: { authorize } })
  const two = await startApp({ broker })
  t.teardown(() => Promise.all([one.app.close(), two.app.close()]))
  const here = await TestClient.connect(one.url)
  const there = await TestClient.connect(two.url)
  const post = async (payload: unknown): Promise<{ statusCode: number, body: unknown }> => {
    const reply = await one.app.inject({ method: 'POST', url: '/channels/admin/api/disconnect', headers: auth, payload: payload as object })
    return { statusCode: reply.statusCode, body: reply.json() }
  }
  t.same(await post({ sessionId: here.sessionId }), { statusCode: 200, body: { here: true } })
  t.same(await within(here.closed, 3000, 'closed here'), { code: 1008, reason: disconnectReason })
  t.same(await post({ sessionId: there.sessionId }), { statusCode: 200, body: { here: false } })
  t.same(await within(there.closed, 3000, 'closed on the node that holds it'), { code: 1008, reason: disconnectReason })
  t.same(await post({ sessionId: 'nobody' }), { statusCode: 200, body: { here: false } }, 'nobody holds it: nothing happens')
  for (const payload of [{}, [], { sessionId: 5 }, { sessionId: '' }, { sessionId: 'x', more: 1 }, { sessionId: 'x'.repeat(201) },
    { userId: 5 }, { userId: '' }, { userId: 'ann', sessionId: 'x' }, { userId: 'x'.repeat(1025) }, { nobody: 'x' }]) {
    t.equal((await post(payload)).statusCode, 400, JSON.stringify(payload))
  }
  const form = await one.app.inject({ method: 'POST', url: '/channels/admin/api/disconnect', headers: { ...auth, 'content-type': 'text/plain' }, payload: JSON.stringify({ sessionId: 'x' }) })
  t.equal(form.statusCode, 415, 'only JSON: a cross-site form cannot post here')
})

t.test('disconnect a user: every session of it, on every node, and no one else', async (t) => {
  const broker = memoryBroker()
  const user = (request: FastifyRequest): string | undefined => (request.query as { user?: string }).user
  const one = await startApp({ broker, user, admin: { authorize } })
  const two = await startApp({ broker, user })
  t.teardown(() => Promise.all([one.app.close(), two.app.close()]))
  const annHere = await TestClient.connect(`${one.url}?user=ann`)
  const annThere = await TestClient.connect(`${two.url}?user=ann`)
  const bob = await TestClient.connect(`${two.url}?user=bob`)
  const reply = await one.app.inject({ method: 'POST', url: '/channels/admin/api/disconnect', headers: auth, payload: { userId: 'ann' } })
  t.same({ statusCode: reply.statusCode, body: reply.json() }, { statusCode: 200, body: { sessions: 2 } })
  t.same(await within(annHere.closed, 3000, 'closed here'), { code: 1008, reason: disconnectReason })
  t.same(await within(annThere.closed, 3000, 'closed on the other node'), { code: 1008, reason: disconnectReason })
  t.same(await one.app.channels.user('bob').sessions(), [bob.sessionId], 'another user stays')
  const nobody = await one.app.inject({ method: 'POST', url: '/channels/admin/api/disconnect', headers: auth, payload: { userId: 'carol' } })
  t.same(nobody.json(), { sessions: 0 }, 'a user without sessions: nothing happens')
  bob.close()
})

t.test('the answers\' bodies and headers, to the letter; what the page logs', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  const { app, url } = await startApp({
    admin: {
      authorize: (request) => {
        if (request.headers['x-throw'] !== undefined) throw new Error('authorize broke')
        return authorize(request)
      }
    }
  }, undefined, { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  t.equal(disconnectReason, 'disconnected by an administrator')

  const refused = await app.inject({ url: '/channels/admin/api/nodes' })
  t.same(refused.json(), { statusCode: 401, error: 'Unauthorized', message: 'not authorized' })
  t.equal(refused.headers['x-content-type-options'], 'nosniff')
  await app.inject({ url: '/channels/admin/api/nodes', headers: { ...auth, 'x-throw': '1' } })
  const failed = lines.find((line) => line.msg === 'channels: admin authorize failed')
  t.match(failed, { level: 50, err: { message: 'authorize broke' } }, 'a throwing authorize is logged with its error')

  const page = await app.inject({ url: '/channels/admin', headers: auth })
  t.equal(page.headers['referrer-policy'], 'no-referrer')
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  const nodes = (await app.inject({ url: '/channels/admin/api/nodes', headers: auth })).json()
  t.type(nodes.at, 'number')
  t.equal(nodes.nodes[0].node, app.channels.stats().node)

  for (const [query, problem] of [['', 'channel must be a string'], ['?name=a%20b', 'channel must not contain control or white-space characters']]) {
    const bad = await app.inject({ url: `/channels/admin/api/channel${query}`, headers: auth })
    t.same(bad.json(), { statusCode: 400, error: 'Bad Request', message: `name: ${problem}` })
  }

  const post = async (payload: string, contentType?: string): Promise<{ statusCode: number, body: unknown }> => {
    const headers: Record<string, string> = { ...auth }
    if (contentType !== undefined) headers['content-type'] = contentType
    const reply = await app.inject({ method: 'POST', url: '/channels/admin/api/disconnect', headers, payload })
    return { statusCode: reply.statusCode, body: reply.json() }
  }
  t.same(await post(''), { statusCode: 415, body: { statusCode: 415, error: 'Unsupported Media Type', message: 'expected application/json' } }, 'no body, no content type')
  t.same(await post('{"sessionId":"x"}', 'text/plain'), { statusCode: 415, body: { statusCode: 415, error: 'Unsupported Media Type', message: 'expected application/json' } }, 'text')
  t.same(await post('{"sessionId":"x"}', 'Application/JSON ; charset=utf-8'), { statusCode: 200, body: { here: false } }, 'JSON, with spaces and capitals')
  t.same(await post('null', 'application/json'), { statusCode: 400, body: { statusCode: 400, error: 'Bad Request', message: 'expected { "sessionId": string } or { "userId": string }' } })
  t.same(await post(JSON.stringify({ sessionId: 'x'.repeat(200) }), 'application/json'), { statusCode: 200, body: { here: false } }, 'a session id of 200 characters')

  const client = await TestClient.connect(url)
  t.same(await post(JSON.stringify({ sessionId: client.sessionId }), 'application/json'), { statusCode: 200, body: { here: true } })
  t.match(lines.find((line) => line.msg === 'channels: admin disconnected a session' && line.sessionId === client.sessionId), { here: true })
  t.same(await post(JSON.stringify({ userId: 'nobody' }), 'application/json'), { statusCode: 200, body: { sessions: 0 } })
  t.match(lines.find((line) => line.msg === 'channels: admin disconnected a user'), { userId: 'nobody', sessions: 0 })
})

t.test('two live feeds: the stream headers; one closing leaves the other fed every second', async (t) => {
  const { app, port } = await startApp({ admin: { authorize } })
  t.teardown(() => app.close())
  const one = await openFeed(port, '/channels/admin/api/feed', auth)
  t.equal(one.response.headers['cache-control'], 'no-store')
  t.equal(one.response.headers['x-accel-buffering'], 'no')
  await within(one.first, 3000, 'the first feed\'s first event')
  const other = await openFeed(port, '/channels/admin/api/feed', auth)
  await within(other.first, 3000, 'the second feed\'s first event')
  let events = 0
  other.response.on('data', (chunk: Buffer) => { events += chunk.toString().split('event: nodes').length - 1 })
  one.response.destroy()
  await within(new Promise<void>((resolve) => {
    const check = setInterval(() => { if (events >= 1) { clearInterval(check); resolve() } }, 20)
  }), 5000, 'the second feed gets the next event after the first closed')
  other.response.destroy()
})

t.test('the feed hub forgets a stream whose client left, stops its timer with the last one and starts it again with the next', async (t) => {
  let asked = 0
  const hub = new FeedHub(async () => { asked++; return [] })
  const leftServerSide: Array<Promise<void>> = []
  const server = createServer((_request, response: ServerResponse) => {
    leftServerSide.push(new Promise((resolve) => response.on('close', () => resolve())))
    hub.open(response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { hub.close(); server.close() })
  const { port } = server.address() as AddressInfo
  /** events seen on a stream, counted as they come */
  const counted = (response: IncomingMessage): { events: number } => {
    const seen = { events: 0 }
    response.on('data', (chunk: Buffer) => { seen.events += chunk.toString().split('event: nodes').length - 1 })
    return seen
  }
  const waitFor = async (check: () => boolean, ms: number, expectation: string): Promise<void> => {
    await within(new Promise<void>((resolve) => {
      const poll = setInterval(() => { if (check()) { clearInterval(poll); resolve() } }, 20)
    }), ms, expectation)
  }

  const one = await openFeed(port, '/', {})
  const other = await openFeed(port, '/', {})
  await within(Promise.all([one.first, other.first]), 3000, 'both streams get their first event')
  one.response.destroy()
  await within(leftServerSide[0], 1000, 'the server sees the first client leave')
  const otherSeen = counted(other.response)
  await waitFor(() => otherSeen.events >= 1, 3000, 'the stream still open is fed after the other left')

  other.response.destroy()
  await within(leftServerSide[1], 1000, 'the server sees the last client leave')
  const askedWhenNoneLeft = asked
  await sleep(2500)
  t.equal(asked, askedWhenNoneLeft, 'with no stream left, nobody is asked for the stats: the timer stopped')

  const next = await openFeed(port, '/', {})
  await within(next.first, 3000, 'a new stream gets its first event')
  const nextSeen = counted(next.response)
  await waitFor(() => nextSeen.events >= 1, 3000, 'and the next one a second later: the timer runs again')
  const ended = new Promise((resolve) => next.response.on('end', resolve))
  hub.close()
  await within(ended, 1000, 'close() ends the open streams')
})

/** A memory broker whose publications and presence reads reject once `down()` says so. */
function brokerGoingDown (down: () => boolean): Broker {
  const inner = memoryBroker()
  return {
    async connect (node) {
      const connection = await inner.connect(node) as BrokerConnection & PresenceBroker
      const failing = <A extends unknown[], R>(method: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
        if (down()) throw new Error('broker down')
        return await method(...args)
      }
      return {
        ...connection,
        publish: failing(connection.publish.bind(connection)),
        presenceState: failing(connection.presenceState.bind(connection))
      }
    }
  }
}

t.test('the broker down: the channel view and both disconnects answer 503 and log why', async (t) => {
  let down = false
  const lines: Array<Record<string, unknown>> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  const user = (request: FastifyRequest): string | undefined => (request.query as { user?: string }).user
  const { app } = await startApp({ broker: brokerGoingDown(() => down), user, presence: /^room-/, admin: { authorize } }, undefined, { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  down = true
  const view = await app.inject({ url: '/channels/admin/api/channel?name=room-1', headers: auth })
  t.same({ statusCode: view.statusCode, body: view.json() }, { statusCode: 503, body: { statusCode: 503, error: 'Service Unavailable', message: 'the broker could not be asked' } })
  t.match(lines.find((line) => line.msg === 'channels: admin channel view failed'), { level: 40, channel: 'room-1', err: { message: /./ } })
  for (const [payload, field] of [[{ sessionId: 'elsewhere' }, 'sessionId'], [{ userId: 'ann' }, 'userId']] as const) {
    const reply = await app.inject({ method: 'POST', url: '/channels/admin/api/disconnect', headers: auth, payload })
    t.same({ statusCode: reply.statusCode, body: reply.json() }, { statusCode: 503, body: { statusCode: 503, error: 'Service Unavailable', message: 'the broker could not be reached' } }, JSON.stringify(payload))
    const logged = lines.filter((line) => line.msg === 'channels: admin disconnect could not reach the broker').at(-1)
    t.match(logged, { level: 40, [field]: Object.values(payload)[0], err: { message: /./ } })
  }
})
