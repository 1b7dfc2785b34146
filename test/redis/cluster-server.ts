/**
 * A Redis Cluster for the tests: the one CI started (REDIS_CLUSTER_URL, comma-separated seed
 * URLs), or a private one started with scripts/redis-cluster.sh on free ports (masters, and
 * replicas for the failover test), stopped at teardown.
 */
import { execFile } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import type { Test } from 'tap'
import { disconnect } from '../../plugin/broker/redis/client.js'
import { keySlot } from '../../plugin/broker/redis/slot.js'

const run = promisify(execFile)
const script = fileURLToPath(new URL('../../scripts/redis-cluster.sh', import.meta.url))

export interface Seed { host: string, port: number }

export function seedsOf (urls: string): Seed[] {
  return urls.split(',').filter((url) => url !== '').map((url) => {
    const { hostname, port } = new URL(url)
    return { host: hostname, port: Number(port) }
  })
}

/** A client on the cluster for the test itself (admin commands, or to pass to `redisBroker`). */
export function clusterClient (t: Test, seeds: Seed[], options: ClusterOptions = {}): Cluster {
  const cluster = new Cluster(seeds, { lazyConnect: true, ...options })
  cluster.on('error', () => {})
  // (the broker's own disconnect: it also stops a slot-map refresh under way, which would
  // otherwise go on for ever and keep the test file from exiting)
  t.teardown(() => { disconnect(cluster as unknown as Redis) })
  return cluster
}

export class PrivateCluster {
  private constructor (readonly dir: string, readonly urls: string) {}

  get seeds (): Seed[] {
    return seedsOf(this.urls)
  }

  static async start (t: Test, masters = 3, replicas = 0): Promise<PrivateCluster> {
    const dir = join(await mkdtemp(join(tmpdir(), 'channels-cluster-')), 'nodes')
    const { stdout } = await run(script, ['start', dir, String(masters), String(replicas)], { timeout: 60000 })
    const cluster = new PrivateCluster(dir, stdout.trim())
    t.teardown(() => cluster.stop())
    // the servers are daemons: if this process dies before its teardown, they must not outlive it
    const pids = readdirSync(dir).filter((name) => name.endsWith('.pid')).map((name) => Number(readFileSync(join(dir, name), 'utf8')))
    process.once('exit', () => {
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
    })
    return cluster
  }

  /**
   * A plain connection to the first seed, for CLUSTER commands and for the keys of its own
   * slots; it gives up at once when that node dies, and is closed at teardown.
   */
  seed (t: Test): Redis {
    const seed = new Redis(this.seeds[0].port, '127.0.0.1', { retryStrategy: () => null })
    seed.on('error', () => {})
    t.teardown(() => { seed.disconnect() })
    return seed
  }

  /** SIGKILL the server on `port` (by its pid file): a crashed or unplugged shard. */
  async kill (port: number): Promise<void> {
    process.kill(await this.pid(port), 'SIGKILL')
  }

  /** SIGSTOP / SIGCONT the server on `port`: a shard that hangs without closing its connections. */
  async pause (port: number): Promise<void> {
    process.kill(await this.pid(port), 'SIGSTOP')
  }

  async resume (port: number): Promise<void> {
    process.kill(await this.pid(port), 'SIGCONT')
  }

  private async pid (port: number): Promise<number> {
    return Number(await readFile(join(this.dir, `redis-${port}.pid`), 'utf8'))
  }

  async stop (): Promise<void> {
    await run(script, ['stop', this.dir], { timeout: 30000 }).catch(() => {})
  }
}

export interface Shard { port: number, ranges: Array<[number, number]> }

/** Each master (by its port) with the slot ranges it serves, as `node` sees the cluster. */
export async function shardsOf (node: Redis): Promise<Shard[]> {
  const slots = await node.cluster('SLOTS') as unknown as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>
  const owners = new Map<number, Array<[number, number]>>()
  for (const [from, to, [, port]] of slots) owners.set(port, [...owners.get(port) ?? [], [from, to]])
  return [...owners].map(([port, ranges]) => ({ port, ranges }))
}

export const serves = (shard: Shard, slot: number): boolean => shard.ranges.some(([from, to]) => slot >= from && slot <= to)

/**
 * A key `<base><n>` in a slot that `master` serves: for a command that must run on that
 * master's own connection (a BLPOP that holds it busy, say).
 */
export async function keyServedBy (master: Redis, base: string): Promise<string> {
  const [shard] = (await shardsOf(master)).filter(({ port }) => port === master.options.port)
  let i = 0
  while (!serves(shard, keySlot(`${base}${i}`))) i++
  return `${base}${i}`
}

/** Whether a redis-server binary can be run here (private clusters need one). */
export async function redisServerInstalled (): Promise<boolean> {
  try {
    await run('redis-server', ['--version'])
    return true
  } catch {
    return false
  }
}

/**
 * Runs `fn` when a `redis-server` binary is here to start private servers with (like `withRedis`
 * for the shared Redis): without one the tests named by `what` skip loudly, or fail under CI.
 */
export async function withRedisServer (t: Test, what: string, fn: () => Promise<void> | void): Promise<void> {
  if (await redisServerInstalled()) {
    await fn()
    return
  }
  const message = `no redis-server binary: ${what} did not run`
  if (process.env.CI === 'true') {
    t.fail(`${message} (CI=true makes this a failure)`)
    return
  }
  process.stderr.write(`\n*** SKIPPED: ${message} ***\n\n`)
  t.test(what, { skip: message }, () => {})
}
