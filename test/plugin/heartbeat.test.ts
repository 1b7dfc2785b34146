/**
 * The per-peer heartbeat tick (plugin/heartbeat.ts). The timer and real peers that stop
 * answering are test/hardening/heartbeat.test.ts.
 */
import t from 'tap'
import WebSocket from 'ws'
import { checkPulse, heartbeatTimeout, type HeartbeatPeer } from '../../plugin/heartbeat.js'
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
