/**
 * schemas/protocol.ts: the frame schemas themselves, as an app or a tool that imports
 * `fastify-channels/schemas` sees them (codec.test.ts covers decoding through them).
 */
import t from 'tap'
import { Value } from '@sinclair/typebox/value'
import { decodeClientFrame, decodeServerFrame } from '../../schemas/codec.js'
import {
  AckFrame, ClientFrame, CloseCodes, DEFAULT_EVENT, ErrorCodes, ErrorFrame, MessageFrame, PROTOCOL_VERSION,
  ServerFrame, ServerMessageFrame, SubscribedFrame, SubscribeFrame, UnsubscribedFrame, UnsubscribeFrame, WelcomeFrame
} from '../../schemas/protocol.js'

const clientFrames = [
  { type: 'subscribe', channel: 'room', id: 1 },
  { type: 'unsubscribe', channel: 'room' },
  { type: 'message', event: 'chat', channel: 'room', data: { text: 'hi' }, id: 2 }
]
const serverFrames = [
  { type: 'welcome', sessionId: 's', protocol: 1 },
  { type: 'subscribed', channel: 'room', id: 1 },
  { type: 'unsubscribed', channel: 'room' },
  { type: 'message', event: 'chat', data: 1 },
  { type: 'ack', id: 2, data: 'ok' },
  { type: 'error', code: 'NO_HANDLER', message: 'no handler', id: 3, errors: [{ path: '/a', message: 'm' }] }
]

t.test('the protocol constants', async (t) => {
  t.equal(PROTOCOL_VERSION, 1)
  t.equal(DEFAULT_EVENT, 'message', 'a message frame without an event is a "message" event')
  t.same(CloseCodes, { NORMAL: 1000, GOING_AWAY: 1001, ABNORMAL_CLOSURE: 1006, POLICY_VIOLATION: 1008, MESSAGE_TOO_BIG: 1009, TRY_AGAIN_LATER: 1013 })
  t.same(ErrorCodes, ['BAD_FRAME', 'VALIDATION_FAILED', 'NO_HANDLER', 'NOT_SUBSCRIBED', 'FORBIDDEN',
    'INVALID_CHANNEL', 'TOO_MANY_CHANNELS', 'RATE_LIMITED', 'HANDLER_ERROR'])
})

t.test('ClientFrame and ServerFrame are the unions of their frames, and only of those', async (t) => {
  for (const frame of clientFrames) {
    t.ok(Value.Check(ClientFrame, frame), `client ${frame.type}`)
    if (frame.type !== 'message') t.notOk(Value.Check(ServerFrame, frame), `not a server ${frame.type}`)
  }
  for (const frame of serverFrames) {
    t.ok(Value.Check(ServerFrame, frame), `server ${frame.type}`)
    if (frame.type !== 'message') t.notOk(Value.Check(ClientFrame, frame), `not a client ${frame.type}`)
  }
  const schemas = [SubscribeFrame, UnsubscribeFrame, MessageFrame]
  t.same(clientFrames.map((frame, i) => Value.Check(schemas[i], frame)), [true, true, true])
  const serverSchemas = [WelcomeFrame, SubscribedFrame, UnsubscribedFrame, ServerMessageFrame, AckFrame, ErrorFrame]
  t.same(serverFrames.map((frame, i) => Value.Check(serverSchemas[i], frame)), [true, true, true, true, true, true])
})

t.test('a channel field is bounded (100 000 characters): longer is a BAD_FRAME before any name check', async (t) => {
  t.equal(decodeClientFrame(JSON.stringify({ type: 'subscribe', channel: 'x'.repeat(100_000) })).ok, true)
  const long = decodeClientFrame(JSON.stringify({ type: 'subscribe', channel: 'x'.repeat(100_001), id: 4 }))
  t.same(long, { ok: false, code: 'BAD_FRAME', message: 'malformed subscribe frame: missing or wrong fields', id: 4 })
})

t.test('malformed server frames are refused by the client\'s decoder and by the ServerFrame schema', async (t) => {
  const bad = [
    { type: 'welcome', sessionId: '', protocol: 1 },
    { type: 'welcome', sessionId: 's', protocol: 0 },
    { type: 'welcome', sessionId: 's', protocol: 1.5 },
    { type: 'welcome', protocol: 1 },
    { type: 'subscribed', id: 1 },
    { type: 'subscribed', channel: 7 },
    { type: 'subscribed', channel: 'room', id: 0 },
    { type: 'unsubscribed' },
    { type: 'unsubscribed', channel: 'room', id: -1 },
    { type: 'message', data: 1 },
    { type: 'message', event: 'chat', channel: 7 },
    { type: 'ack' },
    { type: 'ack', id: 0 },
    { type: 'error', code: '', message: 'm' },
    { type: 'error', message: 'm' },
    { type: 'error', code: 'X' },
    { type: 'error', code: 'X', message: 'm', id: 0 },
    { type: 'error', code: 'X', message: 'm', errors: [{ path: '/a' }] },
    { type: 'error', code: 'X', message: 'm', errors: [{ message: 'm' }] },
    { type: 'error', code: 'X', message: 'm', errors: {} }
  ]
  for (const [index, frame] of bad.entries()) {
    const result = decodeServerFrame(JSON.stringify(frame))
    t.equal(result.ok, false, `#${index} ${JSON.stringify(frame)}`)
    t.notOk(Value.Check(ServerFrame, frame), `schema #${index}`)
  }
})
