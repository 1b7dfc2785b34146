/**
 * The ioredis plumbing of the Redis engine, on the shared Redis and the shared cluster: loading
 * the peer (and telling a missing one from a broken one), the connection options, waiting for a
 * connection (a Redis, a cluster, each failing its own way), opening a cluster's masters, noticing
 * a lost cluster node, naming connections, reading a cluster's slot map, probing its masters (one
 * kept busy with a BLPOP nothing feeds stands for a hung master), a MULTI's failures, and QUIT.
 */
import { createServer, type Socket } from 'node:net'
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import {
  ShardProbe, addressOf, asCluster, clientOptions, clusterShards, connectMasters, disconnect, execAll, loadIoredis, onLostClusterNode, quit, ready, servedAgain, stopSlotRefreshes
} from '../../../plugin/broker/redis/client.js'
import type { Shard } from '../../../plugin/broker/redis/health.js'
import { MissingIoredisError } from '../../../plugin/errors.js'
import { keyServedBy, seedsOf, shardsOf } from '../../redis/cluster-server.js'
import { clusterUrls } from '../../redis/targets.js'
import { eventually, freePort, redisUrl, uniquePrefix, withRedis } from '../../redis/helpers.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const errorOf = async (promise: Promise<unknown>): Promise<unknown> => await promise.then(() => undefined, (err: unknown) => err)
/** Timers alive in this process: a helper that leaves its timer running keeps the process up */
const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length
const module = (source: string): string => `data:text/javascript,${encodeURIComponent(source)}`

t.test('loadIoredis: the Redis class, or MissingIoredisError only when the module is not there', async (t) => {
  const { Redis: Real } = await import('ioredis')
  t.equal(await loadIoredis(), Real, 'ioredis\' Redis')
  const missing = await errorOf(loadIoredis('ioredis-that-is-not-installed'))
  t.ok(missing instanceof MissingIoredisError)
  t.match(missing, { code: 'FST_CHANNELS_MISSING_IOREDIS' })
  t.match((missing as Error).cause, { message: /ioredis-that-is-not-installed/ }, 'with the loader\'s error as its cause')

  const named = module('export const Redis = function named () {}; export default function other () {}')
  t.equal((await loadIoredis(named)).name, 'named', 'the Redis export first')
  t.equal((await loadIoredis(module('export default function fallback () {}'))).name, 'fallback', 'else the default export')
  const none = module('export default 1')
  t.match(await errorOf(loadIoredis(none)), { message: `${none} has no Redis export` })
  t.notOk(await errorOf(loadIoredis(none)) instanceof MissingIoredisError)

  const esmCode = module('throw Object.assign(new Error("gone"), { code: "ERR_MODULE_NOT_FOUND" })')
  t.ok(await errorOf(loadIoredis(esmCode)) instanceof MissingIoredisError, 'ERR_MODULE_NOT_FOUND counts as missing')
  const cjsCode = module('throw Object.assign(new Error("gone"), { code: "MODULE_NOT_FOUND" })')
  t.ok(await errorOf(loadIoredis(cjsCode)) instanceof MissingIoredisError, 'MODULE_NOT_FOUND counts as missing')
  const noCode = module('throw new Error("Cannot find " + import.meta.url)')
  t.ok(await errorOf(loadIoredis(noCode)) instanceof MissingIoredisError, 'a "cannot find" message naming it, without a code, too')
  const other = module('throw new Error("Cannot find something else")')
  t.match(await errorOf(loadIoredis(other)), { message: 'Cannot find something else' }, 'not naming it: thrown as it is')
  t.notOk(await errorOf(loadIoredis(other)) instanceof MissingIoredisError)
  const coded = module('throw Object.assign(new Error("cannot find " + import.meta.url), { code: "EACCES" })')
  t.match(await errorOf(loadIoredis(coded)), { code: 'EACCES' }, 'with another code: thrown as it is')
  const broken = module('throw new TypeError("broken")')
  t.match(await errorOf(loadIoredis(broken)), { name: 'TypeError', message: 'broken' }, 'a module that fails: thrown as it is')
})

