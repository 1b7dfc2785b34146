/**
 * A private redis-server killed and restarted mid-test: local delivery goes on and nothing
 * hangs while it is down, the failure is logged once, and when it is back every channel is
 * resubscribed, every session registered again and cross-node delivery resumes by itself.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { nextId, type Frame } from '../helpers/server.js'
import { PrivateRedis, capturedLogger, eventually, startNode, uniquePrefix, withRedis, type LogLine } from './helpers.js'
import { socketMethods } from './fixtures/methods.js'
import { collectAfterFence, connect, isGot } from './nodes.js'

const data = (frames: Frame[]): unknown[] => frames.map((frame) => frame.data)

/** Whether `app` can reach `sessionId` now (the probe frame is the test's 'got' event). */
async function sends (app: FastifyInstance, sessionId: string): Promise<boolean> {
  try {
    await app.send(sessionId, 'found', { event: 'got' })
    return true
  } catch {
    return false
  }
}

/** Resolves with how long `work` took. */
async function timed (work: () => Promise<unknown>): Promise<number> {
  const started = Date.now()
  await work()
  return Date.now() - started
}

await withRedis(t, async () => {
  t.test('Redis killed and restarted: local delivery goes on, cross-node delivery resumes', async (t) => {
    const redis = await PrivateRedis.start(t)
    const prefix = uniquePrefix()
    const logs: LogLine[] = []
    const a = await startNode(t, { url: redis.url, prefix }, socketMethods, {}, capturedLogger(logs))
    const b = await startNode(t, { url: redis.url, prefix }, socketMethods)
    const onA = await connect(t, a, ['room'])
    const onA2 = await connect(t, a, ['room'])
    const onB = await connect(t, b, ['room'])
    await a.app.broadcastChannel('room', 'before', { event: 'got' })
    t.same((await collectAfterFence(a, [onA, onA2, onB])).map(data), [['before'], ['before'], ['before']])

    await redis.kill()

    t.ok(await timed(() => a.app.broadcastChannel('room', 'during', { event: 'got' })) < 500, 'broadcastChannel settles at once')
    t.equal((await onA.next(isGot)).data, 'during', 'local sockets still get it')
    t.equal((await onA2.next(isGot)).data, 'during')
    t.ok(await timed(() => a.app.broadcast('all', { event: 'got' })) < 500, 'broadcast settles at once')
    t.equal((await onA.next(isGot)).data, 'all')
    t.equal((await onA2.next(isGot)).data, 'all')
    await onA.request({ type: 'message', event: 'broadcast', data: 'from-socket', id: nextId() })
    t.equal((await onA2.next(isGot)).data, 'from-socket', 'socket methods deliver locally')
    const sendTook = await timed(() => t.rejects(a.app.send(onB.sessionId, 'x'), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE' }))
    t.ok(sendTook < 500, 'send to a remote session rejects at once as unavailable')
    await a.app.send(onA.sessionId, 'local-send', { event: 'got' })
    t.equal((await onA.next(isGot)).data, 'local-send', 'send to a local session still works')

    // joining and connecting during the outage are answered at once; they go live when Redis is back
    const lateB = await connect(t, b, ['late'])
    const lateA = await connect(t, a)
    t.ok(logs.some((line) => line.level === 40 && /broker publish failed/.test(line.msg)), 'the failed publish is logged')
    await eventually(() => logs.some((line) => line.level === 40 && /redis unreachable/.test(line.msg)), 5000, 'the outage is logged')
    await eventually(() => logs.filter((line) => /redis still unreachable/.test(line.msg)).length >= 2, 10000, 'retries fail')
    t.equal(logs.filter((line) => /redis unreachable/.test(line.msg)).length, 1, 'the outage is logged once, not once per retry')

    await redis.restart()

    await eventually(async () => {
      await a.app.broadcastChannel('late', 'probe', { event: 'probe' })
      return lateB.frames.some((frame) => frame.event === 'probe')
    }, 15000, 'a channel first joined during the outage is subscribed on Redis')
    await eventually(async () => {
      await a.app.broadcastChannel('room', 'probe', { event: 'probe' })
      return onB.frames.some((frame) => frame.event === 'probe')
    }, 15000, 'a channel joined before the outage is subscribed again')
    await eventually(() => sends(b.app, lateA.sessionId), 15000, 'a session that connected during the outage is registered')
    t.equal((await lateA.next(isGot)).data, 'found')
    await eventually(() => sends(b.app, onA.sessionId), 15000, 'a session from before the outage is registered again')
    t.equal((await onA.next(isGot)).data, 'found')

    await onB.request({ type: 'message', event: 'broadcastChannel', channel: 'room', data: 'after', id: nextId() })
    t.same((await collectAfterFence(b, [onA, onA2, onB, lateA, lateB])).map(data), [['after'], ['after'], [], [], []],
      'exactly once again')
    await eventually(() => logs.some((line) => /redis is back/.test(line.msg)), 5000, 'the recovery is logged')
  })

  t.test('a Redis that hangs: calls give up after commandTimeout instead of hanging', async (t) => {
    const redis = await PrivateRedis.start(t)
    const prefix = uniquePrefix()
    const a = await startNode(t, { url: redis.url, prefix, commandTimeout: 300 }, socketMethods)
    const b = await startNode(t, { url: redis.url, prefix, commandTimeout: 300 }, socketMethods)
    const onA = await connect(t, a, ['room'])
    const onB = await connect(t, b, ['room'])
    redis.pause()
    t.teardown(() => redis.resume())
    t.ok(await timed(() => a.app.broadcastChannel('room', 'hung', { event: 'got' })) < 1500, 'broadcastChannel settles')
    t.equal((await onA.next(isGot)).data, 'hung')
    t.ok(await timed(() => t.rejects(a.app.send(onB.sessionId, 'x'), { code: 'FST_CHANNELS_BROKER_UNAVAILABLE' })) < 1500, 'send rejects')
    redis.resume()
    await eventually(async () => {
      await a.app.broadcastChannel('room', 'probe', { event: 'probe' })
      return onB.frames.some((frame) => frame.event === 'probe')
    }, 10000, 'delivery resumes')
  })

  t.test('each outage is logged once when it begins and once when it ends, whatever caused it', async (t) => {
    const redis = await PrivateRedis.start(t)
    t.teardown(() => redis.resume())
    const logs: LogLine[] = []
    const a = await startNode(t, { url: redis.url, prefix: uniquePrefix(), nodeTtl: 1000, commandTimeout: 300 }, socketMethods, {}, capturedLogger(logs))
    await connect(t, a, ['room'])
    const lines = (pattern: RegExp, level: number): LogLine[] => logs.filter((line) => line.level === level && pattern.test(line.msg))
    const begun = (): LogLine[] => lines(/redis unreachable/, 40)
    const ended = (): LogLine[] => lines(/redis is back/, 30)

    // 1. a hang: nothing closes, Redis just stops answering
    redis.pause()
    await eventually(() => begun().length === 1, 5000, 'the hang is logged at warn')
    await a.app.broadcastChannel('room', 'dropped', { event: 'got' }) // fails: counted
    redis.resume()
    await eventually(() => ended().length === 1, 10000, 'the end of the hang is logged')
    t.match(ended()[0], { dropped: 1, channels: 1, sessions: 1 }, 'the end line counts what was dropped and re-registered')
    t.ok((ended()[0] as LogLine & { outageMs: number }).outageMs > 0)

    // 2. a later real outage is logged at warn again, and its end once
    await redis.kill()
    await eventually(() => begun().length === 2, 5000, 'the second outage is logged at warn')
    await redis.restart()
    await eventually(() => ended().length === 2, 10000, 'the end of the second outage is logged')
    t.equal(begun().length, 2, 'two outages began')
    t.equal(ended().length, 2, 'two outages ended')
    t.equal(lines(/redis unreachable|redis is back/, 50).length, 0)
  })

  t.test('fastify.close() completes promptly while Redis is down', async (t) => {
    const redis = await PrivateRedis.start(t)
    const a = await startNode(t, { url: redis.url, prefix: uniquePrefix() }, socketMethods)
    await connect(t, a, ['room'])
    await redis.kill()
    t.ok(await timed(() => a.app.close()) < 3000, 'closed')
  })
})
