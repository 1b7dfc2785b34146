/**
 * Presence on one node: the tracks of its own sockets, a mirror of every presence channel it
 * has subscribers of, and the diff window that merges changes into one `presence_diff` per
 * channel per window. The broker (when it shares presence) keeps the truth over every node and
 * relays other nodes' changes here; without one, a node knows its own sockets only.
 *
 * A socket joins a presence channel in three steps: the plugin subscribes it (server.joined),
 * `ready()` waits for the channel's mirror to be loaded, then, right after `subscribed`,
 * `welcome()` sends the `presence` frame and makes it an observer: from then on it gets every
 * diff. Leaving (unsubscribe or close) goes through `left()`, which untracks.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import sjson from 'secure-json-parse'
import { encodePresence, encodePresenceDiff } from '../../schemas/codec.js'
import type { PresenceState } from '../../schemas/protocol.js'
import { sharesPresence, type BrokerConnection, type PresenceBroker, type PresenceChanges, type PresenceTrack } from '../broker/types.js'
import { ChannelError, InvalidPresenceError, UnserializableDataError } from '../errors.js'
import { toOutbound, type OutboundFrame } from '../outbound/frame-writer.js'
import { deliverToAll } from '../outbound/frame-writer.js'
import { channelMatches } from '../handlers/registry.js'
import type { PresenceOptions } from '../options.js'
import type { ChannelStep } from '../channel-steps.js'
import { DiffWindows } from './diff-windows.js'
import { ChannelMirror } from './mirror.js'

/** longest key, in UTF-16 code units (like a channel name) */
export const maxPresenceKeyLength = 200
/** largest meta, as JSON text: every subscriber gets every meta in its `presence` frame */
export const maxPresenceMetaBytes = 4096

const parseOptions = { protoAction: 'error', constructorAction: 'error' } as const

/** What presence needs of a socket. */
export interface PresenceSocket {
  readonly id: string
  readonly channels: ReadonlySet<string>
  sendFrame (frame: OutboundFrame): void
  deliveryStamp: number
}

/** `meta` as JSON text a client can decode; InvalidPresence/Unserializable errors otherwise. */
function encodeMeta (meta: unknown): string {
  let text: string | undefined
  try {
    text = JSON.stringify(meta ?? {})
  } catch (err) {
    throw new UnserializableDataError((err as Error).message)
  }
  if (text === undefined) throw new InvalidPresenceError('meta must be JSON data')
  if (Buffer.byteLength(text) > maxPresenceMetaBytes) throw new InvalidPresenceError(`meta is larger than ${maxPresenceMetaBytes} bytes as JSON`)
  // Clients parse frames with secure-json-parse: a meta carrying __proto__ would make the whole frame unreadable.
  try {
    sjson.parse(text, undefined, parseOptions)
  } catch {
    throw new InvalidPresenceError('meta must not contain __proto__ or constructor.prototype keys')
  }
  return text
}

function checkKey (key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > maxPresenceKeyLength) {
    throw new InvalidPresenceError(`key must be a string of 1-${maxPresenceKeyLength} characters`)
  }
  if (key === '__proto__') throw new InvalidPresenceError('key must not be "__proto__"')
  return key
}

export class PresenceTracker {
  /** each socket's own track per channel */
  private readonly own = new Map<PresenceSocket, Map<string, PresenceTrack>>()
  /** presence channels this node has subscribers of */
  private readonly mirrors = new Map<string, ChannelMirror<PresenceSocket>>()
  private readonly loading = new Map<string, Promise<void>>()
  /** when each channel's diff goes out (diff-windows.ts) */
  private readonly windows = new DiffWindows((channel) => this.flush(channel))
  private broker: (BrokerConnection & PresenceBroker) | undefined

  constructor (private readonly options: PresenceOptions | false, private readonly log: FastifyBaseLogger) {}

  useBroker (connection: BrokerConnection | undefined): void {
    this.broker = connection !== undefined && sharesPresence(connection) ? connection : undefined
  }

  isPresenceChannel (channel: string): boolean {
    return this.options !== false && channelMatches(this.options.channel, channel)
  }

  // ---- joining and leaving -------------------------------------------------------------

  /**
   * The presence step of the join/leave path (membership.ts): first of the after-join steps, so
   * the `presence` frame comes right after `subscribed`; on leave, it untracks. `holders` tells
   * whether any local socket still holds a channel.
   */
  channelStep (holders: { get (channel: string): unknown }): ChannelStep {
    return {
      afterJoin: (socket, channel) => { this.welcome(socket, channel) },
      onLeave: (socket, channel) => { this.left(socket, channel, holders.get(channel) === undefined) }
    }
  }

  /** Resolves once `channel`'s state is known here (the first local subscriber loads it). */
  async ready (channel: string): Promise<void> {
    if (!this.isPresenceChannel(channel)) return
    const mirror = this.mirror(channel)
    // Read only now, once the broker relays the channel: no change can fall in between.
    if (mirror.state === 'loading' && !this.loading.has(channel)) this.load(channel, mirror)
    await this.loading.get(channel)
  }

  /** Right after `subscribed`: the `presence` frame, then diffs. */
  welcome (socket: PresenceSocket, channel: string): void {
    const mirror = this.mirrors.get(channel)
    if (mirror === undefined || !socket.channels.has(channel)) return
    socket.sendFrame(toOutbound(encodePresence(channel, mirror.base())))
    mirror.observers.add(socket)
  }

