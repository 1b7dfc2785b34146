/**
 * Proves the contract API's types (test/types/contract.fixture.ts): the fixture type-checks,
 * and each `@ts-expect-error` line is an error of its own (strip the directives and exactly
 * those lines fail). Uses the TypeScript API in-process, on a virtual copy of the fixture.
 */
import t from 'tap'
import { describe, failingLines, fixtureChecker, lineOf, withoutExpectErrors } from '../helpers/type-check.js'

const { source, check } = fixtureChecker('test/types/contract.fixture.ts')

t.test('the fixture type-checks: right uses pass, every @ts-expect-error meets its error', async (t) => {
  t.same(describe(check()), [])
})

t.test('each @ts-expect-error line fails on its own, and nothing else does', async (t) => {
  const { stripped, expected } = withoutExpectErrors(source)
  t.ok(expected.length >= 12, `${expected.length} expected errors`)
  const diagnostics = check(stripped)
  t.same(failingLines(diagnostics), expected, 'exactly the lines after the directives fail', { diagnostics: describe(diagnostics) })
})

t.test('notAny really refuses any', async (t) => {
  const probe = source + 'notAny(JSON.parse(\'1\') as any, true)\n'
  const probeLine = probe.split('\n').length - 1
  t.same(check(probe).map(lineOf), [probeLine], 'an any value does not compile, and only that line fails')
})
