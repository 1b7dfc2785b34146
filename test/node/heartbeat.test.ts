/**
 * The per-peer heartbeat tick and how the pings are spread over the interval
 * (plugin/node/heartbeat.ts). Real peers that stop answering are test/hardening/heartbeat.test.ts.
 */
import t from 'tap'
import WebSocket from 'ws'
import { randomBytes } from 'node:crypto'
import {
  checkPulse, heartbeatSliceMs, heartbeatSlices, heartbeatTimeout, sliceOf, startHeartbeat, type HeartbeatPeer
} from '../../plugin/node/heartbeat.js'
import type { DisconnectInfo } from '../../plugin/types.js'

t.test('a peer that answered is pinged and marked; one that did not is terminated with 1006 "heartbeat timeout"', async (t) => {
  let pings = 0
  const terminated: DisconnectInfo[] = []
  const peer: HeartbeatPeer = {
    id: 'p',
    alive: true,
    log: { info: () => {} },
    ws: { readyState: WebSocket.OPEN, ping: () => { pings++ } },
    terminate: (why) => { terminated.push(why) }
  }
  checkPulse(peer)
  t.equal(pings, 1)
  t.equal(peer.alive, false, 'until its pong')
  checkPulse(peer)
  t.equal(pings, 1, 'not pinged again')
  t.same(terminated, [{ code: 1006, reason: 'heartbeat timeout' }])
  t.equal(terminated[0], heartbeatTimeout)
})

t.test('a peer whose socket is no longer open is not pinged', async (t) => {
  let pings = 0
  const peer: HeartbeatPeer = {
    id: 'p', alive: true, log: { info: () => {} }, ws: { readyState: WebSocket.CLOSING, ping: () => { pings++ } }, terminate: () => {}
  }
  checkPulse(peer)
  t.equal(pings, 0)
})

t.test('a terminated peer is logged at info with its session id', async (t) => {
  const logged: unknown[][] = []
  const peer: HeartbeatPeer = {
    id: 'session-7', alive: false, log: { info: (...args: unknown[]) => { logged.push(args) } }, ws: { readyState: WebSocket.OPEN, ping: () => {} }, terminate: () => {}
  }
  checkPulse(peer)
  t.same(logged, [[{ sessionId: 'session-7' }, 'channels: peer missed a pong, terminated']])
})

