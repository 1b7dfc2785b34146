/**
 * Proves the contract API's types (test/types/contract.fixture.ts): the fixture type-checks,
 * and each `@ts-expect-error` line is an error of its own (strip the directives and exactly
 * those lines fail). Uses the TypeScript API in-process, on a virtual copy of the fixture.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../..', import.meta.url))
const fixture = join(root, 'test', 'types', 'contract.fixture.ts')

function compilerOptions (): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.json')
  const config = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path))
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(configPath))
  return { ...parsed.options, noEmit: true, incremental: false }
}

let previous: ts.Program | undefined

/** The diagnostics of `fixture` when it reads `text`. */
function check (text: string): readonly ts.Diagnostic[] {
  const options = compilerOptions()
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, languageVersion, ...rest) => name === fixture
    ? ts.createSourceFile(name, text, languageVersion, true)
    : getSourceFile(name, languageVersion, ...rest)
  const program = ts.createProgram([fixture], options, host, previous)
  previous = program
  return ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === fixture || d.file === undefined)
}

function lineOf (diagnostic: ts.Diagnostic): number {
  return diagnostic.file === undefined || diagnostic.start === undefined ? 0 : diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1
}

function describe (diagnostics: readonly ts.Diagnostic[]): string[] {
  return diagnostics.map((d) => `${lineOf(d)}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
}

const source = readFileSync(fixture, 'utf8')

t.test('the fixture type-checks: right uses pass, every @ts-expect-error meets its error', async (t) => {
  t.same(describe(check(source)), [])
})

t.test('each @ts-expect-error line fails on its own, and nothing else does', async (t) => {
  const expected = new Set<number>()
  const stripped = source.split('\n').map((line, index) => {
    if (!line.trim().startsWith('// @ts-expect-error')) return line
    expected.add(index + 2) // the line after the directive, 1-based
    return ''
  }).join('\n')
  t.ok(expected.size >= 12, `${expected.size} expected errors`)
  const diagnostics = check(stripped)
  t.same([...new Set(diagnostics.map(lineOf))].sort((a, b) => a - b), [...expected].sort((a, b) => a - b),
    'exactly the lines after the directives fail', { diagnostics: describe(diagnostics) })
})

t.test('notAny really refuses any', async (t) => {
  const probe = source + 'notAny(JSON.parse(\'1\') as any, true)\n'
  const probeLine = probe.split('\n').length - 1
  t.same(check(probe).map(lineOf), [probeLine], 'an any value does not compile, and only that line fails')
})
