/**
 * inbox.ts on its own: the queue's states, its order, its backpressure thresholds and its
 * failure paths, driven through a recording owner (test/hardening/inbox.test.ts proves the
 * same backpressure end to end on a real socket).
 */
import t from 'tap'
import { Inbox, inboxHighWater, type InboxOwner } from '../../plugin/inbox.js'

/** An owner whose `dispatch` is synchronous unless the frame is listed in `holds`. */
class Owner implements InboxOwner {
  readonly handled: string[] = []
  readonly errors: unknown[] = []
  readonly flow: string[] = []
  serving = true
  private readonly holds = new Map<string, { promise: Promise<void>, settle: (fail?: Error) => void }>()
  readonly ws = { pause: () => { this.flow.push('pause') }, resume: () => { this.flow.push('resume') } }

  /** Makes `text` hold the line until `release(text)`; `throwing` frames throw synchronously. */
  hold (text: string): void {
    let settle!: (fail?: Error) => void
    const promise = new Promise<void>((resolve, reject) => { settle = (fail) => fail === undefined ? resolve() : reject(fail) })
    this.holds.set(text, { promise, settle })
  }

  release (text: string, fail?: Error): void {
    this.holds.get(text)?.settle(fail)
  }

  dispatch (text: string): Promise<void> | void {
    if (text.startsWith('throw')) throw new Error(text)
    this.handled.push(text)
    return this.holds.get(text)?.promise
  }

  reportError (err: unknown): void {
    this.errors.push((err as Error).message)
  }
}

/** Lets queued promise callbacks (the drain) run to the end. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('busy until released: frames wait, then run in order; then sync frames pass straight through', async (t) => {
  const owner = new Owner()
  const inbox = new Inbox(owner)
  t.equal(inbox.current, 'busy', 'a new connection\'s inbox waits for its connect handlers')
  inbox.push('a')
  inbox.push('b')
  t.same(owner.handled, [], 'nothing handled while busy')
  await inbox.drain()
  t.same(owner.handled, ['a', 'b'])
  t.equal(inbox.current, 'idle')
  inbox.push('c')
  t.same(owner.handled, ['a', 'b', 'c'], 'handled at once, synchronously')
  t.equal(inbox.current, 'idle', 'a synchronous frame leaves it idle')
})

t.test('an async frame holds the line; later frames queue and run after it, in order', async (t) => {
  const owner = new Owner()
  const inbox = new Inbox(owner)
  await inbox.drain()
  owner.hold('slow')
  inbox.push('slow')
  t.equal(inbox.current, 'busy')
  inbox.push('x')
  inbox.push('y')
  t.same(owner.handled, ['slow'])
  owner.release('slow')
  await settle()
  t.same(owner.handled, ['slow', 'x', 'y'])
  t.equal(inbox.current, 'idle')
  t.same(owner.errors, [])
})

t.test(`pauses reading at exactly ${inboxHighWater} queued frames, resumes below half of it`, async (t) => {
  const owner = new Owner()
  const inbox = new Inbox(owner)
  await inbox.drain()
  owner.hold('slow')
  inbox.push('slow')
  for (let i = 1; i < inboxHighWater; i++) inbox.push(`q${i}`)
  t.equal(inbox.current, 'busy', `${inboxHighWater - 1} queued: still reading`)
  t.same(owner.flow, [])
  inbox.push(`q${inboxHighWater}`)
  t.equal(inbox.current, 'paused', `${inboxHighWater} queued: paused`)
  t.same(owner.flow, ['pause'])
  inbox.push('more')
  t.same(owner.flow, ['pause'], 'paused once, not once per frame')
  // Hold the frame that leaves exactly half queued: the inbox must still be paused there.
  const half = inboxHighWater / 2
  const atHalf = `q${inboxHighWater + 1 - half}` // after it, `half` frames remain queued
  owner.hold(atHalf)
  owner.release('slow')
  await settle()
  t.equal(inbox.current, 'paused', `${half} still queued: not yet resumed`)
  t.same(owner.flow, ['pause'])
  owner.release(atHalf)
  await settle()
  t.same(owner.flow, ['pause', 'resume'], 'resumed once, when fewer than half were left')
  t.equal(inbox.current, 'idle')
  t.equal(owner.handled.length, inboxHighWater + 2, 'every frame handled')
  t.same(owner.handled.slice(-2), [`q${inboxHighWater}`, 'more'], 'in order')
})

t.test('a frame that throws or rejects is reported, and the line moves on', async (t) => {
  const owner = new Owner()
  const inbox = new Inbox(owner)
  inbox.push('throw while queued')
  inbox.push('after')
  await inbox.drain()
  t.same(owner.errors, ['throw while queued'])
  t.same(owner.handled, ['after'])
  inbox.push('throw at once')
  t.same(owner.errors, ['throw while queued', 'throw at once'])
  t.equal(inbox.current, 'idle', 'a synchronous throw does not leave it busy')
  owner.hold('rejects')
  inbox.push('rejects')
  inbox.push('next')
  owner.release('rejects', new Error('rejected'))
  await settle()
  t.same(owner.errors, ['throw while queued', 'throw at once', 'rejected'])
  t.same(owner.handled, ['after', 'rejects', 'next'], 'the frame behind a rejected one still runs')
  t.equal(inbox.current, 'idle')
  owner.hold('gate')
  owner.hold('queued rejects')
  inbox.push('gate')
  inbox.push('queued rejects')
  inbox.push('last')
  owner.release('gate')
  owner.release('queued rejects', new Error('rejected while queued'))
  await settle()
  t.same(owner.errors.slice(-1), ['rejected while queued'])
  t.same(owner.handled.slice(-3), ['gate', 'queued rejects', 'last'], 'the frame behind it still runs')
})

t.test('once the socket closed, queued frames are not handled', async (t) => {
  const owner = new Owner()
  const inbox = new Inbox(owner)
  inbox.push('a')
  inbox.push('b')
  owner.serving = false
  await inbox.drain()
  t.same(owner.handled, [], 'not serving: nothing handled')
  t.equal(inbox.current, 'idle')

  const cleared = new Owner()
  const other = new Inbox(cleared)
  other.push('dropped')
  other.clear()
  await other.drain()
  t.same(cleared.handled, [], 'cleared: the queued frame is gone')
})
