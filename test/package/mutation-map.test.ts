/**
 * scripts/mutation-map.mjs against the tree as it is: `npm run mutate` mutates the modules it
 * names with the test files it lists, so a renamed module or test file would make a run fail
 * (or quietly test nothing), and a new module would never be measured. Every source module
 * of plugin/, client/ and schemas/ is mapped (in the plain map, or for the Redis broker in the
 * Redis map, run only when Redis answers) or listed as unmapped with its reason.
 */
import t from 'tap'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { transform } from 'esbuild'

const root = fileURLToPath(new URL('../..', import.meta.url))
// @ts-expect-error a plain .mjs script, without types
const { mutationMap, redisMutationMap, unmapped, typesOnly } = await import('../../scripts/mutation-map.mjs') as {
  mutationMap: Record<string, string[]>
  redisMutationMap: Record<string, string[]>
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

/**
 * The test files of `files` that are, or import, a gated suite: test/redis/ and test/browser/ hold
 * the suites that need a live Redis or Chromium, and their gates (`which` may narrow it to one).
 */
function gatedFiles (files: string[], which: RegExp = /^test\/(redis|browser)\//): string[] {
  return [...new Set(files)]
    .filter((file) => existsSync(join(root, file)))
    .filter((file) => which.test(file) || [...readFileSync(join(root, file), 'utf8').matchAll(/from '(\.\.?\/[^']+)'/g)]
      .some(([, specifier]) => which.test(relative(root, join(root, dirname(file), specifier)).split(sep).join('/'))))
}

for (const [name, map] of [['mutationMap', mutationMap], ['redisMutationMap', redisMutationMap]] as const) {
  t.test(`${name}: every mapped module exists, with test files that exist and tap runs`, async (t) => {
    const mapped = Object.keys(map)
    t.ok(mapped.length > 0, 'the map is not empty')
    t.same(mapped.filter((module) => !modules.includes(module)), [],
      'every key is a TypeScript module under plugin/, client/ or schemas/ that exists')
    const missing = mapped.flatMap((module) => map[module]
      .filter((file) => !/^test\/.+\.test\.ts$/.test(file) || !existsSync(join(root, file)))
      .map((file) => `${module}: ${file}`))
    t.same(missing, [], 'every listed test file is a test/**/*.test.ts file that exists')
    t.same(mapped.filter((module) => map[module].length === 0), [], 'every module has test files')
    t.same(mapped.filter((module) => new Set(map[module]).size !== map[module].length), [],
      'no module lists a test file twice')
  })
}

t.test('no test file of the plain map needs Redis or a browser (it would skip under Stryker, and every mutant survive)', async (t) => {
  t.same(gatedFiles(Object.values(mutationMap).flat()), [])
})

t.test('the Redis map: Redis broker modules only, whose tests need Redis and no browser', async (t) => {
  t.same(Object.keys(redisMutationMap).filter((module) => !module.startsWith('plugin/broker/redis/')), [],
    'only modules of plugin/broker/redis/ (mutate.mjs gives its runs Redis, CI=true and a cluster)')
  t.same(gatedFiles(Object.values(redisMutationMap).flat(), /^test\/browser\//), [], 'no test file needs a browser')
  // a module whose tests all run without Redis belongs to the plain map (it runs everywhere)
  t.same(Object.keys(redisMutationMap).filter((module) => gatedFiles(redisMutationMap[module]).length === 0), [],
    'every module has a test file that needs Redis')
})

t.test('every module of the Redis broker is in exactly one of the maps or unmapped', async (t) => {
  const redisModules = modules.filter((module) => module.startsWith('plugin/broker/redis/'))
  t.ok(redisModules.includes('plugin/broker/redis/broker.ts'), 'the walk sees the Redis broker')
  const places = (module: string): string[] => [
    ...module in mutationMap ? ['mutationMap'] : [],
    ...module in redisMutationMap ? ['redisMutationMap'] : [],
    ...module in unmapped ? ['unmapped'] : []
  ]
  t.same(redisModules.filter((module) => places(module).length !== 1).map((module) => `${module}: ${places(module).join(', ') || 'none'}`), [])
})

t.test('every source module is mapped, or unmapped with a reason; never both', async (t) => {
  t.ok(modules.includes('plugin/index.ts') && modules.includes('client/index.ts') && modules.includes('schemas/index.ts'),
    'the walk sees the tree')
  t.same(modules.filter((module) => !(module in mutationMap) && !(module in redisMutationMap) && !(module in unmapped)), [],
    'no module is in none of the lists (a new module goes into mutationMap, or into unmapped with its reason)')
  t.same(Object.keys(unmapped).filter((module) => module in mutationMap || module in redisMutationMap), [], 'no unmapped module is mapped')
  t.same(Object.keys(redisMutationMap).filter((module) => module in mutationMap), [], 'no module is in both maps')
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
