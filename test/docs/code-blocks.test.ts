/**
 * Every ```ts block of README.md and docs/*.md type-checks under the project's `strict`
 * settings plus `exactOptionalPropertyTypes` (an app may turn it on, and an example must compile
 * there too), as a user would write it: `fastify-channels`, `fastify-channels/client` and
 * `fastify-channels/schemas` resolve to this repository's sources. Each block is its own module
 * (one program, one tsc run, for speed); a block's `@ts-expect-error` lines must meet their
 * error (TS2578 otherwise), so a block can show what does not compile too. Relative links
 * between these pages (and to files of the repository) must lead somewhere.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../..', import.meta.url))
const readmeBudget = 450

interface Block { file: string, line: number, code: string, path: string }

/** The ```ts blocks of `file`, each with the line its code starts on. */
function blocksOf (file: string): Block[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n')
  const blocks: Block[] = []
  let start = -1
  for (const [index, line] of lines.entries()) {
    if (start === -1 && /^```(ts|typescript)\s*$/.test(line)) start = index + 1
    else if (start !== -1 && /^```\s*$/.test(line)) {
      const path = join(root, 'test', 'docs', '.blocks', `${file.replace(/[/.]/g, '_')}_${start + 1}.ts`)
      blocks.push({ file, line: start + 1, code: `${lines.slice(start, index).join('\n')}\nexport {}\n`, path })
      start = -1
    }
  }
  return blocks
}

export function documents (): string[] {
  const docs = readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)
  return ['README.md', ...docs.sort()]
}

function compilerOptions (): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.json')
  const config = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path))
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(configPath))
  return {
    ...parsed.options,
    noEmit: true,
    incremental: false,
    noUnusedLocals: false, // a snippet may declare what it only shows
    exactOptionalPropertyTypes: true, // an app may turn it on: `{ channel: meta.channel }` then fails (TS2379)
    paths: {
      'fastify-channels': [join(root, 'plugin', 'index.ts')],
      'fastify-channels/client': [join(root, 'client', 'index.ts')],
      'fastify-channels/schemas': [join(root, 'schemas', 'index.ts')]
    }
  }
}

const blocks = documents().flatMap(blocksOf)

t.test('README.md stays within its line budget', async (t) => {
  const lines = readFileSync(join(root, 'README.md'), 'utf8').split('\n').length
  t.ok(lines <= readmeBudget, `README.md has ${lines} lines; at most ${readmeBudget} (put details in docs/)`)
})

t.test('every ts block of README.md and docs/*.md type-checks under strict', async (t) => {
  t.ok(blocks.length >= 8, `${blocks.length} blocks found`)
  const byPath = new Map(blocks.map((block) => [block.path, block]))
  const options = compilerOptions()
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, languageVersion, ...rest) => {
    const block = byPath.get(name)
    return block === undefined ? getSourceFile(name, languageVersion, ...rest) : ts.createSourceFile(name, block.code, languageVersion, true)
  }
  const fileExists = host.fileExists.bind(host)
  host.fileExists = (name) => byPath.has(name) || fileExists(name)
  const program = ts.createProgram([...byPath.keys()], options, host)
  const problems = ts.getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || byPath.has(d.file.fileName))
    .map((d) => {
      const block = d.file === undefined ? undefined : byPath.get(d.file.fileName)
      const where = block === undefined || d.start === undefined
        ? '?'
        : `${block.file}:${block.line + (d.file as ts.SourceFile).getLineAndCharacterOfPosition(d.start).line}`
      return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
    })
  t.same(problems, [], `${blocks.length} blocks`)
})

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug (heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')
}

function anchorsOf (file: string): Set<string> {
  const text = readFileSync(join(root, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '')
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((match) => slug(match[1])))
}

t.test('relative links of README.md and docs/*.md lead to a file and a heading that exist', async (t) => {
  const broken: string[] = []
  for (const file of [...documents(), 'bench/README.md']) {
    const text = readFileSync(join(root, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue // http(s), mailto
      const [path, anchor] = target.split('#')
      const linked = path === '' ? file : join(dirname(file), path)
      if (!existsSync(join(root, linked))) broken.push(`${file}: ${target} (no ${linked})`)
      else if (anchor !== undefined && linked.endsWith('.md') && !anchorsOf(linked).has(anchor)) broken.push(`${file}: ${target} (no heading)`)
    }
  }
  t.same(broken, [])
})