  /** `socket` left `channel`; `last`: it was this node's last subscriber of it. */
  left (socket: PresenceSocket, channel: string, last: boolean): void {
    this.untrackNow(socket, channel).catch(() => {}) // change() logs a broker failure itself
    const mirror = this.mirrors.get(channel)
    if (mirror === undefined) return
    mirror.observers.delete(socket)
    if (last) {
      this.mirrors.delete(channel)
      this.loading.delete(channel)
      this.windows.close(channel)
    }
  }

  private mirror (channel: string): ChannelMirror<PresenceSocket> {
    let mirror = this.mirrors.get(channel)
    if (mirror !== undefined) return mirror
    mirror = new ChannelMirror<PresenceSocket>() // loading: changes wait until ready() has read the state
    this.mirrors.set(channel, mirror)
    return mirror
  }

  private load (channel: string, mirror: ChannelMirror<PresenceSocket>): void {
    const broker = this.broker
    if (broker === undefined) {
      mirror.load([])
      return
    }
    const loaded = broker.presenceState(channel).catch((err: unknown) => {
      this.log.warn({ err, channel }, 'channels: presence state unavailable; showing this node\'s own tracks until the broker is back')
      return this.ownTracks(channel)
    }).then((tracks) => {
      if (this.mirrors.get(channel) !== mirror) return // every local subscriber left meanwhile
      mirror.load(tracks)
      this.windows.open(channel)
    }).finally(() => {
      if (this.loading.get(channel) === loaded) this.loading.delete(channel)
    })
    this.loading.set(channel, loaded)
  }

  private ownTracks (channel: string): PresenceTrack[] {
    const tracks: PresenceTrack[] = []
    for (const byChannel of this.own.values()) {
      const track = byChannel.get(channel)
      if (track !== undefined) tracks.push(track)
    }
    return tracks
  }

  // ---- tracking -------------------------------------------------------------------------

  async track (socket: PresenceSocket, channel: string, key: unknown, meta: unknown): Promise<void> {
    if (!socket.channels.has(channel)) throw new ChannelError('NOT_SUBSCRIBED', `not subscribed to channel "${channel}"`)
    if (!this.isPresenceChannel(channel)) throw new InvalidPresenceError(`"${channel}" is not a presence channel (see the presence option)`)
    const track: PresenceTrack = { ref: randomBytes(15).toString('base64url'), key: checkKey(key), meta: encodeMeta(meta) }
    let byChannel = this.own.get(socket)
    if (byChannel === undefined) this.own.set(socket, byChannel = new Map())
    const previous = byChannel.get(channel)
    byChannel.set(channel, track)
    await this.change(channel, { joins: [track], leaves: previous === undefined ? [] : [previous.ref] })
  }

  async untrack (socket: PresenceSocket, channel: string): Promise<void> {
    await this.untrackNow(socket, channel)
  }

  private untrackNow (socket: PresenceSocket, channel: string): Promise<void> {
    const byChannel = this.own.get(socket)
    const track = byChannel?.get(channel)
    if (byChannel === undefined || track === undefined) return Promise.resolve()
    byChannel.delete(channel)
    if (byChannel.size === 0) this.own.delete(socket)
    return this.change(channel, { joins: [], leaves: [track.ref] })
  }

  /** A change of this node's own tracks: local mirror first, then the broker (a failure is logged). */
  private async change (channel: string, changes: PresenceChanges): Promise<void> {
    // A socket may track before its join has read the state (a track right after the
    // subscribe handlers): the mirror exists from the first change on, so none is lost.
    const mirror = this.mirror(channel)
    mirror.apply(changes)
    if (mirror.dirty) this.windows.open(channel)
    if (this.broker === undefined) return
    try {
      await this.broker.presenceUpdate(channel, changes)
    } catch (err) {
      this.log.warn({ err, channel }, 'channels: presence update not shared; the broker re-asserts this node\'s tracks when it is back')
    }
  }

  // ---- changes from anywhere ------------------------------------------------------------

  /** Tracks changed (here, on another node, or a dead node's were removed). */
  changed (channel: string, changes: PresenceChanges): void {
    const mirror = this.mirrors.get(channel)
    if (mirror === undefined) return
    mirror.apply(changes)
    if (mirror.dirty) this.windows.open(channel)
  }

  /** The broker may have missed changes (an outage): read every mirrored channel again. */
  reload (): void {
    const broker = this.broker
    if (broker === undefined) return
    for (const [channel, mirror] of this.mirrors) {
      if (mirror.state === 'loading') continue
      broker.presenceState(channel).then((tracks) => {
        if (this.mirrors.get(channel) !== mirror) return
        mirror.load(tracks)
        if (mirror.dirty) this.windows.open(channel)
      }, (err: unknown) => this.log.warn({ err, channel }, 'channels: presence reload failed'))
    }
  }

  /** `channel`'s window ended: its diff to its observers, if it changed; true when it had a diff. */
  private flush (channel: string): boolean {
    const mirror = this.mirrors.get(channel)
    if (mirror === undefined || !mirror.dirty) return false
    const { joins, leaves } = mirror.takeDiff()
    if (mirror.observers.size > 0) deliverToAll(mirror.observers, encodePresenceDiff(channel, joins, leaves))
    return true
  }

  // ---- reading --------------------------------------------------------------------------

  /** `fastify.channels.presence(channel)`: over every node when the broker shares presence. */
  async presence (channel: string): Promise<PresenceState> {
    const tracks = this.broker !== undefined
      ? await this.broker.presenceState(channel)
      : this.mirrors.get(channel)?.tracks() ?? []
    const state: PresenceState = {}
    for (const { ref, key, meta } of tracks) {
      const entry = { ref, meta: JSON.parse(meta) as unknown }
      if (Object.hasOwn(state, key)) state[key].push(entry)
      else state[key] = [entry]
    }
    return state
  }

  close (): void {
    this.windows.clear()
  }
}
