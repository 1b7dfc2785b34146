/**
 * The ioredis plumbing of the Redis engine: loading the optional peer, the options every
 * connection of ours runs with, waiting for a connection, running a MULTI, closing one.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { MissingIoredisError } from '../../errors.js'
import type { Shard } from './health.js'
import { slotCount } from './slot.js'

export type RedisConstructor = new (url: string, options: RedisOptions) => Redis

/** Loads ioredis on first use (`specifier` is there for tests of the missing-peer error). */
export async function loadIoredis (specifier = 'ioredis'): Promise<RedisConstructor> {
  try {
    const mod = await import(specifier) as { Redis?: RedisConstructor, default?: RedisConstructor }
    const Redis = mod.Redis ?? mod.default
    if (typeof Redis !== 'function') throw new Error(`${specifier} has no Redis export`)
    return Redis
  } catch (err) {
    // Node says ERR_MODULE_NOT_FOUND; some loaders (ts-node's) throw the same message without a code.
    const { code, message } = err as { code?: string, message?: string }
    const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' ||
      (code === undefined && /cannot find/i.test(message ?? '') && (message ?? '').includes(specifier))
    if (notFound) throw new MissingIoredisError({ cause: err })
    throw err
  }
}

/**
 * Our connections never queue while offline (calls reject at once), never replay a command
 * after a reconnect (a publish the caller saw fail must not arrive late), and resubscribe
 * themselves from the node's own record (see RedisEngine). No ioredis `commandTimeout`:
 * it would leave a timed-out command queued; `Link` times calls out and resets the connection.
 */
export function clientOptions (): RedisOptions {
  return {
    enableOfflineQueue: false,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    // a client passed in to duplicate may carry these; ours must not time out behind Link's back
    commandTimeout: undefined,
    socketTimeout: undefined,
    lazyConnect: false,
    keyPrefix: ''
  }
}

/** The client as a `Cluster` when it is one (the broker types both as `Redis`: same commands). */
export function asCluster (client: unknown): Cluster | undefined {
  return (client as { isCluster?: unknown } | null)?.isCluster === true ? client as Cluster : undefined
}

/**
 * Resolves once `client` is ready; rejects on its first error (startup fails fast). A cluster
 * client with sharded subscribers reports passing errors, and may even close and reconnect
 * once, while it learns the topology (ioredis 5 replaces the subscribers it started before the
 * slots came in): it gets `clusterMs` to become ready, and fails with its last error after that.
 */
export function ready (client: Redis, clusterMs = 2000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  const cluster = asCluster(client) !== undefined
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined
    const settle = (err?: Error): void => {
      clearTimeout(timer)
      client.off('ready', onReady).off('error', onError).off('end', onEnd)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onReady = (): void => settle()
    const onError = (err: Error): void => {
      lastError = err
      if (!cluster) settle(err)
    }
    const onEnd = (): void => settle(lastError ?? new Error('connection closed'))
    const timer = cluster
      ? setTimeout(() => settle(new Error(`not ready within ${clusterMs} ms${lastError === undefined ? '' : `: ${lastError.message}`}`, { cause: lastError })), clusterMs)
      : undefined
    client.on('ready', onReady).on('error', onError).on('end', onEnd)
  })
}

/**
 * Opens a cluster client's connection to every master now rather than at its first command.
 * ioredis opens them lazily, and without an offline queue a command for a connection still
 * opening is rejected and sent again about 100 ms later (its failover retry), behind the
 * commands that followed it: the first publications on a shard after a start or a failover
 * would arrive out of order. A master that does not become ready in `timeoutMs` rejects.
 */
export async function connectMasters (client: Redis, timeoutMs: number): Promise<void> {
  const cluster = asCluster(client)
  if (cluster === undefined) return
  await Promise.all(cluster.nodes('master').map(async (node) => {
    if (node.status === 'wait') node.connect().catch(() => {}) // its failure also reaches ready()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`cluster node ${node.options.host ?? ''}:${node.options.port ?? ''} not ready within ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      await Promise.race([ready(node), late])
    } finally {
      clearTimeout(timer)
    }
  }))
}

/**
 * Calls `onLost` when a cluster client drops a connection (a shard's, or a shard's sharded
 * subscriber) that Redis had answered on. ioredis also drops connections that never got an
 * answer: to a dead master, one per slot refresh until the failover is over (and sometimes
 * one more just after it, from a node that had not yet learned of it), or to a replica it
 * knew of but never used. Nothing lived on those (a command sent on one fails on its own
 * path), and counting them would start a second outage right after the first ended.
 * No-op on one Redis.
 */
export function onLostClusterNode (client: Redis, onLost: (key: string) => void): void {
  if (asCluster(client) === undefined) return
  client.on('-node', (node: Redis | null, key: string | undefined) => {
    const answered = (node?.stream?.bytesRead ?? 0) > 0
    if (answered) onLost(key ?? `${node?.options.host ?? ''}:${node?.options.port ?? ''}`)
  })
}

/** The address of a connection (or of a cluster's node) as the logs and slot maps name it. */
export function addressOf (client: Redis): string {
  const { host, port, path } = client.options
  return path ?? `${host ?? '127.0.0.1'}:${port ?? 6379}`
}

