/**
 * The Redis transport and its publisher, on the shared Redis and the shared cluster, driven
 * directly (no node). Publications in batches: a burst in one turn arrives complete and in order
 * across several batches cut by count and by bytes, a send never overtakes what was published
 * before it, a batch that reaches Redis after its deadline publishes nothing and fails each of its
 * publications once (however many slots it spanned), a publication that cannot be sent fails and
 * counts as dropped. Subscriptions: each topic's channel (SUBSCRIBE on one Redis, in chunks;
 * SSUBSCRIBE per slot on a cluster), then gone after unsubscribing; a failed one fails at once,
 * except the first on a cluster, retried until `startMs`. PING on one Redis or every master.
 * The link is the real one, recording the payload bytes of each call it makes.
 */
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import { clientOptions, connectMasters, ready } from '../../../plugin/broker/redis/client.js'
import { RedisClock, type RedisTime } from '../../../plugin/broker/redis/clock.js'
import { RedisKeys } from '../../../plugin/broker/redis/keys.js'
import { Link } from '../../../plugin/broker/redis/link.js'
import { LateError, Publisher, RedisTransport, type RedisTransportSettings } from '../../../plugin/broker/redis/transport.js'
import { classicPubSub, shardedPubSub } from '../../../plugin/broker/redis/pubsub.js'
import { defineScripts } from '../../../plugin/broker/redis/scripts.js'
import { keySlot } from '../../../plugin/broker/redis/slot.js'
import type { Topic } from '../../../plugin/broker/parts.js'
import { keyServedBy, seedsOf } from '../../redis/cluster-server.js'
import { clusterUrls } from '../../redis/targets.js'
import { eventually, redisUrl, uniquePrefix, withRedis } from '../../redis/helpers.js'
import { within } from '../../helpers/deadline.js'

/** The real link, noting the payload bytes of each call it is asked to make. */
class RecordingLink extends Link {
  readonly sent: number[] = []

