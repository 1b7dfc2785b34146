/**
 * Proves the client's end-to-end types: the fixture type-checks, and each of its
 * `@ts-expect-error` lines is an error of its own (strip the directives and every one of
 * those lines, and only those, fails). Uses the TypeScript API in-process, on a virtual copy.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../..', import.meta.url))
const fixture = join(root, 'test', 'client', 'types', 'events.fixture.ts')

function compilerOptions (): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.json')
  const config = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path))
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(configPath))
  return { ...parsed.options, noEmit: true, incremental: false }
}

/** Type-checks `file`, reading `text` instead of its contents; returns its diagnostics. */
let previous: ts.Program | undefined

function check (file: string, text: string): readonly ts.Diagnostic[] {
  const options = compilerOptions()
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, languageVersion, ...rest) => name === file
    ? ts.createSourceFile(name, text, languageVersion, true)
    : getSourceFile(name, languageVersion, ...rest)
  const program = ts.createProgram([file], options, host, previous) // reuses what did not change
  previous = program
  return ts.getPreEmitDiagnostics(program).filter((diagnostic) => diagnostic.file?.fileName === file || diagnostic.file === undefined)
}

function describe (diagnostics: readonly ts.Diagnostic[]): string[] {
  return diagnostics.map((d) => {
    const line = d.file === undefined || d.start === undefined ? '?' : d.file.getLineAndCharacterOfPosition(d.start).line + 1
    return `${line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}

const source = readFileSync(fixture, 'utf8')

t.test('the fixture type-checks: right payloads pass, every @ts-expect-error line fails', async (t) => {
  t.same(describe(check(fixture, source)), [])
})

t.test('each @ts-expect-error line fails on its own', async (t) => {
  const lines = source.split('\n')
  const expected = new Set<number>()
  const stripped = lines.map((line, index) => {
    if (!line.trim().startsWith('// @ts-expect-error')) return line
    expected.add(index + 2) // the line after the directive, 1-based
    return ''
  }).join('\n')
  t.ok(expected.size >= 10, `${expected.size} expected errors`)
  const diagnostics = check(fixture, stripped)
  const failing = new Set(diagnostics.map((d) => (d.file as ts.SourceFile).getLineAndCharacterOfPosition(d.start as number).line + 1))
  t.same([...failing].sort((a, b) => a - b), [...expected].sort((a, b) => a - b),
    'exactly the lines after the directives fail', { diagnostics: describe(diagnostics) })
})
