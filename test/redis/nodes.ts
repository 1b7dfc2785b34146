/**
 * Several channels nodes in this test process on one Redis and one prefix, with handlers
 * that drive every socket method, and a fence that proves exactly-once delivery.
 */
import type { Test } from 'tap'
import type { RedisBrokerOptions } from '../../plugin/index.js'
import { TestClient, type Frame } from '../helpers/server.js'
import type { TestApp } from '../helpers/server.js'
import { startNode, type ChildNode } from './helpers.js'
import { socketMethods } from './fixtures/methods.js'

export async function startNodes (t: Test, count: number, broker: RedisBrokerOptions): Promise<TestApp[]> {
  const nodes: TestApp[] = []
  for (let i = 0; i < count; i++) nodes.push(await startNode(t, broker, socketMethods))
  return nodes
}

/** the channels each client subscribed through `connect` (the fence follows them) */
const subscribed = new WeakMap<TestClient, string[]>()

export async function connect (t: Test, node: TestApp | ChildNode, channels: string[] = []): Promise<TestClient> {
  const client = await TestClient.connect(node.url)
  t.teardown(() => client.close())
  for (const channel of channels) {
    const answer = await client.subscribe(channel)
    if (answer.type !== 'subscribed') throw new Error(`subscribe ${channel}: ${JSON.stringify(answer)}`)
  }
  subscribed.set(client, channels)
  return client
}

export const isGot = (frame: Frame): boolean => frame.type === 'message' && frame.event === 'got'

let fences = 0

/**
 * Proves that every frame matching `match` that `from` published before the fence has
 * arrived: a publication from the same node reaches each node after everything published
 * earlier on the same Redis channel (on a cluster, order holds per channel only). So the fence
 * is a broadcast (after broadcasts and sends) and one publication on each channel the clients
 * subscribed through `connect` (after what was published on it). Returns what each client got,
 * in order, and leaves nothing matching behind in their queues.
 */
export async function collectAfterFence (from: TestApp | ChildNode, clients: TestClient[], match: (frame: Frame) => boolean = isGot): Promise<Frame[][]> {
  const fence = ++fences
  const channels = [...new Set(clients.flatMap((client) => subscribed.get(client) ?? []))]
  if ('app' in from) {
    await from.app.broadcast({ fence }, { event: 'fence' })
    for (const channel of channels) await from.app.broadcastChannel(channel, { fence }, { event: 'fence' })
  } else {
    await from.post('/broadcast', { fence }, 'fence')
    for (const channel of channels) await from.postJson(`/channel/${encodeURIComponent(channel)}`, { data: { fence }, event: 'fence' })
  }
  const isFence = (frame: Frame, channel?: string): boolean =>
    frame.event === 'fence' && (frame.data as { fence: number }).fence === fence && frame.channel === channel
  const got: Frame[][] = []
  for (const client of clients) {
    await client.next((frame) => isFence(frame), 5000)
    for (const channel of subscribed.get(client) ?? []) await client.next((frame) => isFence(frame, channel), 5000)
    const matching = client.frames.filter(match)
    client.frames.splice(0, client.frames.length, ...client.frames.filter((frame) => !match(frame)))
    got.push(matching)
  }
  return got
}
