/**
 * plugin/http/upgrades.ts, the part that is not about refused upgrades (those are
 * upgrade-leftovers.test.ts and register.test.ts): an upgrade's answer and the welcome behind it
 * leave in one write.
 */
import t from 'tap'
import type { Socket } from 'node:net'
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
