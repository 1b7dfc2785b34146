/**
 * Every environment variable the chat reads is in the environment table of its README and of
 * the project README's section "The example chat", and no table lists one it does not read.
 * The announce command of both READMEs is in short lines.
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const chatDir = join(root, 'example-chat')

/** Variables read as `process.env.NAME` or `env.NAME` (run.ts takes the environment as `env`); npm's own are not the user's to set. */
function variablesRead (): string[] {
  const names = new Set<string>()
  for (const file of readdirSync(chatDir).filter((name) => name.endsWith('.ts'))) {
    const source = readFileSync(join(chatDir, file), 'utf8')
    for (const [, name] of source.matchAll(/\benv\.([A-Za-z_][A-Za-z0-9_]*)/g)) if (!name.startsWith('npm_')) names.add(name)
  }
  return [...names].sort()
}

/** The variables named in the first column of the markdown table(s) of `text`. */
function tabled (text: string): string[] {
  const names = new Set<string>()
  for (const line of text.split('\n')) {
    const first = /^\| ([^|]+) \|/.exec(line)?.[1]
    if (first === undefined) continue
    for (const [, name] of first.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(name)
  }
  return [...names].sort()
}

function section (markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`)
  if (start === -1) throw new Error(`no section "${heading}"`)
  const end = markdown.indexOf('\n## ', start + 1)
  return markdown.slice(start, end === -1 ? undefined : end)
}

const read = variablesRead()
const chatReadme = readFileSync(join(chatDir, 'README.md'), 'utf8')
const projectSection = section(readFileSync(join(root, 'README.md'), 'utf8'), 'The example chat')

t.test('the chat reads what its tables list', async (t) => {
  t.same(read, ['ADMIN_TOKEN', 'CHAT_ORIGINS', 'CHAT_PASSWORD', 'CHAT_REDIS_PREFIX', 'HOST', 'LOG_FORMAT', 'LOG_LEVEL', 'NATS_URL', 'PORT', 'REDIS_URL', 'WORKERS'],
    'the variables example-chat/*.ts reads')
  t.same(tabled(chatReadme), read, 'example-chat/README.md lists each')
  t.same(tabled(projectSection), read, 'README.md, "The example chat", lists each')
})

t.test('the curl command of each README is in short lines that make one command', async (t) => {
  for (const [name, text] of [['example-chat/README.md', chatReadme], ['README.md', projectSection]]) {
    const command = /```sh\n(curl [\s\S]*?)\n```/.exec(text)?.[1]
    t.ok(command, `${name} shows the curl command`)
    const lines = (command ?? '').split('\n')
    t.ok(lines.length >= 3 && lines.every((line) => line.length <= 60), `${name}: ${lines.length} lines of at most 60 characters`)
    t.equal((command ?? '').replace(/ \\\n\s*/g, ' '),
      'curl -H content-type:application/json -d \'{"text":"Deploy at 5"}\' http://127.0.0.1:3000/rooms/lobby/announce', `${name}: one command`)
  }
})
