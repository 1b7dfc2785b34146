/**
 * Presence when the broker misbehaves (plugin/presence/tracker.ts): changes it failed to relay
 * come back as one diff when it asks the node to reload, a state or an update it cannot serve
 * is logged and the node carries on with what it knows.
 */
import t from 'tap'
import { memoryBroker, type Broker, type ChannelSocket, type BrokerConnection, type BrokerNode, type PresenceBroker, type PresenceChanges } from '../../plugin/index.js'
import { nextId, startApp } from '../helpers/server.js'
import { Observer, presenceHandlers, startPresenceApp } from './helpers.js'

interface Warning { msg: string, channel?: string, err?: { message: string } }

/**
 * A memory broker with outage switches: while `lost`, changes from other nodes are stored but
 * not relayed; while `down`, presence reads and writes reject. `nodes` are the plugin's nodes,
 * to ask them to reload.
 */
function outageBroker (): { broker: Broker, nodes: BrokerNode[], outage: { lost: boolean, down: boolean } } {
  const memory = memoryBroker()
  const nodes: BrokerNode[] = []
  const outage = { lost: false, down: false }
  const broker: Broker = {
    async connect (node) {
      nodes.push(node)
      const relayed = new Proxy(node, {
        get (target, key) {
          if (key === 'presenceChanged' && outage.lost) return () => {}
          const value = Reflect.get(target, key) as unknown
          return typeof value === 'function' ? value.bind(target) : value
        }
      })
      const inner = await memory.connect(relayed) as BrokerConnection & PresenceBroker
      return {
        ...inner,
        async presenceState (channel: string) {
          if (outage.down) throw new Error('state down')
          return await inner.presenceState(channel)
        },
        async presenceUpdate (channel: string, changes: PresenceChanges) {
          if (outage.down) throw new Error('update down')
          await inner.presenceUpdate(channel, changes)
        }
      }
    }
  }
  return { broker, nodes, outage }
}

function warningsLogger (): { warnings: Warning[], logger: { level: string, stream: { write (line: string): void } } } {
  const warnings: Warning[] = []
  return {
    warnings,
    logger: { level: 'warn', stream: { write: (line) => { const entry = JSON.parse(line) as Warning & { level: number }; if (entry.level === 40) warnings.push(entry) } } }
  }
}

t.test('after an outage, a reload turns the changes the node missed into one diff', async (t) => {
  const { broker, nodes, outage } = outageBroker()
  const a = await startPresenceApp(t, { broker })
  const b = await startPresenceApp(t, { broker })
  const onA = await Observer.join(a.url, 'room')
  const onB = await Observer.join(b.url, 'room')
  await onB.track('bob')
  await onA.until((s) => s.bob !== undefined, 'bob seen on A')
  const before = onA.diffs.length

  outage.lost = true
  const carol = await Observer.join(b.url, 'room')
  await carol.track('carol', { n: 1 })
  await onB.untrack()
  await onB.until((s) => s.bob === undefined && s.carol !== undefined, 'B sees its own changes')
  outage.lost = false
  await new Promise((resolve) => setTimeout(resolve, 120))
  onA.drain()
  t.ok(onA.state.bob !== undefined && onA.state.carol === undefined, 'A missed them')

  nodes[0].presenceReload?.()
  await onA.until((s) => s.bob === undefined && s.carol !== undefined, 'A caught up')
  t.same(onA.state.carol.map((entry) => entry.meta), [{ n: 1 }])
  t.equal(onA.diffs.length, before + 1, 'in one diff')
  t.same(await a.app.channels.presence('room'), await b.app.channels.presence('room'))
})

