/**
 * The NATS engine's presence store: one key-value bucket per prefix (`<S>-presence`), with
 *
 *   c.<channel>.<node>   the node's tracks in the channel: the whole set, written at once
 *   n.<node>             the node has (or had) tracks: written before any of them
 *
 * A write puts, per channel, the node's whole new set of tracks in that channel (or deletes the
 * key when none is left), and the same message carries the change's envelope: its payload is
 * the envelope (`Fc-Envelope-Bytes` long) followed by the set as JSON. The bucket republishes
 * every change of a `c.` key on `<P>.c.<channel>.p.<node>` once stored, so the store and the
 * diff every node sees are one message: they agree. Only the node itself writes its keys, so
 * writes never conflict; the node keeps the set it means to have (a write that failed is
 * repaired by the next one, which writes the whole set again, as the core's re-assertion does).
 *
 * A reaper finds a dead node's keys with a subject filter (`c.*.<node>`) and deletes each one
 * expecting its last revision, with the leaves envelope in the delete: two nodes reaping at
 * once, one delete wins and each leave goes out once. Then it deletes `n.<node>`.
 *
 * Entries do not expire (NATS 2.9 has no per-key TTL; the bucket has no max age): a dead node's
 * tracks are removed by the live nodes' reaping, within the registry's TTL and a tick.
 * One node's tracks in one channel travel as one message: the server's `max_payload` (1 MB by
 * default) bounds them (some thousands of tracks with small meta).
 */
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node'
import type { JetStreamClient } from '@nats-io/jetstream'
import type { KV } from '@nats-io/kv'
import type { PresenceStore, PresenceWrite } from '../parts.js'
import type { PresenceTrack } from '../types.js'
import { isWrongSequence } from './client.js'
import { decodeToken, encodeToken, type NatsNames } from './names.js'
import { scan, type ScannedMessage } from './scan.js'
import { envelopeBytesHeader } from './transport.js'

const operationHeader = 'KV-Operation'
const encoder = new TextEncoder()
const decoder = new TextDecoder()

type StoredTrack = [ref: string, key: string, meta: string]

function isDeleted (msg: ScannedMessage): boolean {
  const operation = msg.headers?.get(operationHeader) ?? ''
  return operation === 'DEL' || operation === 'PURGE'
}

/** The set a `c.` key holds; empty when it is not one this version wrote. */
function tracksOf (msg: ScannedMessage): StoredTrack[] {
  const start = Number(msg.headers?.get(envelopeBytesHeader) ?? '')
  if (!Number.isInteger(start)) return []
  try {
    const parsed = JSON.parse(decoder.decode(msg.data.subarray(start))) as unknown
    if (!Array.isArray(parsed)) return []
    return parsed.filter((track): track is StoredTrack => Array.isArray(track) && track.length === 3 && track.every((part) => typeof part === 'string'))
  } catch {
    return []
  }
}

export interface NatsPresenceSettings {
  names: NatsNames
  headers: () => MsgHdrs
  nodeId: string
  timeoutMs: number
}

export class NatsPresenceStore implements PresenceStore {
  private readonly stream: string
  /** this node's tracks per channel, as it means them to be */
  private readonly own = new Map<string, Map<string, PresenceTrack>>()

  constructor (
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly kv: KV,
    private readonly settings: NatsPresenceSettings
  ) {
    this.stream = `KV_${settings.names.presenceBucket}`
  }

  private subject (key: string): string {
    return this.settings.names.kvSubject(this.settings.names.presenceBucket, key)
  }

  async write ({ channels, unregister = false }: PresenceWrite): Promise<void> {
    const { names, nodeId } = this.settings
    const joined = [...channels.values()].some((change) => change.joins.length > 0)
    if (joined) await this.kv.put(names.presenceNodeKey(nodeId), '1')
    await Promise.all([...channels].map(async ([channel, { joins, leaves, envelope }]) => {
      let tracks = this.own.get(channel)
      if (tracks === undefined) this.own.set(channel, tracks = new Map())
      for (const ref of leaves) tracks.delete(ref)
      for (const track of joins) tracks.set(track.ref, track)
      const headers = this.settings.headers()
      const head = encoder.encode(envelope)
      headers.set(envelopeBytesHeader, String(head.length))
      let payload = envelope
      if (tracks.size === 0) {
        this.own.delete(channel)
        headers.set(operationHeader, 'DEL')
      } else {
        payload += JSON.stringify([...tracks.values()].map(({ ref, key, meta }) => [ref, key, meta]))
      }
      await this.js.publish(this.subject(names.presenceKey(channel, nodeId)), payload, { headers, timeout: this.settings.timeoutMs })
    }))
    if (unregister) await this.kv.delete(names.presenceNodeKey(nodeId))
  }

  private async latest (filter: string): Promise<ScannedMessage[]> {
    return (await scan(this.nc, this.stream, this.subject(filter), 'last_per_subject', this.settings.timeoutMs)).filter((msg) => !isDeleted(msg))
  }

  async list (channel: string): Promise<PresenceTrack[]> {
    const tracks: PresenceTrack[] = []
    for (const msg of await this.latest(`c.${encodeToken(channel)}.*`)) {
      for (const [ref, key, meta] of tracksOf(msg)) tracks.push({ ref, key, meta })
    }
    return tracks
  }

  async nodes (): Promise<string[]> {
    const nodes: string[] = []
    for (const msg of await this.latest('n.*')) {
      const nodeId = decodeToken(msg.subject.slice(msg.subject.lastIndexOf('.') + 1))
      if (nodeId !== undefined) nodes.push(nodeId)
    }
    return nodes
  }

  async reap (nodeId: string, leavesHead: (channel: string) => string): Promise<number> {
    let removed = 0
    for (const msg of await this.latest(`c.*.${encodeToken(nodeId)}`)) {
      const tokens = msg.subject.split('.')
      const channel = decodeToken(tokens[tokens.length - 2])
      const refs = tracksOf(msg).map(([ref]) => ref)
      if (channel === undefined) continue
      const envelope = leavesHead(channel) + refs.join('\n')
      const headers = this.settings.headers()
      headers.set(operationHeader, 'DEL')
      headers.set(envelopeBytesHeader, String(encoder.encode(envelope).length))
      try {
        await this.js.publish(msg.subject, envelope, { headers, expect: { lastSubjectSequence: msg.seq }, timeout: this.settings.timeoutMs })
        removed += refs.length
      } catch (err) {
        if (!isWrongSequence(err)) throw err // else another node reaped it first (or it wrote again)
      }
    }
    await this.kv.delete(this.settings.names.presenceNodeKey(nodeId))
    return removed
  }
}
