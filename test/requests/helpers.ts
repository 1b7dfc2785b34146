/**
 * The cross-node request suite, shared by the memory test and the Redis ones: a request asked
 * on one node of a session held by another, answered, refused by the client's handler, with
 * no handler, timed out, to a session no node holds.
 */
import type { Test } from 'tap'
import type { Broker } from '../../plugin/index.js'
import { startApp, type TestApp } from '../helpers/server.js'
import { clientFor, statusOf } from '../client/helpers.js'

async function node (t: Test, broker: Broker): Promise<TestApp> {
  const started = await startApp({ broker, rateLimit: false, heartbeat: false })
  t.teardown(() => started.app.close())
  return started
}

export async function crossNodeAskSuite (t: Test, broker: () => Broker): Promise<void> {
  const a = await node(t, broker())
  const b = await node(t, broker())
  const client = clientFor(t, b.url)
  await statusOf(client, 'open')
  const sessionId = client.sessionId as string
  client.handle('confirm', async (data) => ({ confirmed: data }))
  client.handle('refuse', () => { throw Object.assign(new Error('no way'), { code: 'DECLINED' }) })
  client.handle('slow', async () => await new Promise((resolve) => setTimeout(() => resolve('late'), 2000)))

  t.same(await a.app.channels.ask(sessionId, 'confirm', { n: 1 }), { confirmed: { n: 1 } }, 'answered across nodes')
  t.same(await b.app.channels.ask(sessionId, 'confirm', 'local'), { confirmed: 'local' }, 'and on the node that holds it')
  await t.rejects(a.app.channels.ask(sessionId, 'refuse', {}), { code: 'FST_CHANNELS_CLIENT_ERROR', clientCode: 'DECLINED', message: 'no way' })
  await t.rejects(a.app.channels.ask(sessionId, 'unknown', {}), { code: 'FST_CHANNELS_CLIENT_ERROR', clientCode: 'NO_HANDLER' })
  await t.rejects(a.app.channels.ask(sessionId, 'slow', {}, { timeout: 200 }), { code: 'FST_CHANNELS_REQUEST_TIMEOUT' })
  await t.rejects(a.app.channels.ask('no-such-session-000000000', 'confirm', {}), { code: 'FST_CHANNELS_NO_SOCKET' })

  const asked = a.app.channels.ask(sessionId, 'slow', {}, { timeout: 5000 })
  setTimeout(() => client.close(), 100)
  await t.rejects(asked, { code: 'FST_CHANNELS_DISCONNECTED' }, 'the connection closed first')
}
