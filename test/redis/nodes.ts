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

export async function connect (t: Test, node: TestApp, channels: string[] = []): Promise<TestClient> {
  const client = await TestClient.connect(node.url)
  t.teardown(() => client.close())
  for (const channel of channels) {
    const answer = await client.subscribe(channel)
    if (answer.type !== 'subscribed') throw new Error(`subscribe ${channel}: ${JSON.stringify(answer)}`)
  }
  return client
}

export const isGot = (frame: Frame): boolean => frame.type === 'message' && frame.event === 'got'

let fences = 0

/**
 * Proves that every frame matching `match` that `from` published before the fence has
 * arrived: a broadcast from the same node, through the same Redis connection, reaches each
 * node after everything published earlier. Returns what each client got, in order, and leaves
 * nothing matching behind in their queues.
 */
export async function collectAfterFence (from: TestApp | ChildNode, clients: TestClient[], match: (frame: Frame) => boolean = isGot): Promise<Frame[][]> {
  const fence = ++fences
  if ('app' in from) await from.app.broadcast({ fence }, { event: 'fence' })
  else await from.post('/broadcast', { fence }, 'fence')
  const got: Frame[][] = []
  for (const client of clients) {
    await client.next((frame) => frame.event === 'fence' && (frame.data as { fence: number }).fence === fence, 5000)
    const matching = client.frames.filter(match)
    client.frames.splice(0, client.frames.length, ...client.frames.filter((frame) => !match(frame)))
    got.push(matching)
  }
  return got
}