t.test('a tick already queued when stop() runs pings nobody', async (t) => {
  let pings = 0
  const peer: HeartbeatPeer = {
    id: 'p', alive: true, log: { info: () => {} }, ws: { readyState: WebSocket.OPEN, ping: () => { pings++; peer.alive = true } }, terminate: () => {}
  }
  // The timer defers each tick to setImmediate: hold the ticks back to run them at will.
  const queued: Array<() => void> = []
  const original = globalThis.setImmediate
  globalThis.setImmediate = ((fn: () => void) => { queued.push(fn) }) as unknown as typeof setImmediate
  let stop: () => void
  try {
    stop = startHeartbeat(new Map([['p', peer]]), 5)
    const deadline = Date.now() + 3000
    while (queued.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  } finally {
    globalThis.setImmediate = original
  }
  t.ok(queued.length >= 2, 'the timer queued ticks')
  queued[0]()
  t.equal(pings, 1, 'a queued tick pings')
  stop()
  queued[1]()
  t.equal(pings, 1, 'once stopped, a tick queued before does nothing')
})

t.test('an interval is cut into slices of 100 ms, at least one, at most 1000', async (t) => {
  t.equal(heartbeatSliceMs, 100)
  t.equal(heartbeatSlices(30_000), 300, 'the default 30 s: 300 slices')
  t.equal(heartbeatSlices(1000), 10)
  t.equal(heartbeatSlices(250), 2)
  t.equal(heartbeatSlices(99), 1, 'under one slice: every socket in one tick, as before')
  t.equal(heartbeatSlices(5), 1)
  t.equal(heartbeatSlices(3_600_000), 1000, 'an hour: 1000 slices of 3.6 s')
})

t.test('a session id always falls in the same slice, and random ids fill the slices evenly', async (t) => {
  t.equal(sliceOf('abc', 300), sliceOf('abc', 300))
  t.equal(sliceOf('anything', 1), 0)
  const counts = new Array<number>(300).fill(0)
  for (let i = 0; i < 30_000; i++) counts[sliceOf(randomBytes(18).toString('base64url'), 300)]++
  t.equal(counts.reduce((sum, count) => sum + count, 0), 30_000, 'every id in range')
  // 100 per slice on average; a binomial spread (sd 10) stays well inside 50–150.
  t.ok(Math.min(...counts) >= 50 && Math.max(...counts) <= 150, `100 ids per slice on average: ${Math.min(...counts)}–${Math.max(...counts)}`)
})

t.test('the pings of one interval are spread over it, each peer pinged once per interval', async (t) => {
  const interval = 1000 // 10 slices of 100 ms
  const pings = new Map<string, number[]>()
  const all: number[] = []
  let terminated = 0
  const peer = (id: string): HeartbeatPeer => {
    const self: HeartbeatPeer = {
      id,
      alive: true,
      log: { info: () => {} },
      ws: {
        readyState: WebSocket.OPEN,
        ping: () => {
          const now = performance.now()
          all.push(now)
          pings.set(id, [...(pings.get(id) ?? []), now])
          self.alive = true // answers at once
        }
      },
      terminate: () => { terminated++ }
    }
    return self
  }
  const peers = new Map<string, HeartbeatPeer>()
  for (let i = 0; i < 200; i++) {
    const id = randomBytes(18).toString('base64url')
    peers.set(id, peer(id))
  }
  const stop = startHeartbeat(peers, interval)
  t.teardown(stop)
  // A peer that leaves mid-round is not checked after it left.
  let left = false
  let checkedAfterLeaving = 0
  const leaver: HeartbeatPeer = {
    id: 'leaver',
    alive: true,
    log: { info: () => {} },
    ws: { readyState: WebSocket.OPEN, ping: () => { if (left) checkedAfterLeaving++; leaver.alive = true } },
    terminate: () => { if (left) checkedAfterLeaving++ }
  }
  peers.set('leaver', leaver)
  await new Promise((resolve) => setTimeout(resolve, interval * 0.5))
  peers.delete('leaver')
  left = true
  const joiner = randomBytes(18).toString('base64url')
  peers.set(joiner, peer(joiner))
  await new Promise((resolve) => setTimeout(resolve, interval * 2.7))
  stop()

  t.equal(terminated, 0, 'nobody that answered was terminated')
  t.equal(checkedAfterLeaving, 0, 'the peer that left mid-round was neither pinged nor terminated after it left')
  t.ok((pings.get(joiner)?.length ?? 0) >= 1, 'a peer that joined mid-round is pinged within two intervals')
  // Pings 20 ms or more apart belong to different ticks.
  all.sort((a, b) => a - b)
  const ticks: number[] = []
  for (let i = 0; i < all.length; i++) {
    if (i === 0 || all[i] - all[i - 1] >= 20) ticks.push(0)
    ticks[ticks.length - 1]++
  }
  // 200 peers over 10 slices: 20 a tick on average. All at once would be one tick of 200.
  t.ok(Math.max(...ticks) <= 50, `no tick pings more than a quarter of the peers (largest: ${Math.max(...ticks)} of 200)`)
  t.ok(ticks.length >= 15, `the pings of two intervals came in many ticks (${ticks.length})`)
  const gaps: number[] = []
  for (const [id, times] of pings) {
    if (id === joiner) continue
    t.ok(times.length >= 2, 'every peer was pinged in each round') || t.bailout(`${id}: ${times.length} pings`)
    for (let i = 1; i < times.length; i++) gaps.push(times[i] - times[i - 1])
  }
  // A peer keeps its slice: one interval between its pings (timers may fire late on a loaded
  // machine, never early).
  t.ok(Math.min(...gaps) >= interval * 0.9, `never pinged twice within an interval (shortest gap ${Math.round(Math.min(...gaps))} ms)`)
  t.ok(Math.max(...gaps) < interval * 1.9, `and pinged again within about one interval (longest gap ${Math.round(Math.max(...gaps))} ms)`)
})
