/**
 * The per-peer heartbeat tick (plugin/node/heartbeat.ts). The timer and real peers that stop
 * answering are test/hardening/heartbeat.test.ts.
 */
import t from 'tap'
import WebSocket from 'ws'
import { checkPulse, heartbeatTimeout, startHeartbeat, type HeartbeatPeer } from '../../plugin/node/heartbeat.js'
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
