/**
 * The README's tables cannot drift from the code:
 * - the error table lists every coded error the plugin exports (each @fastify/error class of
 *   plugin/index.ts, with its code) and every FST_CHANNELS_* code the plugin's sources use (the
 *   HTTP refusals of an upgrade have no class), and nothing else;
 * - the client-code table lists every code the client makes itself;
 * - the option tables (server, history, client) name every option of `ChannelsOptions`,
 *   `HistoryOptions` and `ClientOptions` and no other, with the defaults the code applies;
 * - the first lines say what a new user needs: ESM and `"type": "module"`, an install line with
 *   `fastify` and every required peer, the Node lines, the EBADENGINE warning;
 * - links work where the README is read: GitHub, and npmjs.com (see the links test below).
 */
import t from 'tap'
import * as api from '../../plugin/index.js'
import * as errorModule from '../../plugin/errors.js'
import { resolveHistory, resolveOptions } from '../../plugin/options.js'
import { ClientErrorCodes } from '../../client/errors.js'
import * as clientApi from '../../client/index.js'
import { defaultProblem, literal, optionCell } from './defaults.js'
import { fencedLines, leadingCode, readDoc, section, tableRows } from './markdown.js'
import { interfaceMembers, literalFirstArguments, stringLiterals } from './sources.js'

const readme = readDoc('README.md')
const packageJson = JSON.parse(readDoc('package.json')) as {
  type?: string
  engines?: { node?: string }
  repository?: string | { url?: string }
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
}

// ---- errors -------------------------------------------------------------------------------------

/** The code of an @fastify/error class, or undefined for anything else. */
function codeOf (value: unknown): string | undefined {
  if (typeof value !== 'function') return undefined
  const prototype = (value as { prototype?: Record<symbol, unknown> }).prototype
  if (prototype?.[Symbol.for('fastify-error-generic')] !== true) return undefined
  return (new (value as new (...args: string[]) => { code: string })('x', 'y')).code
}

function codedClasses (module: Record<string, unknown>): Map<string, string> {
  const classes = new Map<string, string>()
  for (const [name, value] of Object.entries(module)) {
    const code = codeOf(value)
    if (code !== undefined) classes.set(name, code)
  }
  return classes
}

const errorsSection = section(readme, 2, 'Errors').body
const errorRows = tableRows(errorsSection)
const serverRows = errorRows.filter((cells) => leadingCode(cells[0])?.startsWith('FST_CHANNELS_') === true)
const clientRows = errorRows.filter((cells) => cells.length === 2)

t.test('every coded error class of errors.ts is exported by the package', async (t) => {
  const exported = codedClasses(api)
  for (const [name, code] of codedClasses(errorModule)) {
    t.equal(exported.get(name), code, `${name} (${code}) is a named export of plugin/index.ts`)
  }
  t.ok(exported.size >= 11, `${exported.size} coded classes found (the walk works)`)
})

t.test('the README error table: one row per exported error, with its code', async (t) => {
  const rows = new Map(serverRows.map((cells) => [leadingCode(cells[0]), cells]))
  for (const [name, code] of codedClasses(api)) {
    const cells = rows.get(code)
    t.ok(cells !== undefined, `${code} has a row`)
    t.equal(cells === undefined ? undefined : leadingCode(cells[1]), name, `${code}: its export is named ${name}`)
  }
})

t.test('the README error table: every FST_CHANNELS_ code the plugin uses, and no other', async (t) => {
  const used = stringLiterals('plugin', /^FST_CHANNELS_[A-Z_]+$/)
  t.ok(used.has('FST_CHANNELS_FORBIDDEN_ORIGIN') && used.has('FST_CHANNELS_TOO_MANY_CONNECTIONS'), 'the source walk finds the HTTP refusal codes')
  const documented = serverRows.map((cells) => leadingCode(cells[0]) as string)
  for (const [code, files] of used) t.ok(documented.includes(code), `${code} (${files.join(', ')}) has a row`)
  for (const code of documented) t.ok(used.has(code), `${code}: the plugin uses this code`)
  t.equal(new Set(documented).size, documented.length, 'one row per code')
})

