/**
 * The inbox (plugin/inbox.ts) on its own: order, the busy line, pause at the high-water mark
 * and resume below half of it, failures reported, nothing handled once the socket stopped
 * serving. test/hardening/inbox.test.ts checks the same backpressure over real TCP.
 */
import t from 'tap'
import { Inbox, inboxHighWater, type InboxOwner } from '../../plugin/inbox.js'
import { until } from '../helpers/server.js'

interface Harness { inbox: Inbox, owner: InboxOwner & { handled: string[], errors: unknown[], flow: string[], serving: boolean } }

function harness (handle: (text: string) => Promise<void> | void): Harness {
  const owner = {
    handled: [] as string[],
    errors: [] as unknown[],
    flow: [] as string[],
    serving: true,
    dispatch (text: string) {
      owner.handled.push(text)
      return handle(text)
    },
    reportError (err: unknown) { owner.errors.push(err) },
    ws: { pause: () => { owner.flow.push('pause') }, resume: () => { owner.flow.push('resume') } }
  }
  return { inbox: new Inbox(owner), owner }
}

function gate (): { promise: Promise<void>, open: () => void } {
  let open = (): void => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

t.test('held busy until released, then frames are handled in order and directly', async (t) => {
  const { inbox, owner } = harness(() => {})
  inbox.push('a')
  inbox.push('b')
  t.same(owner.handled, [], 'nothing before the connection releases it')
  t.equal(inbox.current, 'busy')
  await inbox.drain()
  t.same(owner.handled, ['a', 'b'])
  t.equal(inbox.current, 'idle')
  inbox.push('c')
  t.same(owner.handled, ['a', 'b', 'c'], 'a synchronous frame is handled at once')
})

t.test('an async handler holds the line; the socket pauses at the high-water mark and resumes below half', async (t) => {
  const first = gate()
  const { inbox, owner } = harness((text) => text === '0' ? first.promise : undefined)
  await inbox.drain()
  inbox.push('0')
  t.equal(inbox.current, 'busy')
  for (let i = 1; i <= inboxHighWater; i++) inbox.push(String(i))
  t.equal(inbox.current, 'paused')
  t.same(owner.flow, ['pause'], 'paused once')
  t.same(owner.handled, ['0'])
  first.open()
  await until(() => inbox.current === 'idle')
  t.same(owner.handled, Array.from({ length: inboxHighWater + 1 }, (_, i) => String(i)), 'all, in order')
  t.same(owner.flow, ['pause', 'resume'], 'resumed once')
})

t.test('failures are reported, and the line moves on', async (t) => {
  const { inbox, owner } = harness((text) => {
    if (text === 'throws') throw new Error('sync')
    if (text === 'rejects') return Promise.reject(new Error('async'))
  })
  await inbox.drain()
  inbox.push('throws')
  inbox.push('rejects')
  inbox.push('queued') // behind the rejected one
  await new Promise((resolve) => setImmediate(resolve))
  t.same(owner.handled, ['throws', 'rejects', 'queued'])
  t.same(owner.errors.map((err) => (err as Error).message), ['sync', 'async'])
  t.equal(inbox.current, 'idle')
})

t.test('nothing queued is handled once the socket stopped serving; clear() drops the queue', async (t) => {
  const { inbox, owner } = harness(() => {})
  inbox.push('a')
  owner.serving = false
  await inbox.drain()
  t.same(owner.handled, [], 'not served')
  owner.serving = true
  const { inbox: other, owner: otherOwner } = harness(() => {})
  other.push('x')
  other.clear()
  await other.drain()
  t.same(otherOwner.handled, [], 'cleared')
})
