/**
 * The package as a user gets it. `npm pack` runs once, on a fresh copy of the repository (no
 * dist/: the `prepack` script must build); then:
 *
 * - the tarball holds what users import and the docs, and nothing else; the three entry points
 *   work from an installed copy, and its types check a strict app. This part needs no network:
 *   the tarball is extracted into an app's node_modules/fastify-channels and only the
 *   package's declared `dependencies` (plus the app's own `fastify`) are linked beside it from
 *   this project's node_modules, so a runtime import of anything undeclared fails, as it would
 *   after a real install;
 * - a new user's first minutes, for real: an empty app installs the tarball with the README's
 *   install line and nothing else from the registry (plus TypeScript and Node's types to
 *   compile), compiles the README's first example strictly and runs it. This part needs the
 *   npm registry: without it the test is skipped loudly, and fails under CI.
 */
import t from 'tap'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import WebSocket from 'ws'
import { PROTOCOL_VERSION } from '../../schemas/constants.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
const ci = !['', '0', 'false', undefined].includes(process.env.CI)

t.setTimeout(600_000) // the prepack build runs tsc over the whole project; the install fetches what the cache lacks

// Outside the project, so that nothing resolves from its node_modules by walking up.
const work = mkdtempSync(join(tmpdir(), 'fastify-channels-pack-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

/** What the tarball may hold: the compiled modules and their types, the browser bundle, the manifest and docs. */
const allowed = [
  /^package\.json$/, /^README\.md$/, /^LICENSE$/,
  /^dist\/(plugin|client|schemas)\/.+\.(js|d\.ts)$/,
  /^dist\/plugin\/broker\/redis\/lua\/[a-z-]+\.lua$/,
  /^dist\/browser\/client\.js(\.map)?$/,
  /^docs\/.+\.md$/
]
const required = [
  'package.json', 'README.md', 'LICENSE',
  'dist/plugin/index.js', 'dist/plugin/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts',
  'dist/schemas/index.js', 'dist/schemas/index.d.ts', 'dist/browser/client.js', 'dist/browser/client.js.map',
  // the Redis engine's scripts, read at run time beside its compiled code
  ...readdirSync(join(root, 'plugin', 'broker', 'redis', 'lua')).filter((file) => file.endsWith('.lua')).map((file) => `dist/plugin/broker/redis/lua/${file}`)
]

interface Packed { tarball: string, files: string[] }
interface PackedManifest {
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
}
let packing: Promise<Packed> | undefined

/** `npm pack` of a fresh copy of the repository, once for the whole file. */
async function pack (): Promise<Packed> {
  packing ??= (async () => {
    const src = join(work, 'src')
    mkdirSync(join(work, 'out'), { recursive: true })
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
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', join(work, 'out')], { cwd: src, maxBuffer: 16 * 1024 * 1024 })
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
    return { tarball: join(work, 'out', packed.filename), files: packed.files.map((file) => file.path) }
  })()
  return await packing
}

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

t.test('npm pack on a fresh copy builds, ships only dist and docs, and the installed entry points work', async (t) => {
  const { tarball, files } = await pack()
  t.same(files.filter((file) => !allowed.some((pattern) => pattern.test(file))), [], 'nothing but the compiled package and its docs')
  t.same(required.filter((file) => !files.includes(file)), [], 'every entry point, its types and the browser bundle')
  const docsLinks = [...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/\]\((docs\/[^)#\s]+)/g)].map(([, link]) => link)
  t.ok(docsLinks.length > 0, 'the README links to docs/')
  t.same([...new Set(docsLinks)].filter((link) => !files.includes(link)), [], 'every doc the README links to is in the tarball')

  const dir = join(work, 'linked')
  const modules = join(dir, 'app', 'node_modules')
  mkdirSync(modules, { recursive: true })
  await run('tar', ['xzf', tarball, '-C', modules])
  renameSync(join(modules, 'package'), join(modules, 'fastify-channels'))
  const packedManifest = JSON.parse(readFileSync(join(modules, 'fastify-channels', 'package.json'), 'utf8')) as PackedManifest
  t.match(packedManifest.peerDependencies, { fastify: /^\^5\./ }, 'fastify is a peer dependency: the shipped .d.ts files import it')
  t.notOk(packedManifest.peerDependenciesMeta?.fastify?.optional, 'and not an optional one')
  t.match(packedManifest, {
    repository: { url: /^git\+https:\/\/github\.com\/.+\.git$/ },
    homepage: /^https:\/\/github\.com\//,
    bugs: { url: /^https:\/\/github\.com\/.+\/issues$/ }
  }, 'where the source, the docs and the issues are (npm links them, and resolves the README\'s relative links against the repository)')
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

/**
 * The packages of the README's install line: the first `npm install` line naming
 * fastify-channels in the first ```sh block of its "## Install" section, as a user copies it.
 */
function readmeInstall (readme: string): string[] {
  const install = section(readme, 'Install')
  const block = /```sh\n([\s\S]*?)```/.exec(install)?.[1]
  if (block === undefined) throw new Error('the README\'s "## Install" section has no ```sh block')
  for (const line of block.split('\n')) {
    const words = line.replace(/#.*/, '').trim().split(/\s+/)
    if (words[0] !== 'npm' || !['install', 'i', 'add'].includes(words[1] ?? '')) continue
    const packages = words.slice(2).filter((word) => !word.startsWith('-'))
    if (packages.includes('fastify-channels')) return packages
  }
  throw new Error('the README\'s install block has no `npm install` line naming fastify-channels')
}

/** The README's first ```ts block under "## Example": the app a new user starts from. */
function readmeExample (readme: string): string {
  const example = /```ts\n([\s\S]*?)```/.exec(section(readme, 'Example'))?.[1]
  if (example === undefined) throw new Error('the README\'s "## Example" section has no ```ts block')
  return example
}

function section (readme: string, heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`)
  if (start === -1) throw new Error(`the README has no "## ${heading}" section`)
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end === -1 ? undefined : end)
}

/** The environment of a user's shell: none of the npm script and tap settings this test runs under. */
const userEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) =>
  !/^(NODE_OPTIONS$|npm_(package_|lifecycle_|config_(local_prefix|global_prefix|prefix|global)$))/i.test(name)))

async function registryReachable (): Promise<boolean> {
  return await run('npm', ['ping'], { env: userEnv, timeout: 20_000 }).then(() => true, () => false)
}

/** The URL the app logs once it listens (Fastify's "Server listening at ..." line), or a rejection if it exits first. */
async function listening (server: ChildProcess, ms: number): Promise<string> {
  let output = ''
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "Server listening at" line within ${ms} ms:\n${output}`)), ms)
    const seen = (chunk: Buffer): void => {
      output += chunk.toString()
      const urls = [...output.matchAll(/Server listening at (http:\/\/[^\s"]+)/g)].map(([, url]) => url)
      if (urls.length === 0) return
      clearTimeout(timer)
      resolve(urls.find((url) => url.includes('127.0.0.1')) ?? urls[0])
    }
    server.stdout?.on('data', seen)
    server.stderr?.on('data', seen)
    server.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the app exited (${String(code)}) before it listened:\n${output}`))
    })
  })
}

/** The first frame a WebSocket client gets from `url`. */
async function firstFrame (url: string): Promise<unknown> {
  const socket = new WebSocket(url)
  try {
    const [data] = await Promise.race([
      once(socket, 'message'),
      once(socket, 'error').then(([err]) => { throw err }),
      new Promise<never>((resolve, reject) => setTimeout(() => reject(new Error(`no frame from ${url} within 10 s`)), 10_000).unref())
    ]) as [Buffer]
    return JSON.parse(data.toString())
  } finally {
    socket.terminate()
  }
}

t.test('a new user: the README\'s install line into an empty app, its first example compiled strictly and run', async (t) => {
  if (!await registryReachable()) {
    const message = 'the npm registry is not reachable (npm ping): the README install test did not run'
    if (ci) {
      t.fail(`${message} (CI makes this a failure)`)
      return
    }
    process.stderr.write(`\n*** SKIPPED: ${message} ***\n\n`)
    t.test('the README install', { skip: message }, () => {})
    return
  }
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const { tarball } = await pack()
  const app = join(work, 'readme-app')
  mkdirSync(app, { recursive: true })
  writeFileSync(join(app, 'package.json'), '{ "name": "readme-app", "private": true, "type": "module" }\n')

  // Exactly the README's packages (the tarball in place of the name), and what the compile step needs.
  const packages = readmeInstall(readme).map((name) => name === 'fastify-channels' ? tarball : name)
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...packages, 'typescript@5', '@types/node@20'],
    { cwd: app, env: userEnv, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 })

  const example = readmeExample(readme)
  const server = example.replace(/\bport:\s*\d+/g, 'port: 0')
  t.ok(server !== example || example.includes('process.env.PORT'), 'the example listens on a port the test can change (port: N, or PORT)')
  writeFileSync(join(app, 'server.ts'), server)
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true,
      exactOptionalPropertyTypes: true,
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      target: 'ES2022',
      outDir: 'dist'
    },
    files: ['server.ts']
  }, null, 2))
  const tsc = await run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], { cwd: app, env: userEnv })
    .then(({ stdout }) => stdout, (err: { stdout: string }) => err.stdout || String(err))
  t.equal(tsc, '', 'the example compiles: strict, exactOptionalPropertyTypes, NodeNext, with the package\'s own .d.ts checked')
  if (tsc !== '') return

  const child = spawn(process.execPath, [join('dist', 'server.js')], { cwd: app, env: { ...userEnv, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const url = await listening(child, 30_000)

  const bundle = await fetch(`${url}/channels/client.js`)
  t.equal(bundle.status, 200, 'GET /channels/client.js: the browser client is served')
  t.match(bundle.headers.get('content-type'), /javascript/)
  t.match(await firstFrame(`${url.replace(/^http/, 'ws')}/ws`), { type: 'welcome', protocol: PROTOCOL_VERSION, sessionId: String },
    'a WebSocket on /ws is welcomed')

  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
})
