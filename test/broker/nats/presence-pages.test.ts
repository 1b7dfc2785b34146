/**
 * A node's tracks in one channel that do not fit one NATS message (the server's `max_payload`):
 * they are spread over pages, and every node still sees the whole set, told each join and each
 * leave once; a dead node's pages are all reaped. On a server of the test's own with a
 * `max_payload` of 16 KiB, so a few dozen tracks with 3 KB of meta each overflow one message.
 * On the shared server (1 MB), a set past 64 KiB is spread too, so that a change of one track
 * republishes a page to the other nodes, not the whole set.
 */
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { encodePresence } from '../../../plugin/broker/envelope.js'
import { natsEngine } from '../../../plugin/broker/nats/broker.js'
import { pageOf } from '../../../plugin/broker/nats/presence-store.js'
import type { EngineNode } from '../../../plugin/broker/parts.js'
import type { BrokerConnection, PresenceBroker, PresenceChanges, PresenceTrack } from '../../../plugin/broker/types.js'
import { standIn, type StandInNode } from '../stand-in-node.js'
import { connect } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { encodeToken, NatsNames } from '../../../plugin/broker/nats/names.js'
import { deleteStreams, eventually, NatsServer, natsUrl, uniquePrefix, withNats, withNatsServer } from './helpers.js'

const maxPayload = 16 * 1024
const meta = JSON.stringify({ bio: 'x'.repeat(3000) })
const track = (ref: string): PresenceTrack => ({ ref, key: `user-${ref}`, meta })

/** What `node` was told of `channel`, folded: each ref joined and left how many times. */
function tally (node: StandInNode, channel: string): { joined: Map<string, number>, left: Map<string, number> } {
  const joined = new Map<string, number>()
  const left = new Map<string, number>()
  for (const [told, changes] of node.told) {
    if (told !== channel) continue
    for (const { ref } of changes.joins) joined.set(ref, (joined.get(ref) ?? 0) + 1)
    for (const ref of changes.leaves) left.set(ref, (left.get(ref) ?? 0) + 1)
  }
  return { joined, left }
}

const refs = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `r${from + i}`)
/** refs never on the first page, however many pages: an odd hash (see pageOf) */
const offFirstPage = (ref: string): boolean => pageOf(ref, 2) === 1
const sorted = (tracks: PresenceTrack[]): string[] => tracks.map(({ ref }) => ref).sort()

/** The keys of `channel` in the presence bucket that hold a value (not deleted). */
async function liveKeys (url: string, prefix: string, channel: string): Promise<string[]> {
  const nc = await connect({ servers: url })
  try {
    const kv = await new Kvm(nc).open(new NatsNames(prefix).presenceBucket)
    const keys: string[] = []
    for await (const key of await kv.keys(`c.${encodeToken(channel)}.*`)) keys.push(key)
    return keys.sort()
  } finally {
    await nc.close()
  }
}

t.test('pageOf spreads refs over a power of two of pages, the same ref always on the same page', async (t) => {
  const counts = new Array(8).fill(0)
  for (let i = 0; i < 8000; i++) counts[pageOf(`ref-${i}`, 8)]++
  for (const count of counts) t.ok(count > 800 && count < 1200, `about an eighth on each page: ${count}`)
  t.equal(pageOf('abc', 1), 0, 'one page: always the first')
  t.equal(pageOf('abc', 16), pageOf('abc', 16))
  t.equal(pageOf('abc', 16) % 8, pageOf('abc', 8), 'doubling the pages splits each page in two')
})

