/**
 * The source layout rules (STYLE.md): no source file over 300 lines, no import cycle.
 * The checker is scripts/check-structure.mjs; it is first shown to catch both faults.
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
// @ts-expect-error a plain .mjs script without type declarations
import { checkStructure } from '../scripts/check-structure.mjs'

const check = checkStructure as (base?: string) => string[]

t.test('the checker finds a cycle (type-only imports included) and a long file', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'structure-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  mkdirSync(join(base, 'plugin'))
  writeFileSync(join(base, 'plugin', 'a.ts'), "import type { B } from './b.js'\nexport type A = B\n")
  writeFileSync(join(base, 'plugin', 'b.ts'), "import { c } from './c.js'\nimport type { A } from './a.js'\nexport type B = A | typeof c\n")
  writeFileSync(join(base, 'plugin', 'c.ts'), 'export const c = 1\n' + '// filler\n'.repeat(300))
  const problems = check(base)
  t.equal(problems.length, 2, problems.join('\n'))
  t.match(problems, [/^plugin\/c\.ts: 301 lines/, /^import cycle: plugin\/a\.ts → plugin\/b\.ts → plugin\/a\.ts$/])
})

t.test('plugin, schemas and client hold no file over 300 lines and no import cycle', async (t) => {
  t.same(check(), [])
})
