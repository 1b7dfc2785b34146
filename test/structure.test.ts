/**
 * The source layout rules live in eslint.config.js (run by `npm test` through `npm run lint`):
 * layers that point one way (import-x/no-restricted-paths), no import cycle (import-x/no-cycle),
 * a warning past 500 lines (max-lines). Lint passing proves nothing if a rule never fires, so
 * this test plants each fault in a scratch copy of the layout and sees the rule catch it.
 */
import t from 'tap'
import { ESLint } from 'eslint'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

function scratch (files: Record<string, string>): string {
  const base = mkdtempSync(join(tmpdir(), 'structure-'))
  copyFileSync(join(root, 'eslint.config.js'), join(base, 'eslint.config.js'))
  copyFileSync(join(root, 'tsconfig.json'), join(base, 'tsconfig.json'))
  writeFileSync(join(base, 'package.json'), '{ "type": "module" }\n')
  symlinkSync(join(root, 'node_modules'), join(base, 'node_modules'), 'dir')
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(base, path)), { recursive: true })
    writeFileSync(join(base, path), text)
  }
  return base
}

async function ruleHits (base: string, paths: string[]): Promise<string[]> {
  const eslint = new ESLint({ cwd: base })
  const results = await eslint.lintFiles(paths)
  return results.flatMap((result) => result.messages.map((message) => `${result.filePath.slice(base.length + 1)}: ${message.ruleId ?? 'parse'}`))
}

t.test('a broker that imports the node, and channel state that imports the connection, are refused', async (t) => {
  const base = scratch({
    'plugin/node/server.ts': 'export const node = 1\n',
    'plugin/connection/membership.ts': 'export const member = 1\n',
    'plugin/broker/types.ts': "import { node } from '../node/server.js'\nexport const broker = node\n",
    'plugin/history/service.ts': "import { member } from '../connection/membership.js'\nexport const history = member\n",
    'client/client.ts': "import { node } from '../plugin/node/server.js'\nexport const client = node\n"
  })
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const hits = await ruleHits(base, ['plugin', 'client'])
  t.ok(hits.includes('plugin/broker/types.ts: import-x/no-restricted-paths'), hits.join('\n'))
  t.ok(hits.includes('plugin/history/service.ts: import-x/no-restricted-paths'), hits.join('\n'))
  t.ok(hits.includes('client/client.ts: import-x/no-restricted-paths'), hits.join('\n'))
})

t.test('an import cycle is refused, and a long file is warned about', async (t) => {
  const base = scratch({
    'plugin/a.ts': "import { b } from './b.js'\nexport const a = (): number => b()\n",
    'plugin/b.ts': "import { a } from './a.js'\nexport const b = (): number => a()\n",
    'plugin/long.ts': 'export const long = 1\n' + 'export const more = 2\n'.repeat(500).replace(/more = 2/g, (_, i: number) => `more${i} = 2`)
  })
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const hits = await ruleHits(base, ['plugin'])
  t.ok(hits.includes('plugin/a.ts: import-x/no-cycle'), hits.join('\n'))
  t.ok(hits.includes('plugin/b.ts: import-x/no-cycle'), hits.join('\n'))
  t.ok(hits.includes('plugin/long.ts: max-lines'), hits.join('\n'))
})
