/**
 * `inject()` into an upgrade hook that never settles must not keep memory per call: each call
 * rejects at its timeout and leaves nothing behind (it used to keep both ends of its in-memory
 * connection, about 15 KB, for good). Measured in a forked process with --expose-gc
 * (fixtures/inject-retention.ts): heap after full GCs, over 400 calls.
 */
import t from 'tap'
import { once } from 'node:events'
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { typescriptLoaderArgs } from '../helpers/child-loader.js'
import { within } from '../helpers/deadline.js'

const fixture = fileURLToPath(new URL('./fixtures/inject-retention.ts', import.meta.url))

/** Bytes per call the fixture may report: JIT code and allocator noise, far below one connection's 15 KB. */
const allowedBytesPerCall = 2048

t.test('inject() into a hook that never settles: no heap retained per call', async (t) => {
  const child = fork(fixture, { execArgv: [...typescriptLoaderArgs(), '--expose-gc'] })
  const exited = once(child, 'exit')
  t.teardown(() => { if (child.exitCode === null) child.kill() })
  const [report] = await within(Promise.race([
    once(child, 'message'),
    exited.then(([code]) => { throw new Error(`the fixture exited (code ${String(code)}) before reporting`) })
  ]), 120_000, 'the fixture reports the heap retained per call') as [{ calls: number, bytesPerCall: number }]
  await within(exited, 10_000, 'the fixture exits once it reported')
  t.equal(report.calls, 400)
  t.ok(report.bytesPerCall < allowedBytesPerCall, `${report.bytesPerCall} bytes retained per call (at most ${allowedBytesPerCall})`)
})
