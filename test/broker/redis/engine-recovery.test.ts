/**
 * The Redis engine's recovery on one Redis (engine.ts), with a stand-in node and a tick too slow
 * to matter (nodeTtl 30 s): a connection made again starts the recovery at once, one recovery
 * runs at a time and starts over when another connection was made again meanwhile, and a
 * connection error while Redis is gone is reported against the outage. Complements
 * engine.test.ts.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Redis, type RedisOptions } from 'ioredis'
import type { EngineNode, EngineParts } from '../../../plugin/broker/parts.js'
import { clientOptions } from '../../../plugin/broker/redis/client.js'
import { RedisEngine } from '../../../plugin/broker/redis/engine.js'
import { classicPubSub } from '../../../plugin/broker/redis/pubsub.js'
import { PrivateRedis, deleteKeys, eventually, redisUrl, uniquePrefix, withRedis } from '../../redis/helpers.js'

interface Line { level: number, msg: string, time: number, restores: number, shard?: string, err?: { message?: string } }

/** A node as the engine sees it: its log lines, each restore, and how many ran at once. */
class StandInEngineNode implements EngineNode {
  readonly nodeId = randomBytes(6).toString('hex')
  readonly lines: Line[] = []
  restores = 0
  running = 0
  mostAtOnce = 0
  /** when set, the next restore waits for it */
  gate: Promise<void> | undefined
  readonly log = Fastify({
    logger: { level: 'debug', stream: { write: (line: string) => { this.lines.push({ ...JSON.parse(line) as Line, restores: this.restores }) } } }
  }).log

  receive (): void {}

  async restore (): Promise<{ channels: number, sessions: number }> {
    this.restores++
    this.running++
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running)
    try {
      const gate = this.gate
      this.gate = undefined
      if (gate !== undefined) await gate
      return { channels: 0, sessions: 0 }
    } finally {
      this.running--
    }
  }

  named (msg: RegExp): Line[] {
    return this.lines.filter((line) => msg.test(line.msg))
  }
}

const unreachable = /redis unreachable/
const back = /redis is back/
const stillUnreachable = /still unreachable/

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Cuts the connection called `name` from the server's side, and resolves once the client saw it closed. */
async function cut (server: Redis, client: Redis, name: string): Promise<void> {
  const closed = new Promise((resolve) => client.once('close', resolve))
  const list = await server.client('LIST') as string
  const ids = list.split('\n').filter((line) => line.includes(` name=${name} `)).map((line) => /^id=(\d+)/.exec(line)?.[1] ?? '')
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
    const node = new StandInEngineNode()
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
