/**
 * The protocol's own frames in the AsyncAPI document: what every connection exchanges whatever
 * the app's events are (welcome, subscribe/subscribed, unsubscribe/unsubscribed, ack, error),
 * taken from the frame schemas in schemas/protocol.ts, so the document cannot drift from the
 * wire. A frame that carries `data` (message, ack) is described as headers (the frame's other
 * fields) and a payload (its `data`); every other frame is its whole JSON object as payload.
 */
import { Type, type TSchema } from '@sinclair/typebox'
import {
  AckFrame, CloseCodes, ErrorCodes, ErrorFrame, PROTOCOL_VERSION, ReplyFrame, RequestFrame, SubscribedFrame, SubscribeFrame,
  UnsubscribedFrame, UnsubscribeFrame, WelcomeFrame
} from '../../schemas/protocol.js'
import type { JsonSchema, SchemaComponents } from './json-schema.js'

/** What each protocol error code means, for client authors. */
const errorMeanings: Record<typeof ErrorCodes[number], string> = {
  BAD_FRAME: 'the frame is not JSON, not an object, of an unknown type, has missing or wrong fields, prototype-poisoning keys, or is binary',
  VALIDATION_FAILED: "the message's data failed a matching handler's schema (`errors` lists { path, message })",
  NO_HANDLER: 'no handler matches the event and channel',
  NOT_SUBSCRIBED: 'a message to a channel the connection does not hold',
  FORBIDDEN: 'a subscribe handler refused the subscription',
  INVALID_CHANNEL: 'channel names are 1–200 UTF-16 code units of well-formed Unicode without control or white-space characters',
  TOO_MANY_CHANNELS: 'the connection holds maxChannels subscriptions already',
  RATE_LIMITED: 'frames past the rate limit were dropped (sent once per window, without id)',
  HANDLER_ERROR: 'a handler failed; no details are given'
}

export const protocolDescription = [
  'JSON text frames over one WebSocket, one object each, protocol version ' + String(PROTOCOL_VERSION) + '.',
  'An app message is the frame {"type":"message","event":<event>,"channel"?:<channel>,"data":<payload>,"id"?:<n>}:',
  "its message headers here describe the frame's fields other than data, its payload describes data.",
  'A frame that carries an id (a positive integer the client chooses) is answered with a frame that carries the same id:',
  'an ack ({"type":"ack","id","data"?}: data is what the handler returned) or an error.',
  'The first frame of every connection is the welcome.',
  'Close codes: ' + [
    `${CloseCodes.NORMAL} normal`, `${CloseCodes.GOING_AWAY} server shutting down`,
    `${CloseCodes.POLICY_VIOLATION} policy (refused by a connect handler, or persistent rate-limit abuse)`,
    `${CloseCodes.MESSAGE_TOO_BIG} frame too large`, `${CloseCodes.TRY_AGAIN_LATER} slow consumer`
  ].join(', ') + '.'
].join(' ')

export interface ProtocolMessage {
  key: string
  message: JsonSchema
}

function frameMessage (components: SchemaComponents, key: string, name: string, summary: string, frame: TSchema): ProtocolMessage {
  return { key, message: { name, title: name, summary, contentType: 'application/json', payload: components.convert(frame) } }
}

function errorMessage (components: SchemaComponents): ProtocolMessage {
  const message = frameMessage(components, 'protocolError', 'error',
    'The answer to a frame that failed (same id), or a notice without id (RATE_LIMITED, a refused server-side subscription).', ErrorFrame)
  const properties = (message.message.payload as { properties: Record<string, JsonSchema> }).properties
  properties.code = {
    ...properties.code,
    description: 'One of the protocol codes below, or an application code from a thrown ChannelError. ' +
      ErrorCodes.map((code) => `${code}: ${errorMeanings[code]}.`).join(' '),
    examples: [...ErrorCodes]
  }
  return message
}

/** A request or its reply: correlated by the server's `rid`. */
function byRid ({ key, message }: ProtocolMessage): ProtocolMessage {
  return { key, message: { ...message, correlationId: { location: '$message.payload#/rid' } } }
}

/** The protocol's messages, by their key in `components.messages`. */
export function protocolMessages (components: SchemaComponents): Record<string, ProtocolMessage> {
  const ackHeaders = Type.Omit(AckFrame, ['data'])
  return {
    welcome: frameMessage(components, 'protocolWelcome', 'welcome', 'The first frame of every connection: its session id and the protocol version.', WelcomeFrame),
    subscribe: frameMessage(components, 'protocolSubscribe', 'subscribe', 'Joins a channel; answered by subscribed or an error (FORBIDDEN, INVALID_CHANNEL, TOO_MANY_CHANNELS).', SubscribeFrame),
    subscribed: frameMessage(components, 'protocolSubscribed', 'subscribed', 'The channel is joined: the answer to subscribe, or a server-side subscription (without id).', SubscribedFrame),
    unsubscribe: frameMessage(components, 'protocolUnsubscribe', 'unsubscribe', 'Leaves a channel; always answered by unsubscribed (also for a channel not held).', UnsubscribeFrame),
    unsubscribed: frameMessage(components, 'protocolUnsubscribed', 'unsubscribed', 'The channel is left: the answer to unsubscribe, or a server-side unsubscription (without id).', UnsubscribedFrame),
    error: errorMessage(components),
    request: byRid(frameMessage(components, 'protocolRequest', 'request',
      'A server → client request (socket.ask): the client runs its handler for event and answers with a reply of the same rid.', RequestFrame)),
    reply: byRid(frameMessage(components, 'protocolReply', 'reply',
      'The answer to a request (same rid): data is what the handler returned, or error { code, message } (NO_HANDLER when the client has none); never both.', ReplyFrame)),
    ack: {
      key: 'protocolAck',
      message: {
        name: 'ack',
        title: 'ack',
        summary: 'The answer to a message frame with an id: data is the first value a matching handler returned (absent when none returned one).',
        contentType: 'application/json',
        headers: components.convert(ackHeaders),
        payload: {},
        correlationId: { location: '$message.header#/id' }
      }
    }
  }
}
