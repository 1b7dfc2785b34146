/**
 * The Redis engine's recovery on one Redis (engine.ts), with a stand-in node and a tick too slow
 * to matter (nodeTtl 30 s): a connection made again starts the recovery at once, one recovery
 * runs at a time and starts over when another connection was made again meanwhile, and a
 * connection error while Redis is gone is reported against the outage. Complements
 * engine.test.ts.
 */
import t, { type Test } from 'tap'
import { Redis, type RedisOptions } from 'ioredis'
import type { EngineParts } from '../../../plugin/broker/parts.js'
import { clientOptions } from '../../../plugin/broker/redis/client.js'
import { RedisEngine } from '../../../plugin/broker/redis/engine.js'
import { classicPubSub } from '../../../plugin/broker/redis/pubsub.js'
import { PrivateRedis, deleteKeys, eventually, redisUrl, uniquePrefix, withRedis } from '../../redis/helpers.js'

import { StandInEngineNode, back, clientIds, sleep, stillUnreachable, unreachable } from './stand-in-node.js'

/** Cuts the connection called `name` from the server's side, and resolves once the client saw it closed. */
async function cut (server: Redis, client: Redis, name: string): Promise<void> {
  const closed = new Promise((resolve) => client.once('close', resolve))
  const ids = await clientIds(server, name)
  if (ids.length !== 1) throw new Error(`${ids.length} connections called ${name}`)
  await server.client('KILL', 'ID', ids[0])
  await closed
}

await withRedis(t, async () => {
  const admin = new Redis(redisUrl)
  t.teardown(() => admin.disconnect())

  async function openEngine (t: Test, url = redisUrl, options: RedisOptions = {}): Promise<{ node: StandInEngineNode, parts: EngineParts, prefix: string, pub: Redis, sub: Redis }> {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const node = new StandInEngineNode({ channels: 0, sessions: 0 })
    const pub = new Redis(url, { ...clientOptions(), connectionName: `${prefix}:pub`, ...options })
    const sub = new Redis(url, { ...clientOptions(), connectionName: `${prefix}:sub`, ...options })
    const parts = await RedisEngine.open(node, pub, sub, { prefix, nodeTtl: 30000, commandTimeout: 2000, pubsub: classicPubSub })
    t.teardown(() => parts.close())
    parts.start?.()
    return { node, parts, prefix, pub, sub }
  }

  t.test('a connection made again starts the recovery at once, not on the tick', async (t) => {
    const { node, prefix, pub } = await openEngine(t)
    await cut(admin, pub, `${prefix}:pub`)
    await eventually(() => node.named(back).length === 1, 3000, 'back long before the first tick')
    t.equal(node.restores, 1)
    const { hostname, port } = new URL(redisUrl)
    const address = `${hostname}:${port === '' ? '6379' : port}`
    t.same([node.named(unreachable)[0].shard, node.named(back)[0].shard], [address, address], 'the shard is the Redis, named by its address alone')
  })

  t.test('one recovery at a time; one that saw a connection made again during its run starts over', async (t) => {
    const { node, prefix, pub, sub } = await openEngine(t)
    let open: () => void = () => {}
    node.gate = new Promise((resolve) => { open = resolve })
    await cut(admin, pub, `${prefix}:pub`)
    await eventually(() => node.restores === 1, 3000, 'the recovery began')
    await cut(admin, sub, `${prefix}:sub`)
    await eventually(() => sub.status === 'ready', 3000, 'sub made again')
    await sleep(20)
    t.equal(node.restores, 1, 'no second recovery while the first runs')
    open()
    await eventually(() => node.named(back).length === 1, 3000, 'back, long before the first tick')
    t.equal(node.named(back)[0].restores, 2, 'only after a second restore')
    t.equal(node.mostAtOnce, 1, 'never two at once')
    t.equal(node.named(unreachable).length, 1, 'one outage')
  })

  t.test('while Redis is gone, the errors of the connection attempts count against the outage', async (t) => {
    const redis = await PrivateRedis.start(t)
    const { node } = await openEngine(t, redis.url, { retryStrategy: () => 50 })
    await redis.kill()
    await eventually(() => node.named(unreachable).length === 1, 3000, 'the outage begins')
    await eventually(() => node.named(stillUnreachable).some((line) => /ECONNREFUSED/.test(line.err?.message ?? '')), 3000, 'a refused connection reported')
    await redis.restart()
    await eventually(() => node.named(back).length === 1, 5000, 'back')
  })
})