  override async run<T> (command: (client: Redis) => Promise<T>, bytes = 0): Promise<T> {
    this.sent.push(bytes)
    return await super.run(command, bytes)
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const errorOf = async (promise: Promise<unknown>): Promise<unknown> => await promise.then(() => undefined, (err: unknown) => err)
const channel = (name: string): Topic => ({ kind: 'channel', channel: name })

await withRedis(t, async () => {
  const prefix = uniquePrefix()
  const pub = new Redis(redisUrl, clientOptions())
  const sub = new Redis(redisUrl, clientOptions())
  t.teardown(() => { pub.disconnect(); sub.disconnect() })
  await Promise.all([ready(pub), ready(sub)])
  defineScripts(pub)
  const received: Array<[string, string]> = []
  sub.on('message', (channel: string, text: string) => { received.push([channel.slice(prefix.length + 1), text]) })
  await sub.subscribe(`${prefix}:a`, `${prefix}:b`)
  const clock = new RedisClock()
  clock.observe(await pub.time() as unknown as RedisTime)
  let failed = 0
  const publisher = new Publisher(new Link(pub, 1000, () => {}), clock, 500, () => { failed++ }, classicPubSub)

  t.test('a burst in one turn: complete and in order, over several batches', async (t) => {
    received.length = 0
    const sent: Array<Promise<void>> = []
    for (let i = 0; i < 1200; i++) sent.push(publisher.publish(i % 3 === 0 ? [`${prefix}:a`, `${prefix}:b`] : [`${prefix}:a`], String(i)))
    await Promise.all(sent)
    await eventually(() => received.length === 1600, 5000, 'every copy arrived')
    t.same(received.filter(([channel]) => channel === 'a').map(([, text]) => Number(text)), [...Array(1200).keys()], 'in order on a')
    t.same(received.filter(([channel]) => channel === 'b').map(([, text]) => Number(text)),
      [...Array(1200).keys()].filter((i) => i % 3 === 0), 'in order on b')
    t.equal(failed, 0)
  })

  t.test('flush() sends what waits before a command issued after it', async (t) => {
    received.length = 0
    const published = publisher.publish([`${prefix}:a`], 'first')
    publisher.flush()
    await pub.publish(`${prefix}:a`, 'second')
    await within(published, 5000, 'the flushed publication is published')
    await eventually(() => received.length === 2, 5000, 'both arrived')
    t.same(received.map(([, text]) => text), ['first', 'second'])
  })

  t.test('a batch that reaches Redis after its deadline publishes nothing', async (t) => {
    received.length = 0
    const lateClock = new RedisClock()
    lateClock.observe(['1000000000', '0']) // Redis' clock as if it were 2001: every deadline is long past
    const late = new Publisher(new Link(pub, 1000, () => {}), lateClock, 500, () => { failed++ }, classicPubSub)
    const results = await Promise.allSettled([late.publish([`${prefix}:a`], 'x'), late.publish([`${prefix}:b`], 'y')])
    t.same(results.map((result) => result.status), ['rejected', 'rejected'])
    t.ok(results.every((result) => result.status === 'rejected' && result.reason instanceof LateError))
    t.equal(failed, 2, 'each failed publication counted')
    await publisher.publish([`${prefix}:a`], 'fence')
    await eventually(() => received.length > 0, 5000, 'the fence arrived')
    t.same(received.map(([, text]) => text), ['fence'], 'nothing of the late batch was published')
  })
})

await withRedis(t, async () => {
  const prefix = uniquePrefix()
  const keys = new RedisKeys(prefix)
  const open = async (options = {}): Promise<Redis> => {
    const client = new Redis(redisUrl, { ...clientOptions(), ...options })
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    await ready(client)
    return client
  }
  const pub = await open()
  const sub = await open()
  const admin = await open()
  defineScripts(pub)
  const clock = new RedisClock()
  clock.observe(await pub.time() as unknown as RedisTime)
  const received: Array<[string, string]> = []
  sub.on('message', (name: string, text: string) => { received.push([name, text]) })
  const dropped: number[] = []
  const failures: unknown[] = []
  const pubLink = new RecordingLink(pub, 1000, () => {})
  const subLink = new RecordingLink(sub, 1000, () => {})
  const settings = (more: Partial<RedisTransportSettings> = {}): RedisTransportSettings => ({
    keys, pubsub: classicPubSub, clock, budget: 500, startMs: 2000, onDropped: () => { dropped.push(1) }, onFailed: (err) => { failures.push(err) }, ...more
  })
  const transport = new RedisTransport(pubLink, subLink, settings())
  const numsub = async (...names: string[]): Promise<number[]> =>
    (await admin.pubsub('NUMSUB', ...names) as Array<string | number>).filter((_, i) => i % 2 === 1).map(Number)

  t.test('each topic\'s pub/sub channel', async (t) => {
    t.equal(transport.name({ kind: 'all' }), keys.all)
    t.equal(transport.name({ kind: 'node', nodeId: 'n1' }), keys.direct('n1'))
    t.equal(transport.name(channel('room')), keys.channel('room'))
    t.equal(new LateError().message, 'redis got the publication after its deadline: not delivered')
  })

  t.test('subscribe, publish to several topics in one call, unsubscribe', async (t) => {
    const topics: Topic[] = [{ kind: 'all' }, { kind: 'node', nodeId: 'n1' }, channel('room')]
    await transport.subscribe(topics)
    t.same(await numsub(keys.all, keys.direct('n1'), keys.channel('room')), [1, 1, 1], 'SUBSCRIBE to each')
    received.length = 0
    pubLink.sent.length = 0
    await transport.publish([channel('room'), { kind: 'node', nodeId: 'n1' }], 'env')
    t.same(pubLink.sent, [3], 'one call for both copies')
    await eventually(() => received.length === 2, 5000, 'both copies')
    t.same(received, [[keys.channel('room'), 'env'], [keys.direct('n1'), 'env']], 'one per channel, in order')
    await transport.unsubscribe([channel('room')])
    t.same(await numsub(keys.all, keys.direct('n1'), keys.channel('room')), [1, 1, 0], 'UNSUBSCRIBE from that one only')
    await transport.unsubscribe([{ kind: 'all' }, { kind: 'node', nodeId: 'n1' }])
    t.same(await numsub(keys.all, keys.direct('n1')), [0, 0])
    t.same(failures, [])
    t.same(dropped, [])
  })

  t.test('many channels at once: SUBSCRIBE in chunks of 1000', async (t) => {
    const names = Array.from({ length: 2500 }, (_, i) => `many-${i}`)
    subLink.sent.length = 0
    const written = sub.stream.bytesWritten
    await transport.subscribe(names.map(channel))
    t.same(subLink.sent, [0, 0, 0], 'three calls')
    const once = names.reduce((bytes, name) => bytes + keys.channel(name).length + 10, 0)
    t.ok(sub.stream.bytesWritten - written < once * 1.2, 'each name sent once')
    const subscribed = await admin.pubsub('CHANNELS', `${prefix}:ch:*many-*`) as string[]
    t.same(subscribed.sort(), names.map((name) => keys.channel(name)).sort(), 'each channel once')
    await transport.unsubscribe(names.map(channel))
    t.same(await admin.pubsub('CHANNELS', `${prefix}:ch:*many-*`), [])
    subLink.sent.length = 0
    await transport.unsubscribe([])
    await transport.subscribe([])
    t.same(subLink.sent, [], 'no topic: no call')
  })

  t.test('batches are cut at 500 publications and at 1 MiB of payload', async (t) => {
    const payload = (i: number): string => `p${String(i).padStart(9, '0')}`
    pubLink.sent.length = 0
    await Promise.all(Array.from({ length: 1200 }, async (_, i) => await transport.publish([channel('c')], payload(i))))
    t.same(pubLink.sent, [5000, 5000, 2000], '500, 500, 200')
    pubLink.sent.length = 0
    await Promise.all(Array.from({ length: 500 }, async (_, i) => await transport.publish([channel('c')], payload(i))))
    t.same(pubLink.sent, [5000], 'exactly 500: one batch')
    const kib = 1024
    pubLink.sent.length = 0
    await Promise.all([300, 300, 300, 300, 300].map(async (size) => await transport.publish([channel('c')], 'x'.repeat(size * kib))))
    t.same(pubLink.sent, [900 * kib, 600 * kib], 'cut before the publication that would pass 1 MiB')
    pubLink.sent.length = 0
    await Promise.all([512, 512, 1].map(async (size) => await transport.publish([channel('c')], 'x'.repeat(size * kib))))
    t.same(pubLink.sent, [1024 * kib, kib], 'exactly 1 MiB: one batch')
    pubLink.sent.length = 0
    await Promise.all([1100, 10].map(async (size) => await transport.publish([channel('c')], 'x'.repeat(size * kib))))
    t.same(pubLink.sent, [1100 * kib, 10 * kib], 'a publication larger than 1 MiB goes alone')
    t.same(dropped, [])
  })

  t.test('flush() sends at once; a publication without topics settles without a call', async (t) => {
    pubLink.sent.length = 0
    const published = transport.publish([channel('c')], 'now')
    t.same(pubLink.sent, [], 'waits for the end of the turn')
    transport.flush()
    t.same(pubLink.sent, [3], 'sent by flush()')
    await published
    pubLink.sent.length = 0
    await transport.publish([], 'nowhere')
    t.same(pubLink.sent, [], 'nothing to send')
  })

  t.test('a publication that cannot be sent fails, and counts as dropped once', async (t) => {
    const closed = await open()
    closed.disconnect()
    await eventually(() => closed.status === 'end', 2000, 'closed')
    dropped.length = 0
    const broken = new RedisTransport(new Link(closed, 1000, () => {}), new Link(closed, 1000, () => {}), settings())
    const results = await Promise.allSettled([broken.publish([channel('a'), channel('b')], 'x'), broken.publish([channel('a')], 'y')])
    t.same(results.map((result) => result.status), ['rejected', 'rejected'])
    t.match(results.map((result) => result.status === 'rejected' ? (result.reason as Error).message : ''), [/not ready/, /not ready/])
    t.same(dropped, [1, 1], 'once per publication')
  })

  t.test('on one Redis a failed subscription fails at once, and says so', async (t) => {
    const closed = await open()
    closed.disconnect()
    await eventually(() => closed.status === 'end', 2000, 'closed')
    failures.length = 0
    const broken = new RedisTransport(pubLink, new Link(closed, 1000, () => {}), settings())
    const started = Date.now()
    const err = await errorOf(broken.subscribe([channel('a')]))
    t.ok(Date.now() - started < 500, 'not retried')
    t.match(err, { message: /not ready/ })
    t.same(failures, [err], 'told once, with the error')
    await t.rejects(broken.ping(), /not ready/)
    await transport.ping()
  })
})

await withRedis(t, async () => {
  // in a subtest of its own: the top level would end while a private cluster starts, and
  // subtests created after that would never run (nor the teardowns that close the clients)
  t.test('on a Redis Cluster', async (t) => {
    const urls = await clusterUrls(t)
    if (urls === undefined) {
      if (process.env.CI === 'true') t.fail('no cluster (CI=true makes this a failure)')
      return
    }
    const prefix = uniquePrefix()
    const keys = new RedisKeys(prefix)
    const seeds = seedsOf(urls)
    const cluster = (subscriber: boolean): Cluster => {
      const client = new Cluster(seeds, {
        enableOfflineQueue: false,
        redisOptions: { ...clientOptions(), lazyConnect: true },
        lazyConnect: !subscriber,
        shardedSubscribers: subscriber
      })
      client.on('error', () => {})
      t.teardown(() => client.disconnect())
      return client
    }
    const sub = cluster(true) as unknown as Redis
    const received: Array<[string, string]> = []
    sub.on('smessage', (name: string, text: string) => { received.push([name, text]) })
    const dropped: number[] = []
    const failures: unknown[] = []
    const subLink = new RecordingLink(sub, 1000, () => {})
    const pub = cluster(false) as unknown as Redis
    const pubLink = new RecordingLink(pub, 1000, () => {})
    const clock = new RedisClock()
    const settings = (more: Partial<RedisTransportSettings> = {}): RedisTransportSettings => ({
      keys, pubsub: shardedPubSub, clock, budget: 500, startMs: 5000, onDropped: () => { dropped.push(1) }, onFailed: (err) => { failures.push(err) }, ...more
    })
    const transport = new RedisTransport(pubLink, subLink, settings())
    // the subscriber is still connecting: the first subscription is retried until it goes through
    const names = Array.from({ length: 30 }, (_, i) => `room-${i}`)
    const first = transport.subscribe(names.map(channel))

    await (pub as unknown as Cluster).connect()
    await ready(pub)
    await connectMasters(pub, 5000)
    defineScripts(pub)
    clock.observe(await pub.time() as unknown as RedisTime)
    const masters = (pub as unknown as Cluster).nodes('master')
    const admin = new Cluster(seeds)
    admin.on('error', () => {})
    t.teardown(() => admin.disconnect())
    const slots = new Set(names.map((name) => keySlot(keys.channel(name))))
    const shardChannels = async (): Promise<string[]> =>
      (await Promise.all(masters.map(async (master) => await master.pubsub('SHARDCHANNELS', `${prefix}:*`) as string[]))).flat().sort()

    t.test('the first subscription on a cluster is retried until the subscriber is ready; SSUBSCRIBE per slot', async (t) => {
      await within(first, 10000, 'the first subscription went through')
      t.same(failures, [], 'no failure told')
      t.ok(subLink.sent.length > slots.size, `retried (${subLink.sent.length} calls for ${slots.size} slots)`)
      t.same(await shardChannels(), names.map((name) => keys.channel(name)).sort(), 'each channel on its shard')
      subLink.sent.length = 0
      await transport.subscribe([{ kind: 'all' }, { kind: 'node', nodeId: 'n1' }])
      t.same(subLink.sent, [0], 'the node-wide channels share a slot: one call')
    })

    t.test('a publication to channels in several slots: one call per slot, each copy once', async (t) => {
      received.length = 0
      pubLink.sent.length = 0
      await transport.publish(names.map(channel), 'spread')
      t.equal(pubLink.sent.length, slots.size, 'one call per slot')
      t.ok(pubLink.sent.every((bytes) => bytes === 'spread'.length))
      await eventually(() => received.length === names.length, 5000, 'every copy')
      t.same(received.map(([name]) => name).sort(), names.map((name) => keys.channel(name)).sort())
      received.length = 0
      pubLink.sent.length = 0
      await Promise.all([transport.publish([{ kind: 'all' }], 'a'), transport.publish([{ kind: 'node', nodeId: 'n1' }], 'b')])
      t.same(pubLink.sent, [2], 'publications to one slot share a call')
      await eventually(() => received.length === 2, 5000, 'both')
      t.same(received, [[keys.all, 'a'], [keys.direct('n1'), 'b']])
      t.same(dropped, [])
    })

    t.test('a publication over several slots settles once every slot answered', async (t) => {
      const patient = new RedisTransport(pubLink, subLink, settings({ budget: 10000 }))
      const [busy] = masters
      const queue = await keyServedBy(busy, `${prefix}:held`)
      t.teardown(async () => await admin.del(queue))
      const blocked = busy.blpop(queue, 0)
      received.length = 0
      let settled = false
      const published = patient.publish(names.map(channel), 'held').then(() => { settled = true })
      await eventually(() => received.length > 0, 5000, 'the other shards published')
      await sleep(200)
      t.equal(settled, false, 'not settled while one slot waits')
      await admin.lpush(queue, 'fed')
      await blocked
      await within(published, 5000, 'settled once it answered')
      await eventually(() => received.length === names.length, 5000, 'every copy')
      t.same(dropped, [])
    })

    t.test('a late batch over several slots: each publication fails once', async (t) => {
      const lateClock = new RedisClock()
      lateClock.observe(['1000000000', '0'])
      const late = new RedisTransport(pubLink, subLink, settings({ clock: lateClock }))
      received.length = 0
      dropped.length = 0
      const results = await Promise.allSettled([late.publish(names.map(channel), 'x'), late.publish(names.slice(0, 5).map(channel), 'y')])
      t.ok(results.every((result) => result.status === 'rejected' && result.reason instanceof LateError), 'both rejected as late')
      t.same(dropped, [1, 1], 'each counted once, not once per slot')
      await transport.publish([{ kind: 'all' }], 'fence')
      await eventually(() => received.length > 0, 5000, 'the fence arrived')
      t.same(received, [[keys.all, 'fence']], 'nothing of the late batch was published')
    })

    t.test('PING every master: a busy one holds it up', async (t) => {
      await connectMasters(sub, 5000)
      await transport.ping()
      const [busy] = (sub as unknown as Cluster).nodes('master')
      const queue = await keyServedBy(busy, `${prefix}:q`)
      t.teardown(async () => await admin.del(queue))
      const blocked = busy.blpop(queue, 0)
      let answered = false
      const pinged = transport.ping().then(() => { answered = true })
      await sleep(300)
      t.equal(answered, false, 'waits for the busy master')
      await admin.lpush(queue, 'fed')
      await blocked
      await within(pinged, 5000, 'answered once it is free')
    })

    t.test('unsubscribe per slot; after the first, a failed subscription fails at once', async (t) => {
      await transport.unsubscribe([...names.map(channel), { kind: 'all' }, { kind: 'node', nodeId: 'n1' }])
      t.same(await shardChannels(), [], 'SUNSUBSCRIBE on every shard')
      const closed = cluster(false)
      failures.length = 0
      const broken = new RedisTransport(pubLink, new Link(closed as unknown as Redis, 1000, () => {}), settings({ startMs: 400 }))
      let started = Date.now()
      const err = await errorOf(broken.subscribe([channel('a')]))
      t.ok(Date.now() - started >= 390, 'the first one retried until startMs')
      t.ok(Date.now() - started < 1500, 'not longer')
      t.same(failures, [err], 'told once')
      const lost = new RecordingLink(sub, 1000, () => {})
      const later = new RedisTransport(pubLink, lost, settings({ startMs: 2000 }))
      await later.subscribe([channel('b')])
      sub.disconnect()
      await eventually(() => sub.status !== 'ready', 2000, 'closed')
      failures.length = 0
      started = Date.now()
      const again = await errorOf(later.subscribe([channel('c')]))
      t.ok(Date.now() - started < 500, 'not retried once one went through')
      t.same(failures, [again])
    })
  })
})
