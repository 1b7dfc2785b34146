/**
 * Reading several messages of a stream at once, the way NATS 2.9 allows: an ephemeral push
 * consumer (in memory, no acks) on one filter subject, read until the server says nothing is
 * pending, then deleted. `all` reads every message of the filter (a history channel's kept
 * entries); `last_per_subject` the last of each subject (the current value of each key of a
 * bucket under the filter). Each message comes with its stream sequence and the server's time
 * of storage, from the reply subject the server sets on every delivery.
 */
import { randomBytes } from 'node:crypto'
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node'

export interface ScannedMessage {
  subject: string
  seq: number
  /** ms, the server's clock when it stored the message */
  storedAt: number
  headers: MsgHdrs | undefined
  data: Uint8Array
}

interface CreateReply {
  name?: string
  num_pending?: number
  error?: { code?: number, description?: string }
}

/** the reply subject of a delivery: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>` (and 2 more tokens from NATS 2.10) */
function deliveryInfo (reply: string | undefined): { seq: number, storedAt: number, pending: number } | undefined {
  if (reply === undefined) return undefined
  const tokens = reply.split('.')
  const at = tokens.length === 9 ? 5 : tokens.length >= 11 ? 7 : -1
  if (at === -1) return undefined
  return { seq: Number(tokens[at]), storedAt: Math.floor(Number(tokens[at + 2]) / 1e6), pending: Number(tokens[at + 3]) }
}

/** Every message of `stream` under `filter` (`all`), or the last of each subject under it; rejects after `timeoutMs`. */
export async function scan (
  nc: NatsConnection, stream: string, filter: string, policy: 'all' | 'last_per_subject', timeoutMs: number
): Promise<ScannedMessage[]> {
  const inbox = `_INBOX.${randomToken()}`
  const messages: ScannedMessage[] = []
  let done: () => void = () => {}
  let fail: (err: Error) => void = () => {}
  const finished = new Promise<void>((resolve, reject) => { done = resolve; fail = reject })
  finished.catch(() => {}) // awaited below, unless the consumer could not even be created
  const sub = nc.subscribe(inbox, {
    callback: (err, msg) => {
      if (err !== null) {
        fail(err)
        return
      }
      const info = deliveryInfo(msg.reply)
      if (info === undefined) return // a status message (none are asked for)
      messages.push({ subject: msg.subject, seq: info.seq, storedAt: info.storedAt, headers: msg.headers, data: msg.data })
      if (info.pending === 0) done()
    }
  })
  const timer = setTimeout(() => fail(new Error(`nats: reading ${filter} took longer than ${timeoutMs} ms`)), timeoutMs)
  let name: string | undefined
  try {
    const config = {
      deliver_subject: inbox,
      filter_subject: filter,
      deliver_policy: policy,
      ack_policy: 'none',
      replay_policy: 'instant',
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: 10_000_000_000 // ns: the server removes it by itself should the delete be lost
    }
    const reply = await nc.request(`$JS.API.CONSUMER.CREATE.${stream}`, JSON.stringify({ stream_name: stream, config }), { timeout: timeoutMs })
    const created = reply.json<CreateReply>()
    if (created.error !== undefined) throw new Error(`nats: cannot read ${filter}: ${created.error.description ?? 'error'}`)
    name = created.name
    if (created.num_pending === 0) done()
    await finished
    messages.sort((a, b) => a.seq - b.seq)
    return messages
  } finally {
    clearTimeout(timer)
    sub.unsubscribe()
    if (name !== undefined) nc.request(`$JS.API.CONSUMER.DELETE.${stream}.${name}`, '', { timeout: timeoutMs }).catch(() => {})
  }
}

function randomToken (): string {
  return randomBytes(12).toString('hex')
}
