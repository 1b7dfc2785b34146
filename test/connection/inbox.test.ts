/**
 * The inbox (plugin/connection/inbox.ts) on its own: order, the busy line, pause at the high-water mark
 * and resume below half of it, failures reported, nothing handled once the socket stopped
 * serving. test/hardening/inbox.test.ts checks the same backpressure over real TCP.
 */
import t from 'tap'
import { Inbox, inboxHighWater, type InboxOwner } from '../../plugin/connection/inbox.js'
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
  await until(() => inbox.current === 'idle', 3000, 'the inbox drains once the first frame is handled')
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

t.test(`pauses at exactly ${inboxHighWater} queued frames; resumes only once fewer than half remain`, async (t) => {
  const first = gate()
  const second = gate()
  const half = inboxHighWater / 2
  // Frames '1'..'65' queue behind '0'; once frame k is handled, 65 - k remain. Frame half + 2
  // starts when exactly `half` remain: holding it shows the inbox still paused there.
  const holdAt = String(half + 2)
  const { inbox, owner } = harness((text) => text === '0' ? first.promise : text === holdAt ? second.promise : undefined)
  await inbox.drain()
  inbox.push('0')
  for (let i = 1; i < inboxHighWater; i++) inbox.push(String(i))
  t.equal(inbox.current, 'busy', `${inboxHighWater - 1} queued: still reading`)
  t.same(owner.flow, [])
  inbox.push(String(inboxHighWater))
  t.equal(inbox.current, 'paused', `${inboxHighWater} queued: paused`)
  inbox.push(String(inboxHighWater + 1))
  first.open()
  await until(() => owner.handled.includes(holdAt), 3000, `frame ${holdAt} is handled`)
  t.equal(inbox.current, 'paused', `${half} still queued: not resumed yet`)
  t.same(owner.flow, ['pause'])
  second.open()
  await until(() => inbox.current === 'idle', 3000, 'the queue drains')
  t.same(owner.flow, ['pause', 'resume'], 'resumed once')
  t.equal(owner.handled.length, inboxHighWater + 2, 'every frame handled')
})

t.test('a queued frame that throws or rejects is reported, and the frames behind it still run', async (t) => {
  const first = gate()
  const { inbox, owner } = harness((text) => {
    if (text === 'first') return first.promise
    if (text === 'throws') throw new Error('sync')
    if (text === 'rejects') return Promise.reject(new Error('async'))
  })
  await inbox.drain()
  for (const text of ['first', 'throws', 'rejects', 'last']) inbox.push(text)
  first.open()
  await until(() => inbox.current === 'idle', 3000, 'the queue drains')
  t.same(owner.handled, ['first', 'throws', 'rejects', 'last'])
  t.same(owner.errors.map((err) => (err as Error).message), ['sync', 'async'])
})

t.test('resumed, it is busy again: a queue that grows back to the mark pauses it again', async (t) => {
  const first = gate()
  const afterResume = gate()
  const half = inboxHighWater / 2
  // '1'..'65' queue behind '0'; frame half + 3 starts right after the resume.
  const holdAt = String(half + 3)
  const { inbox, owner } = harness((text) => text === '0' ? first.promise : text === holdAt ? afterResume.promise : undefined)
  await inbox.drain()
  inbox.push('0')
  for (let i = 1; i <= inboxHighWater + 1; i++) inbox.push(String(i))
  first.open()
  await until(() => owner.handled.includes(holdAt), 3000, `frame ${holdAt} is handled`)
  t.same(owner.flow, ['pause', 'resume'])
  t.equal(inbox.current, 'busy', 'resumed: busy, not idle (a handler holds the line)')
  const queued = inboxHighWater + 1 - Number(holdAt)
  for (let i = queued; i < inboxHighWater; i++) inbox.push(`again ${i}`)
  t.equal(inbox.current, 'paused', 'back at the mark: paused again')
  t.same(owner.flow, ['pause', 'resume', 'pause'])
  afterResume.open()
  await until(() => inbox.current === 'idle', 3000, 'the queue drains')
  t.same(owner.flow, ['pause', 'resume', 'pause', 'resume'])
})

t.test('a socket that closes while the inbox is paused: the drain stops cleanly', async (t) => {
  const first = gate()
  const built = harness((text) => {
    if (text === '0') return first.promise
    if (text === '1') { built.owner.serving = false; built.inbox.clear() } // the socket closed
  })
  const { inbox, owner } = built
  await inbox.drain()
  inbox.push('0')
  for (let i = 1; i <= inboxHighWater; i++) inbox.push(String(i))
  t.equal(inbox.current, 'paused')
  first.open()
  await until(() => inbox.current === 'idle', 3000, 'the drain ends once the queue is dropped')
  t.same(owner.handled, ['0', '1'], 'nothing after the close is handled')
  t.same(owner.errors, [])
})
