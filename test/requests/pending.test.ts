/**
 * plugin/requests/pending.ts on its own: the bounds of `ask`'s arguments (askTimeout, shared by
 * `socket.ask` and `fastify.channels.ask`), and PendingRequests' numbering, its count and what
 * `reply` returns, with a `send` that records the frames a socket would write. ask.test.ts
 * drives the same class through real sockets.
 */
import t from 'tap'
import { askTimeout, defaultAskTimeout, PendingRequests } from '../../plugin/requests/pending.js'

const longest = 2 ** 31 - 1

t.test('askTimeout: the event is a string of 1 to 200 characters', async (t) => {
  const message = 'fastify-channels: ask: the event must be a string of 1 to 200 characters'
  t.equal(askTimeout('e'.repeat(200), undefined), defaultAskTimeout, '200 characters: accepted, the default timeout')
  for (const event of ['', 'e'.repeat(201), 42, undefined, null, ['x']]) {
    t.throws(() => askTimeout(event, undefined), { code: 'FST_CHANNELS_INVALID_ARGUMENT', message }, `refused: ${JSON.stringify(event)}`)
  }
})

t.test('askTimeout: a timeout is an integer from 1 ms to setTimeout\'s limit', async (t) => {
  t.equal(askTimeout('e', { timeout: 1 }), 1)
  t.equal(askTimeout('e', { timeout: longest }), longest)
  t.equal(askTimeout('e', {}), defaultAskTimeout)
  for (const timeout of [0, -1, 1.5, longest + 1, Number.NaN, Infinity, '5']) {
    t.throws(() => askTimeout('e', { timeout: timeout as number }), {
      code: 'FST_CHANNELS_INVALID_ARGUMENT',
      message: `fastify-channels: ask: timeout must be a positive integer of ms (at most ${longest}), got ${String(timeout)}`
    }, `refused: ${String(timeout)}`)
  }
})

function recorder (): { pending: PendingRequests, rids: () => number[] } {
  const frames: string[] = []
  const pending = new PendingRequests((frame) => { frames.push(frame); return true })
  return { pending, rids: () => frames.map((frame) => (JSON.parse(frame) as { rid: number }).rid) }
}

t.test('PendingRequests: size, and reply() says whether it settled a request', async (t) => {
  const { pending, rids } = recorder()
  t.equal(pending.size, 0)
  const first = pending.ask('q', 1, { timeout: 60_000 })
  const second = pending.ask('q', 2, { timeout: 60_000 })
  t.same(rids(), [1, 2])
  t.equal(pending.size, 2)
  t.equal(pending.reply({ type: 'reply', rid: 1, data: 'one' }), true, 'a waiting rid: settled')
  t.equal(await first, 'one')
  t.equal(pending.size, 1)
  t.equal(pending.reply({ type: 'reply', rid: 1, data: 'again' }), false, 'an answered rid: nothing settled')
  t.equal(pending.reply({ type: 'reply', rid: 7, data: 'unknown' }), false, 'an unknown rid: nothing settled')
  t.equal(pending.reply({ type: 'reply', rid: 2, error: { code: 'NOPE', message: 'm' } }), true)
  await t.rejects(second, { code: 'FST_CHANNELS_CLIENT_ERROR', clientCode: 'NOPE' })
  t.equal(pending.size, 0)
  const third = pending.ask('q', 3, { timeout: 60_000 })
  pending.close()
  t.equal(pending.size, 0, 'close empties it')
  await t.rejects(third, { code: 'FST_CHANNELS_DISCONNECTED' })
})

t.test('PendingRequests: the rid wraps to 1 after Number.MAX_SAFE_INTEGER, never past it', async (t) => {
  const { pending, rids } = recorder()
  t.teardown(() => pending.close())
  // 2^53 asks are out of reach of a test: start the numbering near its end
  ;(pending as unknown as { lastRid: number }).lastRid = Number.MAX_SAFE_INTEGER - 1
  const asked = [1, 2, 3].map((n) => pending.ask('q', n, { timeout: 60_000 }).catch(() => undefined))
  t.same(rids(), [Number.MAX_SAFE_INTEGER, 1, 2])
  t.equal(pending.reply({ type: 'reply', rid: Number.MAX_SAFE_INTEGER, data: 'last' }), true)
  t.equal(await asked[0], 'last')
})
