/**
 * History channels at their edges (plugin/history/service.ts): a broker that fails to read or to
 * publish, a closed app, publications held during a join that the read already holds, a `since`
 * from another epoch, and the channels without history of a history app.
 */
import { test } from 'tap'
import { memoryBroker, type Broker } from '../../plugin/index.js'
import { startApp, TestClient, nextId, type Frame } from '../helpers/server.js'
import { gatedHistoryBroker } from './helpers.js'

interface Warning { msg: string, channel?: string, err?: { message: string } }

const isMessage = (frame: Frame): boolean => frame.type === 'message'

/** A memory broker whose history reads and publishes fail while `failing` says so. */
function flakyBroker (): { broker: Broker, failing: { read: boolean, publish: boolean } } {
  const inner = memoryBroker()
  const failing = { read: false, publish: false }
  return {
    failing,
    broker: {
      async connect (node) {
        const connection = await inner.connect(node)
        const read = connection.readHistory?.bind(connection)
        const publish = connection.publishHistory?.bind(connection)
        connection.readHistory = async (channel, query, limits) => {
          if (failing.read) throw new Error('read down')
          return await (read as NonNullable<typeof read>)(channel, query, limits)
        }
        connection.publishHistory = async (channel, frame, except, limits) => {
          if (failing.publish) throw new Error('publish down')
          return await (publish as NonNullable<typeof publish>)(channel, frame, except, limits)
        }
        return connection
      }
    }
  }
}

/** An app on `broker` whose warnings and handler errors are collected. */
async function start (t: { teardown (fn: () => unknown): void }, broker?: Broker) {
  const warnings: Warning[] = []
  const errors: Error[] = []
  const stream = {
    write: (line: string) => {
      const entry = JSON.parse(line) as Warning & { level: number }
      if (entry.level === 40) warnings.push(entry)
      if (entry.level >= 50) errors.push(new Error(entry.msg))
    }
  }
  const started = await startApp({ history: { channel: /^h-/, size: 5 }, rateLimit: false, heartbeat: false, broker }, (app) => {
    app.channels.on('error', (_socket, err) => { errors.push(err) })
  }, { logger: { level: 'warn', stream } })
  t.teardown(() => started.app.close())
  return { ...started, warnings, errors }
}

test('a failed history read: joined without history (recovered: false for a since), logged', async (t) => {
  const { broker, failing } = flakyBroker()
  const { app, url, warnings } = await start(t, broker)
  const first = await TestClient.connect(url)
  t.teardown(() => first.close())
  const { epoch } = await first.subscribe('h-room')
  await app.broadcastChannel('h-room', 1)
  t.match(await first.next(isMessage), { offset: 1 })

  failing.read = true
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  t.same(await client.request({ type: 'subscribe', channel: 'h-room', id: 1, since: { epoch, offset: 0 } }),
    { type: 'subscribed', channel: 'h-room', id: 1, recovered: false }, 'no epoch, no offset, not recovered')
  t.same(await client.request({ type: 'subscribe', channel: 'h-other', id: 2, last: 3 }),
    { type: 'subscribed', channel: 'h-other', id: 2 }, 'a last without a read: a plain subscribed')
  await client.expectNothing(isMessage)
  t.match(warnings, [{ msg: /history read failed; joined without history/, channel: 'h-room', err: { message: 'read down' } }])

  failing.read = false
  await app.broadcastChannel('h-room', 2)
  t.match(await client.next(isMessage), { data: 2, offset: 2 }, 'live publications flow once joined')
})

test('a failed history publish is delivered locally without an offset, and logged once per run of failures', async (t) => {
  const { broker, failing } = flakyBroker()
  const { app, url, warnings } = await start(t, broker)
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  await client.subscribe('h-room')
  failing.publish = true
  await app.broadcastChannel('h-room', 'local')
  t.same(await client.next(isMessage), { type: 'message', event: 'message', channel: 'h-room', data: 'local' }, 'no offset: not part of the stream')
  t.match(warnings, [{ msg: /history publish failed; delivered locally only/, channel: 'h-room', err: { message: 'publish down' } }])
  for (let i = 0; i < 2; i++) await app.broadcastChannel('h-room', i)
  for (let i = 0; i < 2; i++) t.same((await client.next(isMessage)).data, i, 'each delivered locally')
  t.equal(warnings.length, 1, 'three failures, one line')
  failing.publish = false
  await app.broadcastChannel('h-room', 'through')
  t.match(await client.next(isMessage), { data: 'through', offset: 1 })
  failing.publish = true
  await app.broadcastChannel('h-room', 'again')
  t.equal(warnings.length, 2, 'a publish that went through ended the run: the next failure warns again')
  t.match(warnings[1], { msg: /history publish failed/, channel: 'h-room', err: { message: 'publish down' } })
})

test('once the app closed its broker: publishing is logged as such, reading rejects', async (t) => {
  const { app, warnings } = await start(t)
  await app.close()
  await app.broadcastChannel('h-room', 'late')
  t.match(warnings, [{ msg: /history publish failed/, channel: 'h-room', err: { message: 'the broker is closed' } }])
  await t.rejects(app.channels.history('h-room'), { message: 'the broker is closed' })
})

test('publications held back during a join that its read already holds are sent once', async (t) => {
  const { broker, open } = gatedHistoryBroker('at-open')
  const { app, url } = await start(t, broker)
  await app.broadcastChannel('h-room', 1)
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  client.send({ type: 'subscribe', channel: 'h-room', id: 1, last: 5 })
  await new Promise((resolve) => setTimeout(resolve, 50)) // the join waits to read
  await app.broadcastChannel('h-room', 2)
  await app.broadcastChannel('h-room', 3)
  open()
  t.match(await client.next(), { type: 'subscribed', id: 1, offset: 3 }, 'the read came after 2 and 3')
  const replayed: Frame[] = []
  for (let i = 0; i < 3; i++) replayed.push(await client.next(isMessage))
  t.same(replayed.map((m) => m.offset), [1, 2, 3])
  await client.expectNothing(isMessage)
})

test('a since from another epoch: not recovered, and nothing replayed', async (t) => {
  const { app, url } = await start(t)
  for (let n = 1; n <= 3; n++) await app.broadcastChannel('h-room', n)
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  t.match(await client.request({ type: 'subscribe', channel: 'h-room', id: nextId(), since: { epoch: 'another', offset: 1 } }),
    { type: 'subscribed', offset: 3, recovered: false })
  await client.expectNothing(isMessage)
})

test('the channels without history of a history app join and leave without errors', async (t) => {
  const { app, url, errors } = await start(t)
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  t.same(await client.subscribe('plain', 1), { type: 'subscribed', channel: 'plain', id: 1 })
  t.same(await client.request({ type: 'unsubscribe', channel: 'plain', id: 2 }), { type: 'unsubscribed', channel: 'plain', id: 2 })
  await client.subscribe('h-room', 3)
  t.same(await client.request({ type: 'unsubscribe', channel: 'h-room', id: 4 }), { type: 'unsubscribed', channel: 'h-room', id: 4 })
  await app.broadcastChannel('plain', 'gone')
  await client.expectNothing(isMessage)
  t.same(errors, [], 'no handler error, no error logged')
})
