/**
 * Presence test helpers: an app whose `join` message tracks the sender, and an observer that
 * folds `presence` and `presence_diff` frames the way the protocol says (leaves, then joins),
 * written here independently of the client's own fold.
 */
import type { FastifyInstance } from 'fastify'
import type { ChannelsOptions } from '../../plugin/index.js'
import { nextId, startApp, TestClient, type Frame, type TestApp } from '../helpers/server.js'

export type State = Record<string, Array<{ ref: string, meta: unknown }>>

/** `join` tracks the sender under `data.key` with `data.meta`; `leave` untracks it. */
export function presenceHandlers (app: FastifyInstance): void {
  app.channels.on('message', { event: 'join' }, async (socket, data, meta) => {
    const { key, meta: trackMeta } = data as { key: string, meta?: unknown }
    await socket.track(meta.channel as string, key, trackMeta)
    return { ok: true }
  })
  app.channels.on('message', { event: 'leave' }, async (socket, _data, meta) => {
    await socket.untrack(meta.channel as string)
    return { ok: true }
  })
}

export async function startPresenceApp (
  t: { teardown (fn: () => unknown): void },
  options: ChannelsOptions = {},
  setup?: (app: FastifyInstance) => void | Promise<void>
): Promise<TestApp> {
  const started = await startApp({ presence: true, rateLimit: false, ...options }, async (app) => {
    presenceHandlers(app)
    await setup?.(app)
  })
  t.teardown(() => started.app.close())
  return started
}

/** Sorted `key → sorted refs`: equal for equal states whatever the order of entries. */
export function canonical (state: State): Record<string, string[]> {
  const result: Record<string, string[]> = {}
  for (const key of Object.keys(state).sort()) {
    if (state[key].length > 0) result[key] = state[key].map((entry) => `${entry.ref} ${JSON.stringify(entry.meta)}`).sort()
  }
  return result
}

/** A raw client subscribed to a presence channel that folds what it receives. */
export class Observer {
  state: State = {}
  /** presence and presence_diff frames received */
  frames = 0
  bytes = 0
  readonly diffs: Frame[] = []

  private constructor (readonly client: TestClient, readonly channel: string) {}

  /** Connects, subscribes and checks that `presence` comes right after `subscribed`. */
  static async join (url: string, channel: string): Promise<Observer> {
    const client = await TestClient.connect(url)
    const observer = new Observer(client, channel)
    await observer.subscribe()
    return observer
  }

  async subscribe (): Promise<void> {
    const id = nextId()
    this.client.send({ type: 'subscribe', channel: this.channel, id })
    const subscribed = await this.client.next()
    if (subscribed.type !== 'subscribed' || subscribed.id !== id) throw new Error(`expected subscribed, got ${JSON.stringify(subscribed)}`)
    const presence = await this.client.next()
    if (presence.type !== 'presence' || presence.channel !== this.channel) throw new Error(`expected presence right after subscribed, got ${JSON.stringify(presence)}`)
    this.count(presence)
    this.state = structuredClone(presence.state as State)
  }

  private count (frame: Frame): void {
    this.frames++
    this.bytes += Buffer.byteLength(JSON.stringify(frame))
  }

  /** Takes every queued diff of the channel and applies it, in order. */
  drain (): void {
    for (;;) {
      const index = this.client.frames.findIndex((frame) => frame.type === 'presence_diff' && frame.channel === this.channel)
      if (index === -1) return
      const [diff] = this.client.frames.splice(index, 1)
      this.count(diff)
      this.diffs.push(diff)
      this.apply(diff.joins as State, diff.leaves as State)
    }
  }

  private apply (joins: State, leaves: State): void {
    for (const [key, entries] of Object.entries(leaves)) {
      const refs = new Set(entries.map((entry) => entry.ref))
      const left = (this.state[key] ?? []).filter((entry) => !refs.has(entry.ref))
      if ((this.state[key]?.length ?? 0) - left.length !== refs.size) throw new Error(`a leave of a track not in the state: ${JSON.stringify(entries)}`)
      if (left.length > 0) this.state[key] = left
      else delete this.state[key]
    }
    for (const [key, entries] of Object.entries(joins)) {
      const present = new Set((this.state[key] ?? []).map((entry) => entry.ref))
      for (const entry of entries) if (present.has(entry.ref)) throw new Error(`a join of a track already in the state: ${entry.ref}`)
      this.state[key] = [...(this.state[key] ?? []), ...entries]
    }
  }

  /** Waits until the folded state satisfies `predicate`; fails with `what` after `timeoutMs`. */
  async until (predicate: (state: State) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      this.drain()
      if (predicate(this.state)) return
      if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms; state: ${JSON.stringify(this.state)}`)
      await this.client.next((frame) => frame.type === 'presence_diff' && frame.channel === this.channel, Math.max(1, deadline - Date.now())).then((frame) => {
        this.client.frames.unshift(frame)
      }, () => {})
    }
  }

  /** Waits until the folded state equals `expected` (compared canonically). */
  async equals (expected: State, timeoutMs = 5000): Promise<void> {
    const want = JSON.stringify(canonical(expected))
    await this.until((state) => JSON.stringify(canonical(state)) === want, `state ${want}`, timeoutMs)
  }

  /** Sends `join` (track) and waits for its ack. */
  async track (key: string, meta?: unknown): Promise<Frame> {
    return await this.client.request({ type: 'message', event: 'join', channel: this.channel, data: { key, meta }, id: nextId() })
  }

  async untrack (): Promise<Frame> {
    return await this.client.request({ type: 'message', event: 'leave', channel: this.channel, id: nextId() })
  }
}
