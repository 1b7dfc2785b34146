/**
 * The connection's one state (plugin/connection/state.ts): the transition table, and that
 * every state is reachable from `connecting` and reaches `closed`.
 */
import t from 'tap'
import { acceptsJoins, ConnectionStates, nextState, type ConnectionEvent, type ConnectionState } from '../../plugin/connection/state.js'

const events: ConnectionEvent[] = ['connected', 'refused', 'socketClosed', 'finished']
const states = Object.values(ConnectionStates)

function run (path: ConnectionEvent[]): ConnectionState | undefined {
  let state: ConnectionState | undefined = ConnectionStates.CONNECTING
  for (const event of path) state = state === undefined ? undefined : nextState(state, event)
  return state
}

t.test('the lives a connection can have', async (t) => {
  t.equal(run(['connected', 'socketClosed', 'finished']), 'closed', 'connected, then closed: the disconnect sequence')
  t.equal(run(['connected', 'socketClosed']), 'disconnecting')
  t.equal(run(['refused', 'socketClosed']), 'closed', 'refused: closed without the disconnect sequence')
  t.equal(run(['socketClosed', 'connected']), 'disconnecting', 'closed while connecting, then connected: disconnect sequence')
  t.equal(run(['socketClosed', 'refused']), 'closed', 'closed while connecting, then refused: cleaned up')
})

t.test('every other event changes nothing', async (t) => {
  const allowed = new Set([
    'connecting connected', 'connecting refused', 'connecting socketClosed',
    'closedWhileConnecting connected', 'closedWhileConnecting refused',
    'refused socketClosed', 'open socketClosed', 'disconnecting finished'
  ])
  for (const state of states) {
    for (const event of events) {
      const next = nextState(state, event)
      t.equal(next !== undefined, allowed.has(`${state} ${event}`), `${state} + ${event} → ${String(next)}`)
    }
  }
  t.same(events.map((event) => nextState('closed', event)), [undefined, undefined, undefined, undefined], 'closed is final')
})

t.test('every state is reachable and reaches closed', async (t) => {
  const reached = new Set<ConnectionState>([ConnectionStates.CONNECTING])
  const queue: ConnectionState[] = [ConnectionStates.CONNECTING]
  while (queue.length > 0) {
    const state = queue.shift() as ConnectionState
    for (const event of events) {
      const next = nextState(state, event)
      if (next !== undefined && !reached.has(next)) { reached.add(next); queue.push(next) }
    }
  }
  t.same([...reached].sort(), [...states].sort())
  for (const state of states) {
    if (state === 'closed') continue
    t.ok(events.some((event) => nextState(state, event) !== undefined), `${state} is not a dead end`)
  }
})

t.test('joins are accepted until the socket closed after connecting', async (t) => {
  t.same(states.filter(acceptsJoins).sort(), ['closedWhileConnecting', 'connecting', 'open', 'refused'])
})
