/**
 * The browser bundle (scripts/build-client.mjs → /channels/client.js): every feature of the
 * client in at most 12 KB gzipped, which means no schema compiler inside. Built fresh into a
 * temporary directory, so a stale dist/ cannot make this pass.
 */
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

const maxGzippedBytes = 12 * 1024

t.test('the bundle is at most 12 KB gzipped and carries no TypeBox', async (t) => {
  const dir = t.testdir()
  // @ts-expect-error a plain .mjs build script, without types
  const { buildClient } = await import('../../scripts/build-client.mjs') as { buildClient: (outdir: string) => Promise<string[]> }
  await buildClient(dir)
  const code = await readFile(join(dir, 'client.js'))
  const gzipped = gzipSync(code, { level: 9 }).length
  t.ok(gzipped <= maxGzippedBytes, `client.js is ${gzipped} bytes gzipped (${code.length} raw); the budget is ${maxGzippedBytes}`)

  const { sources } = JSON.parse(await readFile(join(dir, 'client.js.map'), 'utf8')) as { sources: string[] }
  t.same(sources.filter((source) => source.includes('@sinclair/typebox')), [], 'no TypeBox module in the bundle')
  for (const module of ['client/socket.ts', 'client/client.ts', 'client/channel.ts', 'client/push.ts', 'schemas/server-frames.ts', 'schemas/wire.ts']) {
    t.ok(sources.some((source) => source.endsWith(module)), `bundles ${module}`)
  }
})