await withNatsServer(t, async () => {
  const server = await NatsServer.start(t, { maxPayload })
  const prefix = uniquePrefix()
  const engine = natsEngine({ servers: server.url, prefix })

  const node = async (t: Test): Promise<{ node: StandInNode, link: BrokerConnection & PresenceBroker }> => await standIn(t, engine)

  t.test('a set larger than one message: every node reads it whole and is told each change once', async (t) => {
    const a = await node(t)
    const b = await node(t)
    const channel = 'lobby'
    await b.link.subscribe(channel)
    const first = refs(0, 40) // about 40 × 3 KB: some 120 KB, many times the server's message size
    await a.link.presenceUpdate(channel, { joins: first.map(track), leaves: [] })
    t.same(sorted(await b.link.presenceState(channel)), [...first].sort(), 'another node reads every track')
    t.same((await b.link.presenceState(channel)).find(({ ref }) => ref === 'r7'), track('r7'), 'with its key and meta')
    await eventually(() => tally(b.node, channel).joined.size === 40, 5000, 'b is told of all 40 joins')
    t.ok(b.node.told.length > 1, `in several messages (${b.node.told.length}): one per page`)

    const leaving = refs(0, 15)
    await a.link.presenceUpdate(channel, { joins: [], leaves: leaving })
    await eventually(() => tally(b.node, channel).left.size === 15, 5000, 'b is told of the 15 leaves')
    t.same(sorted(await b.link.presenceState(channel)), refs(15, 40).sort(), 'the store agrees')

    const more = refs(40, 100) // grows past the pages it had: the set is spread over more
    await a.link.presenceUpdate(channel, { joins: more.map(track), leaves: [] })
    await eventually(() => tally(b.node, channel).joined.size === 100, 5000, 'b is told of the 60 new joins')
    t.same(sorted(await b.link.presenceState(channel)), [...refs(15, 40), ...more].sort(), 'every track, after the spread')

    // a change whose tracks are all off the first page: only their pages are written, each once
    const joiner = refs(100, 200).find(offFirstPage) as string
    const leaver = more.find(offFirstPage) as string
    const messages = b.node.told.length
    await a.link.presenceUpdate(channel, { joins: [track(joiner)], leaves: [leaver] })
    await eventually(() => tally(b.node, channel).joined.has(joiner) && tally(b.node, channel).left.has(leaver), 5000, 'b is told of a change off the first page')
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.ok(b.node.told.length - messages <= 2, `one message per page it touched: ${b.node.told.length - messages}`)
    const after = [...refs(15, 40), ...more.filter((ref) => ref !== leaver), joiner]
    t.same(sorted(await b.link.presenceState(channel)), [...after].sort(), 'the store agrees')

    await a.link.presenceUpdate(channel, { joins: [], leaves: after })
    await eventually(() => tally(b.node, channel).left.size === 101, 5000, 'b is told of every leave')
    t.same(await b.link.presenceState(channel), [], 'nothing of a is left in the store')
    const { joined, left } = tally(b.node, channel)
    t.same([...joined.values(), ...left.values()].filter((times) => times !== 1), [], 'each join and each leave told once')
    t.same([...joined.keys()].sort(), [...left.keys()].sort(), 'every ref that joined left')
    t.same(await liveKeys(server.url, prefix, channel), [], 'every page deleted, the first one included')

    // emptied, the channel is one page again: a newcomer is written on the first page alone
    const subjects: string[] = []
    const nc = await connect({ servers: server.url })
    t.teardown(() => nc.close())
    nc.subscribe(`${new NatsNames(prefix).base}.c.${encodeToken(channel)}.p.>`, { callback: (_err, msg) => { subjects.push(msg.subject) } })
    await nc.flush()
    const newcomer = refs(200, 300).find(offFirstPage) as string
    await a.link.presenceUpdate(channel, { joins: [{ ref: newcomer, key: 'newcomer', meta: '{}' }], leaves: [] })
    await eventually(() => tally(b.node, channel).joined.has(newcomer), 5000, 'b is told of the newcomer')
    await nc.flush() // the server sent this connection what it republished before the PONG
    t.same(subjects, [`${new NatsNames(prefix).base}.c.${encodeToken(channel)}.p.${encodeToken(a.node.nodeId)}`], 'one message, on the first page\'s key')
  })

  t.test('a small set is one message on one key, as before pages', async (t) => {
    const a = await node(t)
    const b = await node(t)
    const channel = 'small'
    await b.link.subscribe(channel)
    const few = ['s1', 's2', 's3'].map((ref) => ({ ref, key: ref, meta: '{}' }))
    await a.link.presenceUpdate(channel, { joins: few, leaves: [] })
    await eventually(() => tally(b.node, channel).joined.size === 3, 5000, 'b is told of the 3 joins')
    t.same(b.node.told, [[channel, { joins: few, leaves: [] }]], 'in one message, the change as it was made')
    t.same(sorted(await b.link.presenceState(channel)), ['s1', 's2', 's3'])
    await a.link.presenceUpdate(channel, { joins: [], leaves: ['s2'] })
    t.same(sorted(await b.link.presenceState(channel)), ['s1', 's3'], 'the whole set written again')
    t.same(await liveKeys(server.url, prefix, channel), [`c.small.${encodeToken(a.node.nodeId)}`], 'on one key')
    await a.link.presenceUpdate(channel, { joins: [], leaves: ['s1', 's3'] })
    t.same(await liveKeys(server.url, prefix, channel), [], 'the last leave deletes the key: an emptied channel keeps nothing in the bucket')
  })

  t.test('a write that failed (NATS down) is made good once NATS is back, pages the change emptied included', async (t) => {
    const { link: a } = await standIn(t, natsEngine({ servers: server.url, prefix, commandTimeout: 1000 }))
    const b = await node(t)
    const channel = 'outage'
    const all = refs(0, 40)
    await a.presenceUpdate(channel, { joins: all.map(track), leaves: [] })
    t.equal((await b.link.presenceState(channel)).length, 40)
    await server.kill()
    // the tracks off the first page leave: every page but the first is emptied, and none of it is written
    const staying = all.filter((ref) => !offFirstPage(ref))
    await t.rejects(a.presenceUpdate(channel, { joins: [], leaves: all.filter(offFirstPage) }), 'the write fails while NATS is down')
    await server.run()
    await eventually(async () => sorted(await b.link.presenceState(channel).catch(() => [])).join() === [...staying].sort().join(), 20_000,
      'the store holds exactly the tracks left, once the node wrote again')
    t.pass(`the ${all.length - staying.length} tracks that left are gone from the store, the ${staying.length} others kept`)
  })

  t.test('a dead node\'s pages are all reaped, each leave sent once; a live node\'s keys in the channel are kept', async (t) => {
    const b = await node(t)
    const live = await node(t)
    const channel = 'hall'
    await b.link.subscribe(channel)
    await live.link.presenceUpdate(channel, { joins: [{ ref: 'alive', key: 'alive', meta: '{}' }], leaves: [] })
    const dead: EngineNode = { nodeId: `dead-${uniquePrefix()}`, log: Fastify({ logger: false }).log, receive () {}, restore: async () => ({ channels: 0, sessions: 0 }) }
    const parts = await engine.connect(dead)
    t.teardown(() => parts.close())
    if (parts.presence === undefined) throw new Error('the NATS engine shares presence')
    await parts.registry.register([])
    // all off the first page: it holds no track, and must stay, since the reaper finds the others through it
    const deadRefs = refs(0, 120).filter(offFirstPage).slice(0, 40)
    const changes: PresenceChanges = { joins: deadRefs.map(track), leaves: [] }
    await parts.presence.write({ channels: new Map([[channel, { ...changes, envelope: encodePresence(dead.nodeId, channel, changes) }]]), forget: [] })
    await eventually(() => tally(b.node, channel).joined.size === 41, 5000, 'b is told of the dead node\'s 40 tracks')
    t.equal((await b.link.presenceState(channel)).length, 41)
    t.ok((await liveKeys(server.url, prefix, channel)).length > 2, 'the dead node\'s tracks are on pages')
    await parts.registry.unregister() // as if its registration expired
    await eventually(() => tally(b.node, channel).left.size === 40, 10_000, 'its tracks are reaped by a live node, every page')
    t.same([...tally(b.node, channel).left.values()].filter((times) => times !== 1), [], 'each leave sent once')
    t.notOk(tally(b.node, channel).left.has(''), 'the empty first page reaped without a leave')
    t.same(sorted(await b.link.presenceState(channel)), ['alive'], 'none of the dead node\'s is left in the store; the live node\'s is')
    t.same(await liveKeys(server.url, prefix, channel), [`c.hall.${encodeToken(live.node.nodeId)}`], 'the dead node\'s keys deleted, every page')
  })

  t.test('a track too large for a message even alone: the write fails, and does not hang', async (t) => {
    const small = await NatsServer.start(t, { maxPayload: 4096 })
    const { link: a } = await standIn(t, natsEngine({ servers: small.url, prefix: uniquePrefix(), commandTimeout: 2000 }))
    const huge = { ref: 'huge', key: 'huge', meta: JSON.stringify({ bio: 'x'.repeat(3000) }) } // twice in the message: its join and its set, 6 KB
    await t.rejects(a.presenceUpdate('room', { joins: [huge], leaves: [] }), { message: /max_payload/ }, 'rejected with the server\'s reason')
    await a.presenceUpdate('other', { joins: [{ ref: 'fine', key: 'fine', meta: '{}' }], leaves: [] })
    t.same(sorted(await a.presenceState('other')), ['fine'], 'the node goes on writing what fits')
  })
})