t.test('clientOptions: no offline queue, no resubscription, no replay, no retries, no timeouts of ioredis\' own', async (t) => {
  t.strictSame(clientOptions(), {
    enableOfflineQueue: false,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: undefined,
    socketTimeout: undefined,
    lazyConnect: false,
    keyPrefix: ''
  })
  t.not(clientOptions(), clientOptions(), 'a fresh object each time')
})

t.test('asCluster and addressOf', async (t) => {
  const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
  const redis = new Redis({ lazyConnect: true, host: '127.0.0.1', port: 6380 })
  t.equal(asCluster(cluster), cluster)
  t.equal(asCluster(redis), undefined)
  t.equal(asCluster(null), undefined)
  t.equal(asCluster(undefined), undefined)
  t.equal(asCluster({ isCluster: 'true' }), undefined, 'only isCluster === true')
  t.equal(addressOf(redis), '127.0.0.1:6380')
  t.equal(addressOf(new Redis({ lazyConnect: true, path: '/tmp/redis.sock' })), '/tmp/redis.sock')
  t.equal(addressOf({ options: {} } as unknown as Redis), '127.0.0.1:6379', 'the defaults')
  t.equal(addressOf({ options: { host: 'h' } } as unknown as Redis), 'h:6379')
  t.equal(addressOf({ options: { port: 7 } } as unknown as Redis), '127.0.0.1:7')
})

t.test('servedAgain: every slot of the shard\'s ranges served by answering masters', async (t) => {
  const shard = (address: string, ...ranges: Array<[number, number]>): Shard => ({ address, ranges })
  const a = shard('a', [0, 99])
  t.ok(servedAgain(a, [shard('a', [0, 99])], new Set(['a'])), 'by itself')
  t.notOk(servedAgain(a, [shard('a', [0, 99])], new Set()), 'not while it does not answer')
  t.ok(servedAgain(a, [shard('b', [0, 49]), shard('c', [50, 99])], new Set(['b', 'c'])), 'by two others, end to end')
  t.ok(servedAgain(a, [shard('c', [50, 120]), shard('b', [0, 60])], new Set(['b', 'c'])), 'overlapping, in any order')
  t.notOk(servedAgain(a, [shard('b', [0, 49]), shard('c', [50, 99])], new Set(['b'])), 'one of them silent')
  t.notOk(servedAgain(a, [shard('b', [0, 48]), shard('c', [50, 99])], new Set(['b', 'c'])), 'a one-slot gap')
  t.notOk(servedAgain(a, [shard('b', [1, 99])], new Set(['b'])), 'the first slot missing')
  t.notOk(servedAgain(a, [shard('b', [0, 98])], new Set(['b'])), 'the last slot missing')
  t.ok(servedAgain(a, [shard('b', [200, 300]), shard('c', [0, 99])], new Set(['b', 'c'])), 'unrelated ranges are ignored')
  t.ok(servedAgain(shard('a', [0, 9], [20, 29]), [shard('b', [0, 9]), shard('c', [20, 29])], new Set(['b', 'c'])), 'each range')
  t.notOk(servedAgain(shard('a', [0, 9], [20, 29]), [shard('b', [0, 9])], new Set(['b'])), 'each range, not only the first')
  t.ok(servedAgain(shard('a', [5, 9]), [shard('b', [0, 5]), shard('c', [6, 9])], new Set(['b', 'c'])), 'a piece ending at its first slot')
  t.ok(servedAgain(shard('a', [0, 9]), [shard('b', [0, 8]), shard('c', [9, 12])], new Set(['b', 'c'])), 'a piece starting at its last slot')
  t.ok(servedAgain(shard('a', [0, 9]), [shard('b', [0, 9]), shard('c', [2, 4])], new Set(['b', 'c'])), 'a piece inside another')
  t.ok(servedAgain(shard('a', [5, 5]), [shard('b', [0, 3]), shard('c', [4, 9])], new Set(['b', 'c'])), 'one slot')
  t.ok(servedAgain(shard('a'), [shard('a', [0, 9])], new Set(['a'])), 'no ranges: answering')
  t.ok(servedAgain(shard('a'), [shard('b', [0, 9])], new Set([])), 'no ranges: gone from the map')
  t.notOk(servedAgain(shard('a'), [shard('a', [0, 9])], new Set(['b'])), 'no ranges, in the map, silent')
  t.notOk(servedAgain(shard('a'), [shard('b', [10, 19]), shard('a', [0, 9])], new Set(['b'])), 'no ranges, in the map among others, silent')
})

