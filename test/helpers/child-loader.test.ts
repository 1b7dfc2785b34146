import t from 'tap'
import { typescriptLoaderArgs } from './child-loader.js'

t.test('under tap: only the TypeScript import, not the coverage or process tracking', async (t) => {
  const typescript = '--import=file:///p/node_modules/@tapjs/typescript/dist/esm/import.mjs'
  t.same(typescriptLoaderArgs([typescript, '--import=file:///p/node_modules/@tapjs/mock/dist/esm/import.mjs', '--enable-source-maps',
    '--import=file:///p/node_modules/@tapjs/processinfo/dist/esm/import.mjs']), [typescript])
})

t.test('under the mutation runner: the loader with its flag, not Stryker\'s hook', async (t) => {
  t.same(typescriptLoaderArgs(['-r', '/tmp/stryker-hook.cjs', '--no-warnings', '--import', './scripts/ts-loader.mjs']),
    ['--import', './scripts/ts-loader.mjs'])
})

t.test('this process: a child started with it loads TypeScript', async (t) => {
  t.ok(typescriptLoaderArgs().length > 0, JSON.stringify(process.execArgv))
})
