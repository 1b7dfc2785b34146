import t from 'tap'
import { resolveUrl } from '../../client/socket.js'
import { connect } from '../../client/index.js'
import { within } from '../helpers/deadline.js'

t.test('absolute URLs: ws(s) kept, http(s) turned into ws(s), params added', async (t) => {
  t.equal(resolveUrl('ws://127.0.0.1:3000/ws'), 'ws://127.0.0.1:3000/ws')
  t.equal(resolveUrl('wss://example.com/ws'), 'wss://example.com/ws')
  t.equal(resolveUrl('http://example.com/ws'), 'ws://example.com/ws')
  t.equal(resolveUrl('https://example.com:8443/a/ws?x=1'), 'wss://example.com:8443/a/ws?x=1')
  t.equal(resolveUrl('ws://h/ws?x=1', { nick: 'ada lovelace', x: '2' }), 'ws://h/ws?x=2&nick=ada+lovelace')
  t.throws(() => resolveUrl('ftp://h/ws'), TypeError)
})

t.test('relative URLs resolve against the page: ws on http, wss on https', async (t) => {
  const global = globalThis as { location?: { href: string } }
  t.teardown(() => { delete global.location })
  global.location = { href: 'http://localhost:3000/chat/index.html' }
  t.equal(resolveUrl('/ws'), 'ws://localhost:3000/ws')
  t.equal(resolveUrl('ws'), 'ws://localhost:3000/chat/ws')
  global.location = { href: 'https://chat.example.com/' }
  t.equal(resolveUrl('/ws'), 'wss://chat.example.com/ws')
})

t.test('outside a browser a relative URL, or no WebSocket, is a clear TypeError', async (t) => {
  t.throws(() => resolveUrl('/ws'), { name: 'TypeError', message: /absolute ws:\/\/ or wss:\/\/ URL/ })
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'undefined') {
    t.throws(() => connect('ws://127.0.0.1:1/ws'), { name: 'TypeError', message: /pass one: connect\(url, \{ WebSocket \}\)/ })
  }
})

t.test('a WebSocket constructor that throws: at connect() it throws; on a reconnect it is one more failed try', async (t) => {
  let calls = 0
  class Flaky {
    readyState = 0
    onopen = null
    onmessage = null
    onerror = null
    onclose: ((event: { code: number, reason: string }) => void) | null = null
    constructor () {
      calls++
      if (calls === 1 || calls === 3) throw new SyntaxError(`refused #${calls}`)
      // the second and later tries "connect" and drop at once
      queueMicrotask(() => this.onclose?.({ code: 1006, reason: '' }))
    }

    send (): void {}
    close (): void {}
  }
  t.throws(() => connect('ws://127.0.0.1:1/ws', { WebSocket: Flaky }), SyntaxError)

  calls = 1 // the next construction succeeds, the one after throws, then they succeed again
  const tries: number[] = []
  let done = (): void => {}
  const reached = new Promise<void>((resolve) => { done = resolve })
  const client = connect('ws://127.0.0.1:1/ws', {
    WebSocket: Flaky,
    backoff: (n) => { tries.push(n); if (n === 3) done(); return 1 }
  })
  await within(reached, 3000, 'the client keeps retrying past a constructor that throws')
  client.close()
  t.same(tries, [1, 2, 3], 'the throwing construction was a try like the others')
  t.equal(client.status, 'closed')
})
