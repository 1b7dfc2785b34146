/**
 * For the tests that prove types with a fixture (test/client/types, test/types): the fixture is
 * type-checked in-process under the project's tsconfig.json, on a virtual copy, so a test can
 * check it as written or with its `@ts-expect-error` directives stripped.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../..', import.meta.url))

function compilerOptions (): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.json')
  const config = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path))
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(configPath))
  return { ...parsed.options, noEmit: true, incremental: false }
}

export interface FixtureChecker {
  /** the fixture's text on disk */
  source: string
  /** the diagnostics of the fixture when it reads `text` (its own text by default) */
  check: (text?: string) => readonly ts.Diagnostic[]
}

/** A checker of `fixture` (a path from the repository root); each check reuses what did not change. */
export function fixtureChecker (fixture: string): FixtureChecker {
  const file = join(root, fixture)
  const source = readFileSync(file, 'utf8')
  const options = compilerOptions()
  let previous: ts.Program | undefined
  const check = (text = source): readonly ts.Diagnostic[] => {
    const host = ts.createCompilerHost(options)
    const getSourceFile = host.getSourceFile.bind(host)
    host.getSourceFile = (name, languageVersion, ...rest) => name === file
      ? ts.createSourceFile(name, text, languageVersion, true)
      : getSourceFile(name, languageVersion, ...rest)
    const program = ts.createProgram([file], options, host, previous)
    previous = program
    return ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file || d.file === undefined)
  }
  return { source, check }
}

/** The 1-based line a diagnostic points at (0 when it has no position). */
export function lineOf (diagnostic: ts.Diagnostic): number {
  return diagnostic.file === undefined || diagnostic.start === undefined ? 0 : diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1
}

export function describe (diagnostics: readonly ts.Diagnostic[]): string[] {
  return diagnostics.map((d) => `${lineOf(d)}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
}

/**
 * `source` with every `// @ts-expect-error` directive blanked, and the lines after them (the
 * ones that must fail then), 1-based and sorted.
 */
export function withoutExpectErrors (source: string): { stripped: string, expected: number[] } {
  const expected: number[] = []
  const stripped = source.split('\n').map((line, index) => {
    if (!line.trim().startsWith('// @ts-expect-error')) return line
    expected.push(index + 2) // the line after the directive, 1-based
    return ''
  }).join('\n')
  return { stripped, expected }
}

/** The lines `diagnostics` point at, each once, sorted. */
export function failingLines (diagnostics: readonly ts.Diagnostic[]): number[] {
  return [...new Set(diagnostics.map(lineOf))].sort((a, b) => a - b)
}