t.test('a reload, a state or an update the broker cannot serve is logged; the node keeps its own view', async (t) => {
  const { broker, nodes, outage } = outageBroker()
  const { warnings, logger } = warningsLogger()
  const { app, url } = await startApp({ presence: true, rateLimit: false, broker }, presenceHandlers, { logger })
  t.teardown(() => app.close())
  await Observer.join(url, 'room')
  outage.down = true
  nodes[0].presenceReload?.()
  const late = await Observer.join(url, 'other')
  t.same(late.state, {}, 'the state unavailable: this node\'s own tracks (none)')
  await late.track('lee')
  await late.until((s) => s.lee !== undefined, 'its own track is shown at once')
  t.same(Object.keys(await app.channels.presence('other').catch(() => ({}))), [])
  t.match(warnings, [
    { msg: /presence reload failed/, channel: 'room', err: { message: 'state down' } },
    { msg: /presence state unavailable; showing this node's own tracks/, channel: 'other', err: { message: 'state down' } },
    { msg: /presence update not shared/, channel: 'other', err: { message: 'update down' } }
  ])
})

/** A memory broker without the presence methods: it carries messages but shares no presence. */
function brokerWithoutPresence (): Broker {
  const memory = memoryBroker()
  return {
    async connect (node) {
      const connection: Partial<PresenceBroker> & BrokerConnection = await memory.connect(node)
      delete connection.presenceState
      delete connection.presenceUpdate
      return connection
    }
  }
}

t.test('a broker that does not share presence: each node shows its own sockets', async (t) => {
  const plain = brokerWithoutPresence()
  const a = await startPresenceApp(t, { broker: plain })
  const b = await startPresenceApp(t, { broker: plain })
  const onA = await Observer.join(a.url, 'room')
  const onB = await Observer.join(b.url, 'room')
  await onA.track('ann')
  await onB.track('bob')
  await onA.until((s) => s.ann !== undefined, 'ann on A')
  await onB.until((s) => s.bob !== undefined, 'bob on B')
  t.same(Object.keys(await a.app.channels.presence('room')), ['ann'])
  t.same(Object.keys(await b.app.channels.presence('room')), ['bob'])
  t.same(Object.keys(onA.state), ['ann'], 'no track of the other node')
  t.same(await a.app.channels.presence('empty'), {}, 'a channel without subscribers here: empty')
})

t.test('a track and its untrack within one window send no diff at all', async (t) => {
  let socket: ChannelSocket | undefined
  const { url } = await startPresenceApp(t, {}, (app) => {
    app.channels.on('subscribe', (s) => { socket = s })
  })
  const watcher = await Observer.join(url, 'room')
  await Promise.all([(socket as ChannelSocket).track('room', 'flash'), (socket as ChannelSocket).untrack('room')])
  await new Promise((resolve) => setTimeout(resolve, 120))
  await watcher.client.expectNothing((frame) => frame.type === 'presence_diff')
  t.same(watcher.state, {})
})

t.test('a node without subscribers of a channel: others\' changes pass it by, presence() still reads every node', async (t) => {
  const { broker } = outageBroker()
  const a = await startPresenceApp(t, { broker })
  const b = await startPresenceApp(t, { broker })
  const onB = await Observer.join(b.url, 'room')
  await onB.track('bob')
  await onB.until((s) => s.bob !== undefined, 'bob on B')
  await new Promise((resolve) => setTimeout(resolve, 20)) // the relay to A has run
  t.same(Object.keys(await a.app.channels.presence('room')), ['bob'], 'from the broker, not from a mirror A does not have')
})

t.test('once its last subscriber left, a node reads the state afresh on the next join', async (t) => {
  const { broker, outage } = outageBroker()
  const a = await startPresenceApp(t, { broker })
  const b = await startPresenceApp(t, { broker })
  const first = await Observer.join(a.url, 'room')
  await first.client.request({ type: 'unsubscribe', channel: 'room', id: nextId() })
  outage.lost = true // a broker relays a channel only to the nodes that subscribe to it
  const onB = await Observer.join(b.url, 'room')
  await onB.track('bob')
  outage.lost = false
  const next = await Observer.join(a.url, 'room')
  await next.until((s) => s.bob !== undefined, 'bob, whom A was never told of', 2000)
})

t.test('without a broker that shares presence, nothing is logged about sharing it', async (t) => {
  const plain = brokerWithoutPresence()
  const { warnings, logger } = warningsLogger()
  const { app, url } = await startApp({ presence: true, rateLimit: false, broker: plain }, presenceHandlers, { logger })
  t.teardown(() => app.close())
  const ann = await Observer.join(url, 'room')
  await ann.track('ann')
  await ann.until((s) => s.ann !== undefined, 'ann present')
  t.same(warnings, [])
})
