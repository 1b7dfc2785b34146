/**
 * The NATS history store on its own, against a real server: an entry stored after its deadline
 * (a server that hung, then woke up) is void: the append reports failure, subscribers of the
 * channel never get it, reads skip it, and the next append takes its offset again. Also: two
 * stores appending at once keep one dense order in the epoch a read answered before; reads of
 * never-published channels store nothing of them (one base message per prefix), and purging the
 * stream (its base with it) changes the epoch they answer.
 */
import t from 'tap'
import { connect, headers } from '@nats-io/transport-node'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { NatsClock } from '../../../plugin/broker/nats/clock.js'
import { NatsHistoryStore } from '../../../plugin/broker/nats/history-store.js'
import { NatsNames } from '../../../plugin/broker/nats/names.js'
import { envelopeOf } from '../../../plugin/broker/nats/transport.js'
import { deleteStreams, eventually, natsUrl, uniquePrefix, withNats } from './helpers.js'

const limits = { size: 10, ttl: 60_000 }
const append = (n: string) => ({ head: 'h1\nroom\n', entry: `\n"${n}"` })

await withNats(t, async () => {
  const nc = await connect({ servers: natsUrl })
  t.teardown(() => nc.close())
  const js = jetstream(nc)
  const jsm = await jetstreamManager(nc)

  function store (prefix: string, budgetMs = 1500): NatsHistoryStore {
    return new NatsHistoryStore(nc, js, jsm, { names: new NatsNames(prefix), clock: new NatsClock(), headers, timeoutMs: 2000, budgetMs })
  }

  t.test('an entry stored after its deadline is void', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const names = new NatsNames(prefix)
    const received: string[] = []
    const late: string[] = []
    const sub = nc.subscribe(names.channel('room'), {
      callback: (_err, msg) => {
        const envelope = envelopeOf(msg, new NatsClock(), () => late.push(msg.string()))
        if (envelope !== undefined) received.push(envelope)
      }
    })
    t.teardown(() => sub.unsubscribe())
    const live = store(prefix)
    const first = await live.append('room', append('one'), limits)
    t.match(first, { offset: 1 })

    // a deadline already gone when the server stores it: what a hung server that woke up does
    const hung = store(prefix, -1000)
    await t.rejects(hung.append('room', append('void'), limits), /after its deadline/, 'the append reports failure')
    const read = await live.read('room', { last: 10 }, limits)
    t.equal(read.offset, 1, 'the top offset does not count it')
    t.same(read.entries.map((e) => e.offset), [1], 'reads skip it')

    t.same(await live.append('room', append('two'), limits), { offset: 2, epoch: first.epoch }, 'the next append takes its offset')
    await eventually(() => received.length === 2, 5000, 'the live entries arrive')
    t.same(received, ['h1\nroom\n1\n' + first.epoch + '\n\n"one"', 'h1\nroom\n2\n' + first.epoch + '\n\n"two"'], 'subscribers never get the void one')
    t.equal(late.length, 1, 'it came, and was dropped as late')
    t.same((await live.read('room', { after: 0 }, limits)).entries.map((e) => e.entry), ['\n"one"', '\n"two"'], 'after: all, without it')
  })

  t.test('two stores appending at once: one dense order, in the epoch a read answered before', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const a = store(prefix)
    const b = store(prefix)
    const position = await a.read('race', { last: 0 }, limits)
    t.match(position, { offset: 0, entries: [], complete: true })
    t.same(await b.read('race', { last: 0 }, limits), position, 'the same epoch from the other store')
    const offsets = await Promise.all(Array.from({ length: 20 }, async (_, i) => await (i % 2 === 0 ? a : b).append('race', append(String(i)), { size: 30, ttl: 60_000 })))
    t.same(offsets.map((p) => p.offset).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1), 'every offset once')
    t.ok(offsets.every((p) => p.epoch === position.epoch), 'in the epoch the read answered')
    const read = await a.read('race', { after: 5 }, { size: 30, ttl: 60_000 })
    t.match(read, { offset: 20, complete: true })
    t.same(read.entries.map((e) => e.offset), Array.from({ length: 15 }, (_, i) => i + 6))
    t.match(await a.read('race', { after: 25 }, limits), { complete: false, entries: [] }, 'above the top: incomplete')
    t.match(await a.read('race', { after: 2 }, limits), { complete: false, entries: [] }, 'beyond size: incomplete')
  })

  t.test('reads of never-published channels store nothing of them; a purge of the stream changes their epoch', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const names = new NatsNames(prefix)
    const a = store(prefix)
    const b = store(prefix)
    await a.append('warm', append('w'), limits)
    const before = (await jsm.streams.info(names.historyStream)).state
    const views = await Promise.all(Array.from({ length: 200 }, async (_, i) => await (i % 2 === 0 ? a : b).read(`idle-${i}`, { last: 0 }, limits)))
    t.ok(views.every((view) => view.offset === 0 && view.complete), 'offset 0, complete')
    t.equal(new Set(views.map((view) => view.epoch)).size, 200, 'each channel its own epoch')
    const after = (await jsm.streams.info(names.historyStream)).state
    t.equal(after.messages, before.messages, `no message stored by the reads (${after.messages})`)
    t.equal(after.bytes, before.bytes, 'no byte stored by the reads')
    t.equal(after.num_subjects, 2, 'two subjects: the published channel and the base')
    t.same(await b.read('idle-0', { last: 0 }, limits), views[0], 'the same epoch from the other store')
    t.same(await b.append('idle-0', append('first'), limits), { epoch: views[0].epoch, offset: 1 }, 'the first publication starts in it')

    await jsm.streams.purge(names.historyStream)
    a.forget() // what a failed request makes it do; otherwise it reads the base again within a minute
    const later = await a.read('idle-1', { last: 0 }, limits)
    t.match(later, { offset: 0 })
    t.not(later.epoch, views[1].epoch, 'the base is gone with the stream: another epoch')
    t.not((await a.append('idle-0', append('again'), limits)).epoch, views[0].epoch, 'a lost stream and the next never share an epoch')
  })

  t.test('the base is written again, the same, when half the stream\'s max age has passed', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const names = new NatsNames(prefix)
    const baseOf = async (): Promise<{ seq: number, value: string | undefined }> => {
      const msg = await jsm.direct.getMessage(names.historyStream, { last_by_subj: names.historyBase })
      return { seq: msg?.seq ?? 0, value: msg?.header?.get('Fc-Base') }
    }
    await store(prefix).read('idle', { last: 0 }, limits)
    const first = await baseOf()
    t.ok(first.value !== undefined && first.value.length > 0, 'a base is stored')
    await store(prefix).read('idle', { last: 0 }, limits)
    t.same(await baseOf(), first, 'read, not written again, while young')
    class Later extends NatsClock {
      override now (): number { return super.now() + 13 * 3600_000 } // more than half of 24 hours later
    }
    const later = new NatsHistoryStore(nc, js, jsm, { names, clock: new Later(), headers, timeoutMs: 2000, budgetMs: 1500 })
    await later.read('idle', { last: 0 }, limits)
    const renewed = await baseOf()
    t.ok(renewed.seq > first.seq, 'written again')
    t.equal(renewed.value, first.value, 'the same base')
    await later.read('other', { last: 0 }, limits)
    t.same(await baseOf(), renewed, 'once: the node uses what it wrote')
  })
})
