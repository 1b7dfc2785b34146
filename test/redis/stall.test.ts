/**
 * Stalls longer than `nodeTtl`: Redis frozen (SIGSTOP) and a node process frozen (a long GC
 * pause, a stopped VM). Meanwhile the node's registration expires; once the stall is over, the
 * sessions still open on that node must be reachable again within seconds, by themselves. A
 * frozen node's connection to Redis stays open: sends to its sessions are taken (and delivered
 * when it thaws), never refused with NO_SOCKET while it has not registered again.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { ChildNode, PrivateRedis, eventually, redisUrl, startNode, uniquePrefix, deleteKeys, withRedis } from './helpers.js'
import type { RedisBrokerOptions } from '../../plugin/index.js'
import { PrivateCluster, clusterClient, withRedisServer } from './cluster-server.js'
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

async function frozenNode (t: Test, cluster?: { urls: string, client: RedisBrokerOptions['redis'] }): Promise<void> {
  const prefix = uniquePrefix()
  if (cluster === undefined) t.teardown(() => deleteKeys(prefix))
  const child = await ChildNode.start(t, { PREFIX: prefix, NODE_TTL: String(nodeTtl), COMMAND_TIMEOUT: String(commandTimeout), REDIS_URL: redisUrl, ...cluster === undefined ? {} : { REDIS_CLUSTER_URL: cluster.urls } })
  const local = await startNode(t, { prefix, nodeTtl, commandTimeout, ...cluster === undefined ? {} : { redis: cluster.client } }, socketMethods)
  const onChild = await connect(t, { url: child.url } as never)
  await eventually(async () => await sendResult(local.app, onChild.sessionId, 'before') === 'ok', healsWithinMs, 'the session registered')
  t.equal((await onChild.next(isGot)).data, 'before')

  child.pause()
  t.teardown(() => child.resume())
  // the frozen node's registration expires meanwhile; sends to its session, as in production
  const during: string[] = []
  const frozenUntil = Date.now() + stallMs
  for (let i = 0; Date.now() < frozenUntil; i++) {
    during.push(await sendResult(local.app, onChild.sessionId, `during-${i}`))
    await sleep(100)
  }
  child.resume()
  // and right after it, before the thawed node has written its registration again
  const after = await Promise.all(Array.from({ length: 20 }, async (_, i) => await sendResult(local.app, onChild.sessionId, `after-${i}`)))
  t.same([...new Set(during)], ['ok'], `the ${during.length} sends while the node was frozen were taken (its connection stayed open)`)
  t.same([...new Set(after)], ['ok'], 'none right after it got NO_SOCKET')
  // all of them arrive once the node runs again
  const got = (): unknown[] => onChild.frames.filter(isGot).map((frame) => frame.data)
  await eventually(() => got().filter((data) => String(data).startsWith('after-')).length === 20, healsWithinMs, 'the sends arrive')
  t.same(got().filter((data) => String(data).startsWith('during-')), during.map((_, i) => `during-${i}`), 'the sends made during the freeze, in order')
  await eventually(async () => await sendResult(local.app, onChild.sessionId, 'registered') === 'ok', healsWithinMs, 'still reachable')
  await sleep(nodeTtl * 2)
  t.equal(await sendResult(local.app, onChild.sessionId, 'later'), 'ok')
}

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

  t.test('a node process frozen longer than nodeTtl: its sessions are reachable again by themselves', async (t) => { await frozenNode(t) })
})

await withRedisServer(t, 'the frozen-node test on a Redis Cluster', async () => {
  t.test('on a Redis Cluster: a node process frozen longer than nodeTtl', async (t) => {
    const cluster = await PrivateCluster.start(t, 3, 0)
    await frozenNode(t, { urls: cluster.urls, client: clusterClient(t, cluster.seeds) })
  })
})
