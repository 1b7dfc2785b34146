/**
 * The presence diff windows (plugin/presence/diff-windows.ts), on real timers: a channel's
 * window opens at its change and lasts 50 ms, or 100 ms when its last diff was under 100 ms
 * ago (a busy channel); a window that ended without a diff does not make a channel busy, nor
 * does an old diff; a shorter window opened after a longer one ends first; a closed channel and
 * a cleared set send nothing. Timers never fire early (give or take 3 ms of the event loop's
 * clock): the tests read lower bounds and the order of the flushes, never an upper bound.
 */
import t, { type Test } from 'tap'
import { busyPresenceWindowMs, DiffWindows, presenceWindowMs } from '../../plugin/presence/diff-windows.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Windows whose flushes are recorded (channel, performance.now()); `dirty` says which channels have a diff. */
function recorder (t: Test): { windows: DiffWindows, flushes: Array<[string, number]>, dirty: Set<string>, until: (count: number) => Promise<void> } {
  const flushes: Array<[string, number]> = []
  const dirty = new Set<string>()
  const windows = new DiffWindows((channel) => {
    flushes.push([channel, performance.now()])
    return dirty.has(channel)
  })
  t.teardown(() => { windows.clear() })
  const until = async (count: number): Promise<void> => {
    const deadline = performance.now() + 5000
    while (flushes.length < count) {
      if (performance.now() > deadline) throw new Error(`${count} flushes not seen in 5 s: ${JSON.stringify(flushes)}`)
      await sleep(5)
    }
  }
  return { windows, flushes, dirty, until }
}

t.test('a lone change: its window lasts 50 ms, and one flush ends it however often the channel changed meanwhile', async (t) => {
  const { windows, flushes, dirty, until } = recorder(t)
  dirty.add('room')
  const openedAt = performance.now()
  windows.open('room')
  windows.open('room')
  await sleep(10)
  windows.open('room')
  await until(1)
  await sleep(2 * busyPresenceWindowMs)
  t.equal(flushes.length, 1, 'one flush')
  const after = flushes[0][1] - openedAt
  t.ok(after >= presenceWindowMs - 3, `after ${after.toFixed(1)} ms (>= 50)`)
})

t.test('a change within 100 ms of the channel\'s last diff opens a busy window of 100 ms; a quiet one opened with it ends first', async (t) => {
  const { windows, flushes, dirty, until } = recorder(t)
  dirty.add('busy')
  windows.open('busy')
  await until(1)
  // busy's diff went out just now: its next change opens a window of 100 ms
  const openedAt = performance.now()
  windows.open('busy')
  await sleep(5)
  windows.open('quiet') // opened later, with a shorter window: the timer is set again, earlier
  await until(3)
  t.same(flushes.map(([channel]) => channel), ['busy', 'quiet', 'busy'], 'the quiet window ended before the busy one')
  const lasted = flushes[2][1] - openedAt
  t.ok(lasted >= busyPresenceWindowMs - 3, `the busy window lasted ${lasted.toFixed(1)} ms (>= 100)`)
})

t.test('a busy window opened after a quiet one does not hold it back: each ends at its own time', async (t) => {
  const { windows, flushes, dirty, until } = recorder(t)
  dirty.add('busy')
  windows.open('busy')
  await until(1)
  windows.open('quiet')
  windows.open('busy') // busy now, and opened after quiet: its 100 ms must not put off quiet's 50
  await until(3)
  t.same(flushes.slice(1).map(([channel]) => channel), ['quiet', 'busy'])
  const apart = flushes[2][1] - flushes[1][1]
  t.ok(apart >= 25, `quiet ended ${apart.toFixed(1)} ms before busy (about 50), not with it`)
})

t.test('with every window ended no timer is left: an idle node holds no timer of presence', async (t) => {
  const { windows, dirty, until } = recorder(t)
  const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
  await sleep(5)
  const before = timers()
  dirty.add('room')
  windows.open('room')
  t.equal(timers(), before + 1, 'one timer while a window is open')
  await until(1)
  windows.open('room') // busy: another window
  await until(2)
  await sleep(5)
  t.equal(timers(), before, 'none once the windows ended')
})

t.test('what makes a channel busy: a diff under 100 ms ago; not a window without a diff, not a diff long ago', async (t) => {
  const { windows, flushes, dirty, until } = recorder(t)
  // 'idle' flushes without a diff (its change came and went): its next window is a quiet one
  windows.open('idle')
  await until(1)
  dirty.add('old')
  windows.open('old')
  await until(2)
  await sleep(busyPresenceWindowMs + 10) // old's diff is past 100 ms now
  windows.open('idle')
  windows.open('old')
  dirty.add('fresh')
  windows.open('fresh')
  await sleep(5)
  windows.open('marker') // a quiet window opened 5 ms after them: a busy one among them would end after it
  await until(6)
  t.same(flushes.slice(2, 5).map(([channel]) => channel), ['idle', 'old', 'fresh'], 'the three windows were quiet ones: they ended before the marker')
  t.equal(flushes[5][0], 'marker')
  windows.open('fresh') // its diff went out under 100 ms ago: busy
  await sleep(5)
  windows.open('marker')
  await until(8)
  t.same(flushes.slice(6).map(([channel]) => channel), ['marker', 'fresh'], 'a busy one ends after the quiet one opened after it')
})

t.test('a closed channel sends nothing, and is not busy when it comes back', async (t) => {
  const { windows, flushes, dirty, until } = recorder(t)
  dirty.add('room')
  windows.open('room')
  windows.open('other')
  windows.close('room')
  await until(1)
  await sleep(presenceWindowMs)
  t.same(flushes.map(([channel]) => channel), ['other'], 'no flush of the closed channel')

  windows.open('room')
  await until(2)
  windows.close('room') // right after its diff: it would be busy if not forgotten
  windows.open('room')
  windows.open('later')
  await sleep(1)
  await until(4)
  t.same(flushes.slice(2).map(([channel]) => channel), ['room', 'later'], 'room\'s window is a quiet one again: it ends before the one opened after it')
})

t.test('clear() ends every window without a flush', async (t) => {
  const { windows, flushes } = recorder(t)
  windows.open('a')
  windows.open('b')
  windows.clear()
  await sleep(2 * busyPresenceWindowMs)
  t.same(flushes, [])
  windows.open('a') // usable after: the timer is set again
  await sleep(2 * busyPresenceWindowMs)
  t.same(flushes.map(([channel]) => channel), ['a'])
})

t.test('many channels: each window ends once, in the order they opened, busy ones after the quiet ones opened with them', async (t) => {
  const { windows, flushes, dirty, until } = recorder(t)
  const channels = Array.from({ length: 200 }, (_, i) => `room-${i}`)
  for (const channel of channels) { dirty.add(channel); windows.open(channel) }
  await until(200)
  t.same(flushes.map(([channel]) => channel), channels, 'each once, in order')
  for (const channel of channels.slice(0, 100)) windows.open(channel) // busy now
  for (const channel of ['x', 'y']) windows.open(channel)
  await until(302)
  t.same(flushes.slice(200, 202).map(([channel]) => channel), ['x', 'y'], 'the quiet ones first')
  t.same(flushes.slice(202).map(([channel]) => channel), channels.slice(0, 100))
})