await withNats(t, async () => {
  t.test('a set past 64 KiB is spread over pages even where the server takes 1 MB: a change republishes a page, not the set', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const engine = natsEngine({ servers: natsUrl, prefix })
    const [a, b] = await Promise.all([0, 1].map(async () => await standIn(t, engine)))
    const channel = 'big-room'
    await b.link.subscribe(channel)
    const nc = await connect({ servers: natsUrl })
    t.teardown(() => nc.close())
    const sizes: number[] = []
    nc.subscribe(`${new NatsNames(prefix).base}.c.${encodeToken(channel)}.p.>`, { callback: (_err, msg) => { sizes.push(msg.data.length) } })
    await nc.flush()
    const small = JSON.stringify({ name: 'someone', device: 'web' })
    const members = Array.from({ length: 2000 }, (_, i) => ({ ref: `m${i}`, key: `user-${i}`, meta: small }))
    await a.link.presenceUpdate(channel, { joins: members, leaves: [] }) // some 120 KB of tracks
    await eventually(() => tally(b.node, channel).joined.size === 2000, 5000, 'b is told of the 2,000 joins')
    await nc.flush() // the server sent this connection what it republished before the PONG
    t.equal((await b.link.presenceState(channel)).length, 2000, 'every track in the store')
    t.ok(sizes.length > 1, `the crowd went out in ${sizes.length} messages, none over 64 KiB: ${Math.max(...sizes)} bytes`)
    t.ok(Math.max(...sizes) <= 64 * 1024)

    sizes.length = 0
    await a.link.presenceUpdate(channel, { joins: [{ ref: 'late', key: 'late-comer', meta: small }], leaves: ['m5'] })
    await eventually(() => tally(b.node, channel).joined.has('late') && tally(b.node, channel).left.has('m5'), 5000, 'b is told of the change')
    await nc.flush()
    const written = sizes.reduce((sum, size) => sum + size, 0)
    t.ok(written < 80 * 1024, `one join and one leave republished ${written} bytes in ${sizes.length} messages: a page or two, not the 120 KB set`)
    t.equal((await b.link.presenceState(channel)).length, 2000)
  })
})
