/**
 * plugin/http/upgrades.ts, the part that is not about refused upgrades (those are
 * upgrade-leftovers.test.ts and register.test.ts): an upgrade's answer and the welcome behind it
 * leave in one write; an upgrade stuck in an app's hook is dropped when its client closes.
 */
import t from 'tap'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { typescriptLoaderArgs } from '../helpers/child-loader.js'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient } from '../helpers/server.js'

t.test('the 101 and the welcome frame leave the server in one write', async (t) => {
  const writes: string[] = []
  const { app, url } = await startApp({}, (app) => {
    // Added after the plugin's own listeners, still before any hook of the upgrade ran.
    app.server.on('upgrade', (_request, socket: Socket & { _write: Function, _writev: Function }) => {
      const write = socket._write
      const writev = socket._writev
      socket._write = function (chunk: Buffer | string, ...rest: unknown[]) {
        writes.push(`write ${String(chunk).includes('101 Switching') ? '101' : 'frame'}`)
        return write.call(this, chunk, ...rest)
      }
      socket._writev = function (chunks: Array<{ chunk: Buffer | string }>, ...rest: unknown[]) {
        writes.push(`writev ${chunks.map(({ chunk }) => String(chunk).includes('101 Switching') ? '101' : 'frame').join('+')}`)
        return writev.call(this, chunks, ...rest)
      }
    })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.ok(client.sessionId, 'welcomed')
  t.same(writes[0], 'writev 101+frame', 'one writev: the 101 and the welcome')
  client.close()
})

t.test('upgrades stuck in a hook that never settles are dropped when their clients close', async (t) => {
  const fixture = fileURLToPath(new URL('./fixtures/stuck-upgrades.ts', import.meta.url))
  const child = fork(fixture, { execArgv: [...typescriptLoaderArgs(), '--expose-gc'], env: { ...process.env, COUNT: '300' } })
  const exited = once(child, 'exit')
  t.teardown(() => { if (child.exitCode === null) child.kill() })
  const [report] = await within(Promise.race([
    once(child, 'message'),
    exited.then(([code]) => { throw new Error(`the fixture exited (code ${String(code)}) before reporting`) })
  ]), 60_000, 'the fixture reports what the server holds') as [{ count: number, stuckInHook: number, connections: number, requestsAlive: number, heapPerUpgrade: number, externalPerUpgrade: number }]
  await within(exited, 10_000, 'the fixture exits once it reported')
  t.equal(report.stuckInHook, report.count, 'every upgrade was waiting in the hook')
  t.equal(report.connections, 0, 'the server holds none of their sockets')
  t.equal(report.requestsAlive, 0, 'nor the requests the hook was given')
  // before: about 8 KB of heap and 8.5 KB of socket buffers per upgrade stayed
  t.ok(report.heapPerUpgrade < 1024, `heap back where it was (${Math.round(report.heapPerUpgrade)} B per upgrade)`)
  t.ok(report.externalPerUpgrade < 512, `and the buffers (${Math.round(report.externalPerUpgrade)} B per upgrade)`)
})

t.test('an upgrade that waited in a hook still works both ways once the hook settles', async (t) => {
  const { app, url } = await startApp({}, (app) => {
    app.addHook('onRequest', async () => { await new Promise((resolve) => setTimeout(resolve, 50)) })
    app.channels.on('message', { event: 'echo' }, (socket, data) => { socket.send(data, { event: 'echo' }) })
  })
  t.teardown(() => app.close())
  const client = await TestClient.connect(url)
  t.teardown(() => client.close())
  client.send({ type: 'message', event: 'echo', data: 'hi' })
  t.equal((await client.next((frame) => frame.event === 'echo')).data, 'hi')
})
