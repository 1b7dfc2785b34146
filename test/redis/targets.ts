/**
 * The Redis setups every cross-node suite runs against: one Redis (REDIS_URL) and a Redis
 * Cluster (REDIS_CLUSTER_URL, or a private 3-master cluster of the test file's own). A target
 * gives the broker options of a node, the environment of a child-process node, and cleanup.
 */
import type { Cluster } from 'ioredis'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import type { RedisBrokerOptions } from '../../plugin/index.js'
import { PrivateCluster, clusterClient, redisServerInstalled, seedsOf } from './cluster-server.js'
import { deleteKeys, redisReachable, redisUrl } from './helpers.js'

export interface Target {
  name: 'redis' | 'cluster'
  /** options for `redisBroker` (the prefix added by the caller) */
  broker: RedisBrokerOptions
  /** environment of a child-process node (test/redis/fixtures/node.ts) */
  env: Record<string, string>
  /** a client for commands on a key (routed to its shard on a cluster) */
  admin: Redis | Cluster
  /** every master: one Redis, or each shard's master */
  masters: () => Promise<Redis[]>
  /** KEYS `pattern` on every master */
  keys: (pattern: string) => Promise<string[]>
  deleteKeys: (prefix: string) => Promise<void>
}

function redisTarget (t: Test): Target {
  const admin = new Redis(redisUrl, { lazyConnect: true })
  t.teardown(() => { admin.disconnect() })
  return {
    name: 'redis',
    broker: { url: redisUrl },
    env: { REDIS_URL: redisUrl },
    admin,
    masters: async () => [admin],
    keys: async (pattern) => await admin.keys(pattern),
    deleteKeys: async (prefix) => await deleteKeys(prefix)
  }
}

/** Masters of `cluster`, once it is connected (its pool knows each shard's master). */
export async function mastersOf (cluster: Cluster): Promise<Redis[]> {
  if (cluster.status === 'wait') await cluster.connect()
  return cluster.nodes('master')
}

/** A target on the cluster at `urls`: nodes get a `Cluster` client to duplicate. */
export function clusterTarget (t: Test, urls: string): Target {
  const seeds = seedsOf(urls)
  const forNodes = clusterClient(t, seeds)
  const admin = clusterClient(t, seeds)
  return {
    name: 'cluster',
    broker: { redis: forNodes },
    env: { REDIS_CLUSTER_URL: urls },
    admin,
    masters: async () => await mastersOf(admin),
    keys: async (pattern) => (await Promise.all((await mastersOf(admin)).map(async (master) => await master.keys(pattern)))).flat(),
    async deleteKeys (prefix) {
      for (const master of await mastersOf(admin).catch(() => [])) {
        const keys = [...await master.keys(`${prefix}:*`), ...await master.keys(`{${prefix}}:*`)]
        for (const key of keys) await master.del(key) // one by one: the keys lie in many slots
      }
    }
  }
}

/** The cluster the suites run on: CI's, else a private one (undefined when none can run here). */
export async function clusterUrls (t: Test): Promise<string | undefined> {
  const urls = process.env.REDIS_CLUSTER_URL
  if (urls !== undefined && urls !== '') return urls
  if (!await redisServerInstalled()) return undefined
  return (await PrivateCluster.start(t)).urls
}

function unavailable (t: Test, name: string, message: string): void {
  if (process.env.CI === 'true') {
    t.fail(`${message} (CI=true makes this a failure)`)
    return
  }
  process.stderr.write(`\n*** SKIPPED: ${message} ***\n\n`)
  t.test(name, { skip: message }, () => {})
}

const noCluster = 'no REDIS_CLUSTER_URL and no redis-server to start one: the suite did not run on a cluster'

/** Runs `suite` on the cluster target only (skipped loudly, or failed under CI, without one). */
export async function withCluster (t: Test, suite: (target: Target) => Promise<void> | void): Promise<void> {
  const urls = await clusterUrls(t)
  if (urls === undefined) unavailable(t, 'the Redis Cluster suite', noCluster)
  else await suite(clusterTarget(t, urls))
}

/**
 * Runs `suite` once per target, as a subtest named after it. A target that cannot run here is
 * skipped with a loud message, or fails when CI=true: CI must never pass a suite that did not run.
 */
export async function forEachTarget (t: Test, suite: (t: Test, target: Target) => Promise<void> | void): Promise<void> {
  if (await redisReachable()) {
    await t.test('on one Redis', async (t) => await suite(t, redisTarget(t)))
  } else {
    unavailable(t, 'on one Redis', `Redis is not reachable at ${redisUrl}: the suite did not run on one Redis`)
  }
  await t.test('on a Redis Cluster', async (t) => {
    const urls = await clusterUrls(t)
    if (urls === undefined) unavailable(t, 'on a Redis Cluster', noCluster)
    else await suite(t, clusterTarget(t, urls))
  })
}
