/**
 * docs/architecture.md stays in step with the tree: its module map lists every source file of
 * plugin/, client/ and schemas/ and nothing else, each folder's table sits under that folder's
 * heading, and the path of one `fastify.broadcastChannel` names real files, at most ten.
 */
import t from 'tap'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const doc = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8')

function sourcesIn (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourcesIn(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [relative(root, path)] : []
  })
}

/** The text of the section that starts with `heading` (up to the next heading of its level). */
function section (heading: string): string {
  const start = doc.indexOf(`\n${heading}\n`)
  if (start === -1) return ''
  const level = heading.split(' ')[0]
  const next = doc.indexOf(`\n${level} `, start + heading.length + 2)
  return doc.slice(start, next === -1 ? undefined : next)
}

/** `| \`path\` | job |` rows of the module map, with the folder heading each sits under. */
function mapRows (): Array<{ file: string, folder: string }> {
  const rows: Array<{ file: string, folder: string }> = []
  let folder = ''
  for (const line of section('## Module map').split('\n')) {
    const heading = /^### `([^`]+)\/`$/.exec(line)
    if (heading !== null) folder = heading[1]
    const row = /^\| `([^`]+\.ts)` \|/.exec(line)
    if (row !== null) rows.push({ file: row[1], folder })
  }
  return rows
}

t.test('the module map lists every source file, and only those', async (t) => {
  const listed = mapRows().map((row) => row.file)
  const actual = ['plugin', 'client', 'schemas'].flatMap((dir) => sourcesIn(join(root, dir)))
  t.ok(listed.length > 0, 'the map has rows')
  t.same(listed.filter((file) => !actual.includes(file)), [], 'no file is listed that does not exist')
  t.same(actual.filter((file) => !listed.includes(file)), [], 'every source file is listed')
  t.equal(new Set(listed).size, listed.length, 'no file is listed twice')
})

t.test('each row sits under its own folder\'s heading', async (t) => {
  for (const { file, folder } of mapRows()) t.equal(dirname(file), folder, file)
})

t.test('every folder of plugin/ opens with a README saying what it owns and may import', async (t) => {
  const folders = new Set(['plugin', 'client', 'schemas', ...mapRows().map((row) => dirname(row.file))])
  for (const folder of folders) {
    const readme = join(root, folder, 'README.md')
    t.ok(existsSync(readme), `${folder}/README.md exists`)
    if (!existsSync(readme)) continue
    const text = readFileSync(readme, 'utf8')
    t.match(text, new RegExp(`^# ${folder.replace(/\//g, '\\/')}\\/`), `${folder}/README.md names its folder first`)
    if (folder !== 'plugin') t.match(text, /May import|never imports|Never `plugin\/`/, `${folder}/README.md says what it may import`)
  }
})

t.test('the path of one fastify.broadcastChannel names real files, at most ten', async (t) => {
  const path = section('## The path of one message')
  t.not(path, '', 'the section is there')
  const files = new Set([...path.matchAll(/`((?:plugin|schemas|client)\/[^`]+\.ts)`/g)].map((match) => match[1]))
  t.ok(files.size >= 5, `it names the files it crosses (${files.size})`)
  t.ok(files.size <= 10, `at most 10 source files (${[...files].join(', ')})`)
  for (const file of files) t.ok(existsSync(join(root, file)), `${file} exists`)
})
