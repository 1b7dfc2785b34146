/**
 * Scenarios shared by the memory-broker tests and their Redis twins (stream-restart and
 * idle-state): a node, a bundled client and a raw socket holding history channel `h` with 50
 * publications seen, and the checks after the stream was lost; clients that joined a channel
 * before its first publication.
 */
import type { Test } from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Broker, ChannelsOptions } from '../../plugin/index.js'
import type { SubscribedInfo } from '../../client/index.js'
import { startApp, TestClient, until, type Frame, type TestApp } from '../helpers/server.js'
import { clientFor } from '../client/helpers.js'

export const isMessage = (frame: Frame): boolean => frame.type === 'message'
export const day = 24 * 3600_000

/** Long enough for a few sweeps of a store whose ttl is 100 ms. */
export async function sweeps (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 400))
}

interface Seen { offsets: number[], infos: SubscribedInfo[] }

/**
 * A node on `broker`, a bundled client and a raw socket holding history channel `h`, and
 * 50 publications seen by both.
 */
export async function holding (t: Test, broker: Broker, options: ChannelsOptions = {}): Promise<{ node: TestApp, seen: Seen, raw: TestClient, epoch: string }> {
  const node = await startApp({ broker, heartbeat: false, rateLimit: false, history: { size: 100, ttl: 60_000 }, ...options })
  t.teardown(() => node.app.close())
  const seen: Seen = { offsets: [], infos: [] }
  const client = clientFor(t, node.url)
  client.on('line', (_data, meta) => { seen.offsets.push(meta.offset ?? -1) })
  client.onSubscribed((_channel, info) => { seen.infos.push(info) })
  await client.subscribe('h')
  const raw = await TestClient.connect(node.url)
  t.teardown(() => raw.close())
  const { epoch } = await raw.subscribe('h')
  for (let i = 1; i <= 50; i++) await node.app.broadcastChannel('h', i, { event: 'line' })
  await until(() => seen.offsets.length === 50, 5000, 'the client got the first 50')
  for (let i = 1; i <= 50; i++) await raw.next(isMessage)
  return { node, seen, raw, epoch: epoch as string }
}

/** After the loss: 60 publications, all of which must reach the client's listener. */
export async function afterLoss (t: Test, { node, seen, raw, epoch }: Awaited<ReturnType<typeof holding>>): Promise<void> {
  for (let i = 1; i <= 60; i++) await node.app.broadcastChannel('h', 100 + i, { event: 'line' })
  const restart = await raw.next()
  t.equal(restart.type, 'subscribed', 'the raw socket gets subscribed before the first message of the new epoch')
  t.notOk('id' in restart, 'without an id')
  t.not(restart.epoch, epoch, 'a new epoch')
  t.same(restart, { type: 'subscribed', channel: 'h', epoch: restart.epoch, offset: 0, recovered: false })
  const next = await raw.next(isMessage)
  t.match(next, { offset: 1, data: 101 })
  await until(() => seen.offsets.length >= 110, 5000, 'the client got all 60 of the new epoch').catch(() => {})
  t.same(seen.offsets.slice(50), Array.from({ length: 60 }, (_, i) => i + 1), 'every publication of the new epoch reached the listener, in order')
  t.equal(seen.infos.length, 2)
  t.match(seen.infos[1], { recovered: false, epoch: restart.epoch, offset: 0 }, 'onSubscribed ran with recovered: false')
  t.equal((await node.app.channels.history('h')).epoch, restart.epoch)
}

/** A raw socket joined to never-published `h`, one that joined and left, then publications. */
export async function joinedBeforeFirstPublication (t: Test, broker: () => Broker): Promise<void> {
  const options = { heartbeat: false as const, rateLimit: false as const, history: { size: 10, ttl: 60_000 } }
  const a = await startApp({ ...options, broker: broker() })
  t.teardown(() => a.app.close())
  const b = await startApp({ ...options, broker: broker() })
  t.teardown(() => b.app.close())
  const staying = await TestClient.connect(a.url)
  const leaving = await TestClient.connect(b.url)
  t.teardown(() => { staying.close(); leaving.close() })
  const joined = await staying.subscribe('h')
  t.match(joined, { offset: 0 })
  t.same(await a.app.channels.history('h'), { epoch: joined.epoch, offset: 0, messages: [] }, 'history() agrees')
  t.match(await leaving.subscribe('h'), { epoch: joined.epoch, offset: 0 }, 'one epoch on every node')
  leaving.close()
  for (let n = 1; n <= 3; n++) await b.app.broadcastChannel('h', n)
  t.same((await staying.next()), { type: 'message', event: 'message', channel: 'h', data: 1, offset: 1 }, 'the first publication, no restart frame before it')
  await staying.next(isMessage)
  await staying.next(isMessage)
  t.equal((await a.app.channels.history('h')).epoch, joined.epoch, 'the stream started in the epoch the joiners got')
  const back = await TestClient.connect(a.url)
  t.teardown(() => back.close())
  t.same(await back.request({ type: 'subscribe', channel: 'h', id: 1, since: { epoch: joined.epoch, offset: 0, session: leaving.sessionId } }),
    { type: 'subscribed', channel: 'h', id: 1, epoch: joined.epoch, offset: 3, recovered: true }, 'a client that left before the first publication recovers')
  t.same([await back.next(isMessage), await back.next(isMessage), await back.next(isMessage)].map((frame) => frame.offset), [1, 2, 3])
}

/** `global.gc`, made available in this process (tap runs it without --expose-gc). */
export function collector (): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

export const channelCount = 100_000
export const bound = 16 * 1024 * 1024

/** Reads `channelCount` distinct never-published channels through history(), 2000 at a time. */
export async function readMany (node: TestApp): Promise<void> {
  for (let start = 0; start < channelCount; start += 2000) {
    await Promise.all(Array.from({ length: 2000 }, async (_, i) => await node.app.channels.history(`never-${start + i}`, { last: 0 })))
  }
}
