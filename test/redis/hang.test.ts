/**
 * A Redis that hangs (SIGSTOP) while a node keeps publishing: the node's memory stays bounded
 * (what cannot be handed over is refused, not queued), and nothing reported failed is
 * delivered when Redis wakes up: neither the publications of a storm nor a rejected `send`.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Frame } from '../helpers/server.js'
import { ChildNode, PrivateRedis, eventually, startNode, uniquePrefix, withRedis } from './helpers.js'
import { socketMethods } from './fixtures/methods.js'
import { collectAfterFence, connect, isGot } from './nodes.js'

const MB = 1024 * 1024
const commandTimeout = 500

interface Heap { before: number, during: number, after: number }

/** Broadcasts probes from `publish` until `client` gets one: cross-node delivery works again. */
async function resumed (publish: () => Promise<unknown>, frames: Frame[], what: string): Promise<void> {
  await eventually(async () => {
    await publish()
    return frames.some((frame) => frame.event === 'probe')
  }, 15000, what)
}

await withRedis(t, async () => {
  t.test('a publish storm into a hung Redis: heap bounded, and none of it delivered afterwards', async (t) => {
    const redis = await PrivateRedis.start(t)
    t.teardown(() => redis.resume())
    const prefix = uniquePrefix()
    const storming = await ChildNode.start(t, {
      PREFIX: prefix, REDIS_URL: redis.url, NODE_TTL: '3000', COMMAND_TIMEOUT: String(commandTimeout), LOG_LEVEL: 'error'
    }, ['--expose-gc'])
    const receiving = await startNode(t, { url: redis.url, prefix, commandTimeout }, socketMethods)
    const onReceiving = await connect(t, receiving)
    await storming.post('/broadcast', 'before')
    t.same((await collectAfterFence(storming, [onReceiving]))[0].map((frame) => frame.data), ['before'])

    redis.pause()
    // 5,000 broadcasts of 10 KB: 50 MB that a hung Redis cannot take
    const heap = await storming.postJson('/storm', { count: 5000, size: 10_000, event: 'storm' }) as Heap
    const grewDuring = (heap.during - heap.before) / MB
    const grewAfter = (heap.after - heap.before) / MB
    t.ok(grewDuring < 35, `while in flight, the heap grew by ${grewDuring.toFixed(1)} MB (at most the backlog cap, not 50 MB)`)
    t.ok(grewAfter < 10, `once every publish settled, the heap grew by ${grewAfter.toFixed(1)} MB (nothing stays queued)`)
    redis.resume()

    await resumed(() => storming.post('/broadcast', 'probe', 'probe'), onReceiving.frames, 'cross-node delivery resumes')
    const stormed = (frame: Frame): boolean => frame.event === 'storm'
    const [late] = await collectAfterFence(storming, [onReceiving], stormed)
    t.equal(late.length, 0, 'no publication of the storm (each reported failed) arrived after the hang')
  })

  t.test('a send rejected while Redis hangs is never delivered afterwards', async (t) => {
    const redis = await PrivateRedis.start(t)
    t.teardown(() => redis.resume())
    const prefix = uniquePrefix()
    const a = await startNode(t, { url: redis.url, prefix, commandTimeout }, socketMethods)
    const b = await startNode(t, { url: redis.url, prefix, commandTimeout }, socketMethods)
    const onB = await connect(t, b, ['room'])
    // a new session is registered in the background: wait until the other node finds it
    await eventually(async () => await a.app.send(onB.sessionId, 'before', { event: 'got' }).then(() => true, () => false), 5000, 'the session registered')
    t.equal((await onB.next(isGot)).data, 'before')

    redis.pause()
    await t.rejects(a.app.send(onB.sessionId, 'rejected', { event: 'got' }), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE' })
    await t.rejects(a.app.send(onB.sessionId, 'rejected too', { event: 'got' }), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE' },
      'also once the connection was reset')
    redis.resume()

    const probe = (app: FastifyInstance) => () => app.broadcastChannel('room', 'probe', { event: 'probe' })
    await resumed(probe(a.app), onB.frames, 'cross-node delivery resumes')
    await a.app.send(onB.sessionId, 'after', { event: 'got' })
    t.same((await collectAfterFence(a, [onB]))[0].map((frame) => frame.data), ['after'], 'only the send that succeeded arrived')
  })
})
