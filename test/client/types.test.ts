/**
 * Proves the client's end-to-end types: the fixture type-checks, and each of its
 * `@ts-expect-error` lines is an error of its own (strip the directives and every one of
 * those lines, and only those, fails). Uses the TypeScript API in-process, on a virtual copy.
 */
import t from 'tap'
import { describe, failingLines, fixtureChecker, withoutExpectErrors } from '../helpers/type-check.js'

const { source, check } = fixtureChecker('test/client/types/events.fixture.ts')

t.test('the fixture type-checks: right payloads pass, every @ts-expect-error line fails', async (t) => {
  t.same(describe(check()), [])
})

t.test('each @ts-expect-error line fails on its own', async (t) => {
  const { stripped, expected } = withoutExpectErrors(source)
  t.ok(expected.length >= 10, `${expected.length} expected errors`)
  const diagnostics = check(stripped)
  t.same(failingLines(diagnostics), expected, 'exactly the lines after the directives fail', { diagnostics: describe(diagnostics) })
})