/** Every code the client makes itself: `ClientErrorCodes` and the literal codes it constructs errors with. */
function clientCodes (): Set<string> {
  return new Set([...Object.values(ClientErrorCodes), ...literalFirstArguments('client', 'ChannelsClientError')])
}

t.test('the README client-code table: every code the client makes itself, and no other', async (t) => {
  const codes = clientCodes()
  t.ok(codes.has('BAD_FRAME') && codes.has('TIMEOUT'), 'the walk finds literal and ClientErrorCodes codes')
  t.same(clientRows.map((cells) => leadingCode(cells[0])).sort(), [...codes].sort())
})

t.test('docs/client.md\'s error table: every code the client makes itself', async (t) => {
  const rows = tableRows(section(readDoc('docs/client.md'), 2, 'Errors').body)
  const documented = rows.map((cells) => leadingCode(cells[0])).filter((code) => code !== undefined && /^[A-Z_]+$/.test(code))
  t.same(documented.sort(), [...clientCodes()].sort())
})

// ---- options ------------------------------------------------------------------------------------

const optionRows = tableRows(section(readme, 2, 'Options').body).map((cells) => {
  const cell = optionCell(cells[0])
  if (cell === undefined) throw new Error(`not an option cell: ${cells[0]}`)
  return cell
})

t.test('the README options table: every option of ChannelsOptions, and no other', async (t) => {
  const members = interfaceMembers('plugin/options.ts', 'ChannelsOptions')
  t.ok(members.length >= 14, `${members.length} options declared`)
  t.same(optionRows.map((row) => row.name).sort(), [...members].sort())
  for (const { name } of optionRows) {
    t.doesNotThrow(() => resolveOptions({ [name]: undefined }), `${name}: an option the plugin accepts`)
  }
  t.throws(() => resolveOptions({ notAnOption: 1 } as never), { code: 'FST_CHANNELS_INVALID_OPTION' }, 'and an unknown one is refused')
})

t.test('the README options table: every default is the one the code applies', async (t) => {
  for (const { name, fallback } of optionRows) {
    t.not(fallback, undefined, `${name}: has a [default]`)
    if (fallback !== undefined) t.equal(defaultProblem(name, fallback), undefined, `${name} [${fallback}]`)
  }
})

t.test('the README history option: its sub-options and their defaults', async (t) => {
  const row = tableRows(section(readme, 2, 'Options').body).find((cells) => cells[0].startsWith('`history`'))
  const shape = /`\{ ([^}]+) \}`/.exec(row?.[1] ?? '')?.[1] ?? ''
  const named = [...shape.matchAll(/(\w+)\?(?: \[(\d+)\])?/g)]
  t.same(named.map((match) => match[1]).sort(), interfaceMembers('plugin/options.ts', 'HistoryOptions').sort(), 'the keys of { ... }')
  const resolved = resolveHistory(true) as unknown as Record<string, unknown>
  for (const [, key, fallback] of named) {
    if (fallback !== undefined) t.equal(Number(fallback), resolved[key], `history.${key} [${fallback}]`)
  }
  t.ok(named.some((match) => match[2] !== undefined), 'some sub-option shows its default')
})

/** The client's options with an exported default constant, by name; `reconnect` has none (`?? true` in client.ts). */
const clientDefaults: Record<string, unknown> = {
  timeout: clientApi.defaultTimeout,
  maxQueue: clientApi.defaultMaxQueue,
  heartbeat: clientApi.defaultHeartbeat,
  reconnect: true
}

t.test('the README client options: every option of ClientOptions, with its default', async (t) => {
  const sentence = section(readme, 2, 'The client').body.split(/\n\s*\n/).find((paragraph) => paragraph.startsWith('Options: ')) ?? ''
  const named = [...sentence.matchAll(/`(\w+)`(?: \[`([^`]+)`\])?/g)]
    .filter(([, name]) => !['false', 'true'].includes(name))
  const members = interfaceMembers('client/options.ts', 'ClientOptions')
  t.same(named.map((match) => match[1]).sort(), [...members].sort(), 'the options named after "Options:"')
  for (const [, name, fallback] of named) {
    if (Object.hasOwn(clientDefaults, name)) t.same(fallback === undefined ? undefined : literal(`\`${fallback}\``), clientDefaults[name], `${name} [${fallback ?? 'none'}]`)
  }
})