t.test('clusterShards: each owner\'s ranges from the slot map', async (t) => {
  const slots: string[][] = []
  for (let slot = 0; slot < 100; slot++) slots[slot] = ['a:1']
  for (let slot = 200; slot < 16000; slot++) slots[slot] = ['b:2', 'replica:3']
  for (let slot = 16000; slot < 16384; slot++) slots[slot] = ['a:1']
  t.same(clusterShards({ slots } as unknown as Cluster), [
    { address: 'a:1', ranges: [[0, 99], [16000, 16383]] },
    { address: 'b:2', ranges: [[200, 15999]] }
  ])
  t.same(clusterShards({ slots: [] } as unknown as Cluster), [], 'no slot served')
  const last: string[][] = []
  last[16383] = ['z:1']
  last[0] = ['y:1']
  t.same(clusterShards({ slots: last } as unknown as Cluster), [{ address: 'y:1', ranges: [[0, 0]] }, { address: 'z:1', ranges: [[16383, 16383]] }])
})

await withRedis(t, async () => {
  const prefix = uniquePrefix()
  const admin = new Redis(redisUrl, { maxRetriesPerRequest: 0 })
  admin.on('error', () => {})
  t.teardown(async () => { await admin.del(`${prefix}:k`, `${prefix}:q`); admin.disconnect() })
  const listeners = (client: Redis): number[] => ['ready', 'error', 'end'].map((event) => client.listenerCount(event))

  t.test('ready on one Redis: when ready, or the first error, or the end', async (t) => {
    const client = new Redis(redisUrl, clientOptions())
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    const before = listeners(client)
    await ready(client)
    t.equal(client.status, 'ready')
    t.same(listeners(client), before, 'its listeners are gone')
    await ready(client)
    t.same(listeners(client), before, 'already ready: none added')

    const refused = new Redis(await freePort(), '127.0.0.1', { ...clientOptions(), retryStrategy: () => null })
    refused.on('error', () => {})
    t.teardown(() => refused.disconnect())
    const unready = listeners(refused)
    const err = await errorOf(ready(refused))
    t.match(err, { code: 'ECONNREFUSED' }, 'the first error')
    t.same(listeners(refused).slice(1), unready.slice(1), 'its listeners are gone')

    const closed = new Redis(redisUrl, { ...clientOptions(), lazyConnect: true })
    closed.on('error', () => {})
    const waiting = ready(closed)
    closed.disconnect()
    t.match(await errorOf(waiting), { message: 'connection closed' }, 'closed before ready')
  })

  t.test('execAll: the replies, a failed command, an aborted transaction', async (t) => {
    t.same(await execAll(admin.multi().set(`${prefix}:k`, '1').incr(`${prefix}:k`)), ['OK', 2])
    await admin.set(`${prefix}:k`, 'text')
    t.match(await errorOf(execAll(admin.multi().get(`${prefix}:k`).incr(`${prefix}:k`))), { message: /not an integer/ })
    const watcher = new Redis(redisUrl)
    t.teardown(() => watcher.disconnect())
    await watcher.watch(`${prefix}:k`)
    await admin.set(`${prefix}:k`, 'changed')
    t.match(await errorOf(execAll(watcher.multi().set(`${prefix}:k`, 'mine'))), { message: 'redis transaction aborted' })
  })

  t.test('quit: QUIT, or cut the connection when Redis does not answer within a second', async (t) => {
    const client = new Redis(redisUrl, clientOptions())
    await ready(client)
    const started = Date.now()
    const unquit = timers()
    await quit(client)
    t.ok(Date.now() - started < 500, 'at once when answered')
    await eventually(() => client.status === 'end', 2000, 'closed')
    await sleep(10)
    t.equal(timers(), unquit, 'the grace timer is cleared')
    const again = Date.now()
    await quit(client)
    t.ok(Date.now() - again < 200, 'a closed connection: at once')
    t.equal(client.status, 'end', 'a closed connection: nothing to do')

    const busy = new Redis(redisUrl, clientOptions())
    busy.on('error', () => {})
    await ready(busy)
    busy.blpop(`${prefix}:q`, 0).catch(() => {})
    const began = Date.now()
    await quit(busy)
    const took = Date.now() - began
    await eventually(() => busy.status === 'end', 2000, 'cut')
    t.ok(took >= 950 && took < 1600, `after the grace (${took} ms)`)
  })

  t.test('connectMasters and onLostClusterNode do nothing on one Redis', async (t) => {
    const client = new Redis(redisUrl, { ...clientOptions(), lazyConnect: true })
    await connectMasters(client, 0)
    t.equal(client.status, 'wait', 'not connected')
    onLostClusterNode(client, () => t.fail('not called'))
    t.equal(client.listenerCount('-node'), 0)
  })

  t.test('ready on a cluster: errors are passing, it fails after clusterMs', async (t) => {
    const unreachable = new Cluster([{ host: '127.0.0.1', port: await freePort() }], { enableOfflineQueue: false })
    unreachable.on('error', () => {})
    t.teardown(() => unreachable.disconnect())
    const started = Date.now()
    const err = await errorOf(ready(unreachable as unknown as Redis, 400)) as Error
    t.ok(Date.now() - started >= 390, 'not at its first error')
    t.match(err.message, /^not ready within 400 ms: ./, 'with its last error')
    t.ok(err.cause instanceof Error)
    t.equal(err.message, `not ready within 400 ms: ${(err.cause as Error).message}`)

    const ending = new Cluster([{ host: '127.0.0.1', port: await freePort() }], { enableOfflineQueue: false, clusterRetryStrategy: () => null })
    ending.on('error', () => {})
    t.teardown(() => ending.disconnect())
    const ended = await errorOf(ready(ending as unknown as Redis, 5000)) as Error
    t.not(ended.message, 'connection closed', 'the end rejects with the last error')
    t.notMatch(ended.message, /not ready within/)

    const silent: Socket[] = []
    const server = createServer((socket) => { silent.push(socket); socket.on('error', () => {}) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { for (const socket of silent) socket.destroy(); server.close() })
    const mute = new Cluster([{ host: '127.0.0.1', port: (server.address() as { port: number }).port }], { enableOfflineQueue: false, slotsRefreshTimeout: 5000 })
    mute.on('error', () => {})
    t.teardown(() => mute.disconnect())
    const muted = await errorOf(ready(mute as unknown as Redis, 300)) as Error
    t.equal(muted.message, 'not ready within 300 ms', 'no error yet: none named')

    const single = new Redis((server.address() as { port: number }).port, '127.0.0.1', clientOptions())
    single.on('error', () => {})
    t.teardown(() => single.disconnect())
    let settled = false
    ready(single, 100).then(() => { settled = true }, () => { settled = true })
    await sleep(400)
    t.equal(settled, false, 'one Redis gets no time limit: it waits for ready, an error or the end')
  })

  t.test('connectMasters: opens a master not yet connected, fails on one that does not answer in time', async (t) => {
    const silent: Socket[] = []
    const server = createServer((socket) => { silent.push(socket); socket.on('error', () => {}) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { for (const socket of silent) socket.destroy(); server.close() })
    // a cluster whose pool holds these connections (only its master list is read)
    const withMasters = (...nodes: Redis[]): Redis => ({ isCluster: true, nodes: () => nodes }) as unknown as Redis
    const lazy = new Redis(redisUrl, { ...clientOptions(), lazyConnect: true })
    lazy.on('error', () => {})
    t.teardown(() => lazy.disconnect())
    t.equal(lazy.status, 'wait')
    const before = timers()
    await connectMasters(withMasters(lazy), 5000)
    t.equal(lazy.status, 'ready', 'connected')
    t.equal(timers(), before, 'its timer is cleared')
    const port = (server.address() as { port: number }).port
    const mute = new Redis(port, '127.0.0.1', { ...clientOptions(), lazyConnect: true })
    mute.on('error', () => {})
    t.teardown(() => mute.disconnect())
    const started = Date.now()
    const late = await errorOf(connectMasters(withMasters(lazy, mute), 200)) as Error
    t.equal(late?.message, `cluster node 127.0.0.1:${port} not ready within 200 ms`)
    t.ok(Date.now() - started >= 190, 'after the timeout')
    t.equal(silent.length, 1, 'it was connected to')

    const unopened = new Redis(redisUrl, { ...clientOptions(), lazyConnect: true })
    unopened.on('error', () => {})
    t.teardown(() => unopened.disconnect())
    const probe = new ShardProbe({ slots: [[addressOf(unopened)]], nodes: () => [unopened] } as unknown as Cluster, 2000)
    const unprobed = timers()
    t.same([...(await probe.run()).answering], [addressOf(unopened)], 'a probed master not yet connected is connected first')
    t.equal(timers(), unprobed, 'the probe\'s timer is cleared')
    const refused = new Redis(await freePort(), '127.0.0.1', { ...clientOptions(), lazyConnect: true, retryStrategy: () => null })
    refused.on('error', () => {})
    t.teardown(() => refused.disconnect())
    const gone = new ShardProbe({ slots: [[addressOf(refused)]], nodes: () => [refused] } as unknown as Cluster, 2000)
    t.same([...(await gone.run()).answering], [], 'a master that cannot be reached does not answer')
  })

  // in a subtest of its own: the top level would end while a private cluster starts, and
  // subtests created after that never run
  t.test('on a Redis Cluster', async (t) => {
    const urls = await clusterUrls(t)
    if (urls === undefined) {
      if (process.env.CI === 'true') t.fail('no cluster (CI=true makes this a failure)')
      return
    }

    t.test('on the cluster: ready, connectMasters, clusterShards, onLostClusterNode', async (t) => {
      const cluster = new Cluster(seedsOf(urls), { enableOfflineQueue: false, redisOptions: clientOptions() })
      cluster.on('error', () => {})
      t.teardown(() => cluster.disconnect())
      const client = cluster as unknown as Redis
      const before = listeners(client)
      await ready(client)
      t.equal(cluster.status, 'ready')
      t.same(listeners(client), before)
      const masters = cluster.nodes('master')
      t.equal(masters.length, 3)
      await connectMasters(client, 5000)
      t.same(cluster.nodes('master').map((node) => node.status), ['ready', 'ready', 'ready'], 'every master connected')

      const slots = await shardsOf(masters[0])
      t.same(clusterShards(cluster).map(({ address, ranges }) => ({ address, ranges })).sort((a, b) => a.address.localeCompare(b.address)),
        slots.map(({ port, ranges }) => ({ address: `127.0.0.1:${port}`, ranges })).sort((a, b) => a.address.localeCompare(b.address)))

      const lost: string[] = []
      onLostClusterNode(client, (key) => lost.push(key))
      const [answered] = cluster.nodes('master')
      cluster.emit('-node', answered, '127.0.0.1:1')
      cluster.emit('-node', answered, undefined)
      cluster.emit('-node', new Redis({ lazyConnect: true, port: 2 }), '127.0.0.1:2')
      cluster.emit('-node', null, '127.0.0.1:3')
      t.same(lost, ['127.0.0.1:1', addressOf(answered)], 'only connections Redis had answered on, by their key or address')
    })

    t.test('ShardProbe: the shards, and which masters answer; a silent one is asked once', async (t) => {
      const cluster = new Cluster(seedsOf(urls), { enableOfflineQueue: false, redisOptions: clientOptions() })
      cluster.on('error', () => {})
      t.teardown(() => cluster.disconnect())
      await ready(cluster as unknown as Redis)
      const probe = new ShardProbe(cluster, 300)
      const first = await probe.run()
      const addresses = first.shards.map(({ address }) => address).sort()
      t.equal(addresses.length, 3)
      t.same(first.shards, clusterShards(cluster))
      t.same([...first.answering].sort(), addresses, 'every master answers (each connected first)')

      const [busy] = cluster.nodes('master')
      const address = addressOf(busy)
      const queue = await keyServedBy(busy, `${prefix}:q`)
      const feeder = new Cluster(seedsOf(urls))
      feeder.on('error', () => {})
      t.teardown(async () => { await feeder.del(queue); feeder.disconnect() })
      const blocked = busy.blpop(queue, 0)
      let started = Date.now()
      const second = await probe.run()
      t.ok(Date.now() - started >= 290, 'the silent master got the timeout')
      t.same([...second.answering].sort(), addresses.filter((other) => other !== address), 'all but the busy one')
      started = Date.now()
      const third = await probe.run()
      t.ok(Date.now() - started < 250, 'not asked again while its PING waits')
      t.same([...third.answering].sort(), addresses.filter((other) => other !== address))
      await feeder.lpush(queue, 'fed')
      t.same(await blocked, [queue, 'fed'])
      await sleep(20)
      t.same([...(await probe.run()).answering].sort(), addresses, 'asked again once it answered')

      const bare = new ShardProbe({ slots: [['127.0.0.1:1']], nodes: () => [] } as unknown as Cluster, 300)
      started = Date.now()
      t.same([...(await bare.run()).answering], [], 'a shard without a connection does not answer')
      t.ok(Date.now() - started < 250, 'at once')
    })

    t.test('ShardProbe: a PONG that came while this process was frozen past the timeout wins', async (t) => {
      const cluster = new Cluster(seedsOf(urls), { enableOfflineQueue: false, redisOptions: clientOptions() })
      cluster.on('error', () => {})
      t.teardown(() => cluster.disconnect())
      await ready(cluster as unknown as Redis)
      await connectMasters(cluster as unknown as Redis, 5000)
      const probe = new ShardProbe(cluster, 100)
      for (let round = 0; round < 3; round++) {
        const run = probe.run()
        // the PINGs are written once the microtasks ran; then the process freezes past the timeout
        // before it reads the PONGs (the timer and the answers are both due when it wakes)
        setImmediate(() => {
          const until = performance.now() + 300
          while (performance.now() < until);
        })
        const { shards, answering } = await run
        t.equal(answering.size, shards.length, `round ${round}: every master answered`)
      }
    })

    // ioredis schedules the next periodic slot refresh when one ends, even on a client closed
    // meanwhile, and then refreshes for ever: the process never exits
    t.test('quit and disconnect on a cluster closed while its slot refresh is under way: it refreshes no more', async (t) => {
      // the third: stopped only once the refresh under way has ended and the next round waits
      for (const close of ['quit', 'disconnect', 'stopped later'] as const) {
        const cluster = new Cluster(seedsOf(urls), { enableOfflineQueue: false, slotsRefreshInterval: 20, redisOptions: clientOptions() })
        cluster.on('error', () => {})
        t.teardown(() => cluster.disconnect())
        await ready(cluster as unknown as Redis)
        let refreshes = 0
        const refresh = cluster.refreshSlotsCache.bind(cluster)
        cluster.refreshSlotsCache = (callback) => {
          refreshes++
          refresh(callback)
        }
        const internals = cluster as unknown as { isRefreshing: boolean }
        const deadline = Date.now() + 5000
        while (!internals.isRefreshing && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
        t.ok(internals.isRefreshing, `${close}: a periodic refresh is under way`)
        if (close === 'quit') {
          await quit(cluster as unknown as Redis)
        } else if (close === 'disconnect') {
          disconnect(cluster as unknown as Redis)
        } else {
          cluster.disconnect()
          while (internals.isRefreshing) await new Promise((resolve) => setImmediate(resolve))
          await sleep(50)
          t.ok(refreshes > 0, 'the bug: it refreshes on after disconnect()')
          stopSlotRefreshes(cluster)
        }
        await sleep(100)
        refreshes = 0
        await sleep(300)
        t.equal(refreshes, 0, `${close}: no refresh in 300 ms (one every 20 ms before)`)
      }
      const plain = { refreshSlotsCache: () => t.fail('not called on a client without the timer') } as unknown as Cluster
      stopSlotRefreshes(plain)
    })
  })
})
