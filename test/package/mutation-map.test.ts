/**
 * scripts/mutation-map.mjs against the tree as it is: `npm run mutate` mutates the modules it
 * names with the test files it lists, so a renamed module or test file would make a run fail
 * (or quietly test nothing), and a new module would never be measured. Every source module
 * of plugin/, client/ and schemas/ is mapped or listed as unmapped with its reason.
 */
import t from 'tap'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { transform } from 'esbuild'

const root = fileURLToPath(new URL('../..', import.meta.url))
// @ts-expect-error a plain .mjs script, without types
const { mutationMap, unmapped, typesOnly } = await import('../../scripts/mutation-map.mjs') as {
  mutationMap: Record<string, string[]>
  unmapped: Record<string, string>
  typesOnly: string
}

/** Every TypeScript source module under plugin/, client/ and schemas/, as a path from the root. */
function sourceModules (): string[] {
  return ['plugin', 'client', 'schemas'].flatMap((dir) =>
    readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
      .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join('/')))
    .sort()
}

const modules = sourceModules()

t.test('every mapped module exists, with test files that exist and tap runs', async (t) => {
  const mapped = Object.keys(mutationMap)
  t.ok(mapped.length > 0, 'the map is not empty')
  t.same(mapped.filter((module) => !modules.includes(module)), [],
    'every key is a TypeScript module under plugin/, client/ or schemas/ that exists')
  const missing = mapped.flatMap((module) => mutationMap[module]
    .filter((file) => !/^test\/.+\.test\.ts$/.test(file) || !existsSync(join(root, file)))
    .map((file) => `${module}: ${file}`))
  t.same(missing, [], 'every listed test file is a test/**/*.test.ts file that exists')
  t.same(mapped.filter((module) => mutationMap[module].length === 0), [], 'every module has test files')
  t.same(mapped.filter((module) => new Set(mutationMap[module]).size !== mutationMap[module].length), [],
    'no module lists a test file twice')
})

t.test('no mapped test file needs Redis or a browser (it would skip under Stryker, and every mutant survive)', async (t) => {
  /** test/redis/ and test/browser/ hold the suites that need a live Redis or Chromium, and their gates. */
  const gatedSuite = (path: string): boolean => /^test\/(redis|browser)\//.test(path)
  const gated = [...new Set(Object.values(mutationMap).flat())]
    .filter((file) => existsSync(join(root, file)))
    .filter((file) => gatedSuite(file) || [...readFileSync(join(root, file), 'utf8').matchAll(/from '(\.\.?\/[^']+)'/g)]
      .some(([, specifier]) => gatedSuite(relative(root, join(root, dirname(file), specifier)).split(sep).join('/'))))
  t.same(gated, [])
})

t.test('every source module is mapped, or unmapped with a reason; never both', async (t) => {
  t.ok(modules.includes('plugin/index.ts') && modules.includes('client/index.ts') && modules.includes('schemas/index.ts'),
    'the walk sees the tree')
  t.same(modules.filter((module) => !(module in mutationMap) && !(module in unmapped)), [],
    'no module is in neither list (a new module goes into mutationMap, or into unmapped with its reason)')
  t.same(Object.keys(unmapped).filter((module) => module in mutationMap), [], 'no module is in both lists')
  t.same(Object.keys(unmapped).filter((module) => !modules.includes(module)), [], 'every unmapped module exists')
  t.same(Object.entries(unmapped).filter(([, reason]) => typeof reason !== 'string' || reason.trim() === '').map(([module]) => module), [],
    'every unmapped module has its reason')
})

t.test('a module left out as types-only has no code to mutate', async (t) => {
  const typeModules = Object.keys(unmapped).filter((module) => unmapped[module] === typesOnly)
  t.ok(typeModules.length > 0)
  for (const module of typeModules) {
    const { code } = await transform(readFileSync(join(root, module), 'utf8'), { loader: 'ts' })
    const statements = code.split('\n').map((line) => line.trim())
      .filter((line) => line !== '' && !/^export (\*|\{[^}]*\}) from "[^"]+";$/.test(line))
    t.same(statements.slice(0, 3), [], `${module}: nothing but types and re-exports`)
  }
})