t.test('docs/client.md options table: every option of ClientOptions, with its default', async (t) => {
  const rows = tableRows(section(readDoc('docs/client.md'), 2, 'Options').body)
  t.same(rows.map((cells) => leadingCode(cells[0])).sort(), interfaceMembers('client/options.ts', 'ClientOptions').sort())
  for (const [option, fallback] of rows) {
    const name = leadingCode(option) as string
    if (Object.hasOwn(clientDefaults, name)) t.same(literal(fallback), clientDefaults[name], `${name}: ${fallback}`)
  }
})

// ---- the first lines ----------------------------------------------------------------------------

const opening = readme.split('\n## ')[0]

t.test('the README opens with ESM and "type": "module"', async (t) => {
  t.equal(packageJson.type, 'module', 'the package is ESM')
  t.match(opening, /ESM only/)
  t.match(opening, /"type": "module"/)
})

t.test('the install line installs fastify and every required peer', async (t) => {
  const install = fencedLines(section(readme, 2, 'Install').body, 'sh')[0] ?? ''
  const packages = install.replace(/#.*/, '').trim().split(/\s+/).slice(2)
  t.same(install.split(/\s+/).slice(0, 2), ['npm', 'install'], install)
  const peers = Object.keys(packageJson.peerDependencies ?? {})
    .filter((name) => packageJson.peerDependenciesMeta?.[name]?.optional !== true)
  for (const name of new Set(['fastify', 'fastify-channels', ...peers])) t.ok(packages.includes(name), `${name} is installed`)
})

t.test('the Node lines the README names are the engines and the tested ones', async (t) => {
  const install = section(readme, 2, 'Install').body
  const engine = /^>=\s*(\d+)$/.exec(packageJson.engines?.node ?? '')?.[1]
  t.ok(engine !== undefined, `engines.node is ">= N" (${packageJson.engines?.node ?? 'absent'})`)
  const minimums = [...readme.matchAll(/Node ≥ (\d+)/g)].map((match) => match[1])
  t.ok(minimums.length > 0, 'the README names the least Node version')
  for (const minimum of minimums) t.equal(minimum, engine, `"Node ≥ ${minimum}" is engines.node`)
  const tested = /CI runs every suite on Node (\d+)/.exec(install)?.[1]
  t.equal(tested, engine, 'the tested line is named, and it is the least one')
  // Under CI this very test runs on the tested line: the claim is checked where it is made.
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') {
    t.equal(process.versions.node.split('.')[0], tested, `CI runs Node ${process.versions.node}`)
  }
  t.match(install, /EBADENGINE/, 'the EBADENGINE warning is explained')
})

// ---- links --------------------------------------------------------------------------------------

/*
 * npmjs.com renders the README with its relative links resolved against the package's
 * `repository` (for a GitHub repository: https://github.com/<owner>/<repo>/blob/HEAD/<path>),
 * so `docs/protocol.md` works on npm as on GitHub, as long as `repository` names the GitHub
 * repository. Two kinds of link break on npm and are refused here: a root-absolute one
 * (`/docs/x.md`: npm resolves it against npmjs.com) and one that leaves the package's folder
 * (`../x`: npm joins it to the repository URL and escapes /blob/HEAD). Relative links are kept
 * rather than written absolute: they also work on GitHub at any commit, in an editor and in the
 * tarball, and code-blocks.test.ts checks that each leads to a file and a heading.
 */
t.test('the README\'s links work on npmjs.com too', async (t) => {
  const repository = typeof packageJson.repository === 'string' ? packageJson.repository : packageJson.repository?.url
  t.match(repository ?? '', /github\.com\/fastify-channels\/fastify-channels(\.git)?$/, 'package.json repository names the GitHub repository')
  const text = readme.replace(/^```[\s\S]*?^```/gm, '')
  const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1])
  t.ok(links.length > 20, `${links.length} links`)
  for (const link of links) {
    if (/^[a-z]+:/.test(link) || link.startsWith('#')) continue
    t.notOk(link.startsWith('/'), `${link}: not root-absolute`)
    t.notOk(link.startsWith('../'), `${link}: stays inside the package`)
  }
})
