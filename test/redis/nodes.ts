/**
 * Several channels nodes in this test process on one Redis and one prefix, with handlers
 * that drive every socket method, and a fence that proves exactly-once delivery.
 */
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import type { RedisBrokerOptions } from '../../plugin/index.js'
import { TestClient, type Frame } from '../helpers/server.js'
import type { TestApp } from '../helpers/server.js'
import { startNode } from './helpers.js'

/** Handlers that turn a client's message into each socket method (event → method). */
export function socketMethods (app: FastifyInstance): void {
  app.channels.on('message', { event: 'broadcast' }, (socket, data) => { socket.broadcast(data, { event: 'got' }) })
  app.channels.on('message', { event: 'sendAndBroadcast' }, (socket, data) => { socket.sendAndBroadcast(data, { event: 'got' }) })
  app.channels.on('message', { event: 'broadcastChannel' }, (socket, data, meta) => {
    socket.broadcastChannel(data, { event: 'got', channel: meta.channel })
  })
  app.channels.on('message', { event: 'sendAndBroadcastChannel' }, (socket, data, meta) => {
    socket.sendAndBroadcastChannel(data, { event: 'got', channel: meta.channel })
  })
  app.channels.on('message', { event: 'send' }, (socket, data) => { socket.send(data, { event: 'got' }) })
}

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
export async function collectAfterFence (from: TestApp, clients: TestClient[], match: (frame: Frame) => boolean = isGot): Promise<Frame[][]> {
  const fence = ++fences
  await from.app.broadcast({ fence }, { event: 'fence' })
  const got: Frame[][] = []
  for (const client of clients) {
    await client.next((frame) => frame.event === 'fence' && (frame.data as { fence: number }).fence === fence, 5000)
    const matching = client.frames.filter(match)
    client.frames.splice(0, client.frames.length, ...client.frames.filter((frame) => !match(frame)))
    got.push(matching)
  }
  return got
}
