/**
 * The life of one connection as one explicit state (as ws's `readyState` or phoenix.js's
 * `CHANNEL_STATES`): every check reads `state`, every change goes through `nextState`.
 *
 *   connecting ──connected──▶ open ──socketClosed──▶ disconnecting ──finished──▶ closed
 *       │  └──refused──▶ refused ──socketClosed──────────────────────────────────▲
 *       └──socketClosed──▶ closedWhileConnecting ──connected──▶ disconnecting     │
 *                                 └──refused─────────────────────────────────────┘
 *
 * Only `open` serves inbound frames (frames that arrive while `connecting` wait in the inbox).
 * Only a socket whose `connect` handlers all succeeded gets the disconnect sequence
 * (`disconnect`, `unsubscribe` per channel, `finish`); a refused one is cleaned up silently.
 */
export const ConnectionStates = {
  /** `welcome` sent, `connect` handlers running */
  CONNECTING: 'connecting',
  /** the socket closed before the `connect` handlers were done: their outcome decides what follows */
  CLOSED_WHILE_CONNECTING: 'closedWhileConnecting',
  /** a `connect` handler threw: the socket is closing with 1008 and was never connected */
  REFUSED: 'refused',
  /** connected: inbound frames are served */
  OPEN: 'open',
  /** the socket closed after connecting: the disconnect sequence is running */
  DISCONNECTING: 'disconnecting',
  /** over: `finished` is resolved */
  CLOSED: 'closed'
} as const
export type ConnectionState = typeof ConnectionStates[keyof typeof ConnectionStates]

/** What moves a connection on. */
export type ConnectionEvent = 'connected' | 'refused' | 'socketClosed' | 'finished'

const transitions: Readonly<Record<ConnectionState, Partial<Record<ConnectionEvent, ConnectionState>>>> = {
  connecting: { connected: 'open', refused: 'refused', socketClosed: 'closedWhileConnecting' },
  closedWhileConnecting: { connected: 'disconnecting', refused: 'closed' },
  refused: { socketClosed: 'closed' },
  open: { socketClosed: 'disconnecting' },
  disconnecting: { finished: 'closed' },
  closed: {}
}

/** The state `event` leads to from `state`, or undefined when it changes nothing (e.g. a second close). */
export function nextState (state: ConnectionState, event: ConnectionEvent): ConnectionState | undefined {
  return transitions[state][event]
}

/** Whether a channel may still be joined: not once the socket closed after connecting (it would never leave). */
export function acceptsJoins (state: ConnectionState): boolean {
  return state !== ConnectionStates.DISCONNECTING && state !== ConnectionStates.CLOSED
}
