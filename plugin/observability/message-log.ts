/**
 * The `messageLog` option: every inbound and outbound frame of this node's sockets, logged
 * through the upgrade request's logger (so each line carries the request id), as a subscriber
 * of the `frame-in` and `frame-out` events.
 */
import { events, type FrameEvent } from './events.js'

/** Subscribes the message log for node `nodeId`; returns what unsubscribes it. */
export function startMessageLog (nodeId: string): () => void {
  const logIn = (message: FrameEvent): void => {
    if (message.nodeId === nodeId) message.socket.request.log.info({ sessionId: message.sessionId, frame: message.frame }, 'channels: message in')
  }
  const logOut = (message: FrameEvent): void => {
    if (message.nodeId === nodeId) message.socket.request.log.info({ sessionId: message.sessionId, frame: message.frame }, 'channels: message out')
  }
  events.frameIn.subscribe(logIn)
  events.frameOut.subscribe(logOut)
  return () => {
    events.frameIn.unsubscribe(logIn)
    events.frameOut.unsubscribe(logOut)
  }
}