/** The masters of a cluster client's slot map, each with the slot ranges it serves. */
export function clusterShards (cluster: Cluster): Shard[] {
  const ranges = new Map<string, Array<[number, number]>>()
  let from = 0
  for (let slot = 1; slot <= slotCount; slot++) {
    const owner = cluster.slots[from]?.[0]
    if (slot < slotCount && cluster.slots[slot]?.[0] === owner) continue
    if (owner !== undefined) ranges.set(owner, [...ranges.get(owner) ?? [], [from, slot - 1]])
    from = slot
  }
  return [...ranges].map(([address, ranges]) => ({ address, ranges }))
}

/**
 * Asks each master of a cluster whether it answers (a PING on the client's own connection to
 * it, given up after `timeoutMs`). A master asked before and still silent is not asked again:
 * what waits on a hung master stays one PING.
 */
export class ShardProbe {
  private readonly asking = new Set<string>()

  constructor (private readonly cluster: Cluster, private readonly timeoutMs: number) {}

  /** The shards of the slot map now, and the addresses of those that answered. */
  async run (): Promise<{ shards: Shard[], answering: Set<string> }> {
    const shards = clusterShards(this.cluster)
    const connections = new Map(this.cluster.nodes('master').map((node) => [addressOf(node), node]))
    const answering = new Set<string>()
    await Promise.all(shards.map(async ({ address }) => {
      if (await this.answers(connections.get(address), address)) answering.add(address)
    }))
    return { shards, answering }
  }

  /** A master still connecting (one just promoted, say) gets the timeout to become ready first. */
  private async answers (node: Redis | undefined, address: string): Promise<boolean> {
    if (node === undefined || this.asking.has(address)) return false
    this.asking.add(address)
    if (node.status === 'wait') node.connect().catch(() => {})
    const pong = ready(node).then(async () => await node.ping()).then(() => true, () => false).finally(() => this.asking.delete(address))
    let timer: NodeJS.Timeout | undefined
    // decided after the poll phase, not in the timer: when this process itself was frozen past
    // the timeout (a long GC pause, a starved CPU), a PONG that came in meanwhile is read first and wins
    const late = new Promise<boolean>((resolve) => { timer = setTimeout(() => setImmediate(resolve, false), this.timeoutMs) })
    try {
      return await Promise.race([pong, late])
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Whether every slot of `shard`'s ranges is served, in `shards`, by a master in `answering`. */
export function servedAgain (shard: Shard, shards: Shard[], answering: Set<string>): boolean {
  if (shard.ranges.length === 0) return answering.has(shard.address) || !shards.some((other) => other.address === shard.address)
  return shard.ranges.every(([from, to]) => {
    let covered = from
    // the answering masters' ranges, in order, must cover [from, to] without a gap
    const pieces = shards.filter((other) => answering.has(other.address)).flatMap((other) => other.ranges)
      .filter(([a, b]) => b >= from && a <= to).sort(([a], [b]) => a - b)
    for (const [a, b] of pieces) {
      if (a > covered) return false
      covered = Math.max(covered, b + 1)
    }
    return covered > to
  })
}

type Multi = ReturnType<Redis['multi']>

/** Runs a MULTI; a command that failed inside it rejects like a failed MULTI would. Resolves with the replies. */
export async function execAll (multi: Multi): Promise<unknown[]> {
  const results = await multi.exec()
  if (results === null) throw new Error('redis transaction aborted')
  for (const [err] of results) if (err !== null) throw err
  return results.map(([, reply]) => reply)
}

/** How long `close()` waits for QUIT before cutting the connections off. */
const quitGraceMs = 1000

/** QUIT, and if Redis does not answer within the grace, cut the connection. */
export async function quit (client: Redis): Promise<void> {
  if (client.status !== 'end') {
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, quitGraceMs) })
    await Promise.race([client.quit().then(() => {}, () => {}), grace])
    clearTimeout(timer)
  }
  disconnect(client)
}

/** Cuts the connection at once (a cluster client: every connection, and its slot-map refresh). */
export function disconnect (client: Redis): void {
  if (client.status !== 'end') client.disconnect()
  const cluster = asCluster(client)
  if (cluster !== undefined) stopSlotRefreshes(cluster)
}

/**
 * Makes sure a closed cluster client stops refreshing its slot map. ioredis (5.11) schedules
 * the next periodic refresh (`slotsRefreshInterval`) whenever one ends, even when the client
 * was closed while that refresh was under way: from then on it refreshes for ever, with no
 * connection left but a timer that keeps the process alive, so it never exits after
 * `fastify.close()`. A failover makes refreshes slow, so a node closed during one is likely to
 * hit this. Here the next round's timer is cleared now, and again right after a refresh still
 * under way has ended (a callback queued behind it runs after the one that sets the timer).
 */
export function stopSlotRefreshes (cluster: Cluster): void {
  // both are private in ioredis' types; a client without them has no such timer
  const internals = cluster as unknown as { clearNodesRefreshInterval?: () => void, isRefreshing?: boolean }
  const clear = internals.clearNodesRefreshInterval
  if (typeof clear !== 'function') return
  clear.call(cluster)
  if (internals.isRefreshing === true) cluster.refreshSlotsCache(() => clear.call(cluster))
}
