/**
 * `Link` on a Redis reached over a Unix socket (a private redis-server of this test's own): a
 * connection without a TCP handle cannot be reset with an RST (`resetAndDestroy` throws
 * ERR_INVALID_HANDLE_TYPE for it, as for a TLS connection), so a stall destroys it the plain way,
 * and it comes back. See link-blocked.test.ts for the stall itself.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Redis } from 'ioredis'
import { clientOptions, ready } from '../../../plugin/broker/redis/client.js'
import { Link, NoAnswerError } from '../../../plugin/broker/redis/link.js'
import { eventually, withRedis } from '../../redis/helpers.js'

const timeout = 300
const errorOf = async (promise: Promise<unknown>): Promise<unknown> => await promise.then(() => undefined, (err: unknown) => err)

await withRedis(t, async () => {
  t.test('a connection over a Unix socket (no TCP handle to reset) that stops answering is cut and comes back', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'link-unix-'))
    const path = join(dir, 'redis.sock')
    const server = spawn('redis-server', ['--port', '0', '--unixsocket', path, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    t.teardown(() => { server.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) })
    await eventually(async () => await new Promise<boolean>((resolve) => {
      const probe = connect(path, () => { probe.destroy(); resolve(true) })
      probe.on('error', () => { resolve(false) })
    }), 10000, 'the private redis-server listens on its socket')
    const client = new Redis({ ...clientOptions(), path, connectionName: 'unix' })
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    await ready(client)
    const stalls: Error[] = []
    const link = new Link(client, timeout, (err) => stalls.push(err))
    t.equal(await link.run(async (redis) => await redis.ping()), 'PONG')
    t.ok(await errorOf(link.run(async (redis) => await redis.blpop('never', 0))) instanceof NoAnswerError, 'the stall is caught')
    t.equal(stalls.length, 1)
    t.not(client.status, 'ready', 'the connection was cut: destroyed, since a Unix socket cannot be reset')
    await eventually(() => link.ready, 5000, 'ready again')
    t.equal(await link.run(async (redis) => await redis.ping()), 'PONG')
  })
})
