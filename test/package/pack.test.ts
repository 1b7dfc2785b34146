/**
 * The package as a user gets it: `npm pack` on a fresh copy of the repository (no dist/: the
 * `prepack` script must build), a tarball that holds what users import and nothing else, and
 * the three entry points working from an installed copy.
 *
 * Installing the tarball with `npm install` would need the registry (the npm cache here cannot
 * serve its dependencies offline), so the tarball is extracted into an app's
 * node_modules/fastify-channels and only the package's declared `dependencies` (plus the
 * app's own `fastify`) are linked beside it from this project's node_modules: a runtime import
 * of anything undeclared fails, as it would after a real install.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { PROTOCOL_VERSION } from '../../schemas/constants.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }

t.setTimeout(300_000) // the prepack build runs tsc over the whole project

/** What the tarball may hold: the compiled modules and their types, the browser bundle, the manifest and docs. */
const allowed = [
  /^package\.json$/, /^README\.md$/, /^LICENSE$/,
  /^dist\/(plugin|client|schemas)\/.+\.(js|d\.ts)$/,
  /^dist\/plugin\/broker\/redis\/lua\/[a-z-]+\.lua$/,
  /^dist\/browser\/client\.js(\.map)?$/
]
const required = [
  'package.json', 'README.md', 'LICENSE',
  'dist/plugin/index.js', 'dist/plugin/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts',
  'dist/schemas/index.js', 'dist/schemas/index.d.ts', 'dist/browser/client.js', 'dist/browser/client.js.map',
  // the Redis engine's scripts, read at run time beside its compiled code
  ...readdirSync(join(root, 'plugin', 'broker', 'redis', 'lua')).filter((file) => file.endsWith('.lua')).map((file) => `dist/plugin/broker/redis/lua/${file}`)
]

/** Imports the three entry points by name, serves a chat round trip and the browser bundle. */
const smokeScript = `
import Fastify from 'fastify'
import WebSocket from 'ws'
import fastifyChannels, { ChannelError } from 'fastify-channels'
import { connect } from 'fastify-channels/client'
import { PROTOCOL_VERSION, decodeServerFrame } from 'fastify-channels/schemas'

const app = Fastify()
await app.register(fastifyChannels)
app.channels.on('message', { event: 'ping' }, () => 'pong')
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address()
const client = connect('ws://127.0.0.1:' + port + '/ws', { WebSocket })
await client.subscribe('room')
const got = new Promise((resolve) => client.on('news', resolve))
await app.broadcastChannel('room', { n: 1 }, { event: 'news' })
const bundle = await app.inject('/channels/client.js')
console.log(JSON.stringify({
  reply: await client.request('ping', null),
  news: await got,
  bundle: bundle.statusCode,
  protocol: PROTOCOL_VERSION,
  decodes: decodeServerFrame('{"type":"ack","id":1}').ok,
  channelError: new ChannelError('X', 'y').code
}))
client.close()
await app.close()
`

/** A strict app against the published types: the documented lines, and one wrong payload. */
const typesScript = `
import Fastify from 'fastify'
import WebSocket from 'ws'
import { Type } from '@sinclair/typebox'
import fastifyChannels, { ChannelError } from 'fastify-channels'
import { connect, type EventMap } from 'fastify-channels/client'
import { ServerFrame, type ErrorCode } from 'fastify-channels/schemas'

declare module 'fastify-channels' {
  interface ChannelContext { nick?: string }
}

const Chat = Type.Object({ text: Type.String() })
const app = Fastify()
await app.register(fastifyChannels, { path: '/ws' })
app.channels.on('message', { event: 'chat', schema: Chat }, (socket, data) => {
  const nick: string | undefined = socket.context.nick
  if (data.text === '') throw new ChannelError('EMPTY', 'say something')
  return { text: data.text, nick }
})
await app.broadcastChannel('room', { text: 'hi' }, { event: 'chat' })
const client = connect<EventMap<{ chat: typeof Chat }>>('ws://127.0.0.1:3000/ws', { WebSocket })
client.send('chat', { text: 'hi' })
// @ts-expect-error text is a string
client.send('chat', { text: 1 })
const code: ErrorCode = 'BAD_FRAME'
export { ServerFrame, code }
`

t.test('npm pack on a fresh copy builds, ships only dist, and the installed entry points work', async (t) => {
  // Outside the project, so that nothing resolves from its node_modules by walking up.
  const dir = mkdtempSync(join(tmpdir(), 'fastify-channels-pack-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const src = join(dir, 'src')
  for (const sub of ['src', 'out', 'app/node_modules']) mkdirSync(join(dir, sub), { recursive: true })
  // A fresh clone: the tracked (and new, not ignored) files, no dist/.
  const { stdout: listed } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: root })
  for (const file of listed.split('\0').filter((file) => file !== '' && !file.startsWith('test/') && !file.startsWith('bench/'))) {
    mkdirSync(dirname(join(src, file)), { recursive: true })
    try {
      cpSync(join(root, file), join(src, file))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err // deleted, not yet committed
    }
  }
  symlinkSync(join(root, 'node_modules'), join(src, 'node_modules'), 'dir')

  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', join(dir, 'out')], { cwd: src, maxBuffer: 16 * 1024 * 1024 })
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = packed.files.map((file) => file.path)
  t.same(files.filter((file) => !allowed.some((pattern) => pattern.test(file))), [], 'nothing but the compiled package')
  t.same(required.filter((file) => !files.includes(file)), [], 'every entry point, its types and the browser bundle')

  const modules = join(dir, 'app', 'node_modules')
  await run('tar', ['xzf', join(dir, 'out', packed.filename), '-C', modules])
  renameSync(join(modules, 'package'), join(modules, 'fastify-channels'))
  // The app's own: fastify, and for its TypeScript the Node and ws types.
  for (const name of [...Object.keys(manifest.dependencies), 'fastify', '@types/node', '@types/ws']) {
    mkdirSync(dirname(join(modules, name)), { recursive: true })
    symlinkSync(join(root, 'node_modules', name), join(modules, name), 'dir')
  }
  writeFileSync(join(dir, 'app', 'package.json'), '{ "name": "app", "private": true, "type": "module" }\n')
  writeFileSync(join(dir, 'app', 'smoke.js'), smokeScript)
  const smoke = await run(process.execPath, ['smoke.js'], { cwd: join(dir, 'app'), timeout: 60_000 })
  t.same(JSON.parse(smoke.stdout), {
    reply: 'pong', news: { n: 1 }, bundle: 200, protocol: PROTOCOL_VERSION, decodes: true, channelError: 'X'
  }, 'plugin, client and schemas imported by package name; the bundle is served from the installed copy')

  // The shipped types, as a strict TypeScript app resolves them through `exports`.
  writeFileSync(join(dir, 'app', 'check.ts'), typesScript)
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const checked = await run(process.execPath, [tsc, '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--target', 'es2022', '--types', 'node', '--noEmit', 'check.ts'], { cwd: join(dir, 'app') }).catch((err: { stdout: string }) => err)
  t.equal(checked.stdout, '', 'the published .d.ts files type-check a strict app, augmentation included')
})
