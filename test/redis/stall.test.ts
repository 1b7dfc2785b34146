/**
 * Stalls longer than `nodeTtl`: Redis frozen (SIGSTOP) and a node process frozen (a long GC
 * pause, a stopped VM). Meanwhile the node's registration expires, and lookups from other
 * nodes prune it; once the stall is over, the sessions still open on that node must be
 * reachable again within seconds, by themselves.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { ChildNode, PrivateRedis, eventually, redisUrl, startNode, uniquePrefix, deleteKeys, withRedis } from './helpers.js'
import { socketMethods } from './fixtures/methods.js'
import { connect, isGot } from './nodes.js'

const nodeTtl = 1000
/** past the TTL with room to spare: the registration has expired for sure */
const stallMs = 2500
/** "within a few seconds": a refresh comes every third of the TTL, a reconnect within about a second */
const healsWithinMs = 5000
/** well above a loaded machine's latency: these tests are about stalls, not about timeouts */
const commandTimeout = 1000

/** Resolves with the error code of `app.send(sessionId)`, or 'ok' when it was delivered. */
async function sendResult (app: FastifyInstance, sessionId: string, data: unknown): Promise<string> {
  try {
    await app.send(sessionId, data, { event: 'got' })
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

await withRedis(t, async () => {
  t.test('Redis frozen longer than nodeTtl: sessions are reachable again by themselves', async (t) => {
    const redis = await PrivateRedis.start(t)
    t.teardown(() => redis.resume())
    const prefix = uniquePrefix()
    const a = await startNode(t, { url: redis.url, prefix, nodeTtl, commandTimeout }, socketMethods)
    const b = await startNode(t, { url: redis.url, prefix, nodeTtl, commandTimeout }, socketMethods)
    const onA = await connect(t, a)
    // a new session is registered in the background: wait until the other node finds it
    await eventually(async () => await sendResult(b.app, onA.sessionId, 'before') === 'ok', healsWithinMs, 'the session registered')
    t.equal((await onA.next(isGot)).data, 'before')

    redis.pause()
    await sleep(stallMs)
    redis.resume()

    const resumedAt = Date.now()
    await eventually(async () => await sendResult(b.app, onA.sessionId, 'after') === 'ok', healsWithinMs,
      'a session opened before the stall reachable from the other node')
    t.ok(Date.now() - resumedAt < healsWithinMs, `healed ${Date.now() - resumedAt} ms after Redis woke up`)
    t.equal((await onA.next(isGot)).data, 'after')
    // and it stays so: the next refreshes keep the re-written registration
    await sleep(nodeTtl * 2)
    t.equal(await sendResult(b.app, onA.sessionId, 'later'), 'ok')
    t.equal((await onA.next(isGot)).data, 'later')
  })

  t.test('a node process frozen longer than nodeTtl: its sessions are reachable again by themselves', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const child = await ChildNode.start(t, { PREFIX: prefix, NODE_TTL: String(nodeTtl), COMMAND_TIMEOUT: String(commandTimeout), REDIS_URL: redisUrl })
    const local = await startNode(t, { prefix, nodeTtl, commandTimeout }, socketMethods)
    const onChild = await connect(t, { url: child.url } as never)
    await eventually(async () => await sendResult(local.app, onChild.sessionId, 'before') === 'ok', healsWithinMs, 'the session registered')
    t.equal((await onChild.next(isGot)).data, 'before')

    child.pause()
    t.teardown(() => child.resume())
    // the frozen node's registration expires, and a lookup prunes it, as in production
    await eventually(async () => await sendResult(local.app, onChild.sessionId, 'lost') === 'FST_CHANNELS_NO_SOCKET',
      stallMs, 'the frozen node\'s registration expired')
    await sleep(stallMs - nodeTtl)
    child.resume()

    const resumedAt = Date.now()
    await eventually(async () => await sendResult(local.app, onChild.sessionId, 'after') === 'ok', healsWithinMs,
      'a session on the thawed node reachable again')
    t.ok(Date.now() - resumedAt < healsWithinMs, `healed ${Date.now() - resumedAt} ms after the node woke up`)
    // sends accepted before the registration expired ('lost' while still registered) arrive too: the node was alive
    t.equal((await onChild.next((frame) => isGot(frame) && frame.data === 'after')).data, 'after')
    await sleep(nodeTtl * 2)
    t.equal(await sendResult(local.app, onChild.sessionId, 'later'), 'ok')
  })
})
