// Checks the source layout rules of STYLE.md: no source file over 300 lines, no import cycle
// (type-only imports included: a cycle of types is still a knot a reader must untie).
// Usage: node scripts/check-structure.mjs  (exit code 1 and one line per problem when broken)
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const sourceDirs = ['plugin', 'schemas', 'client']
const maxLines = 300

function sourcesIn (dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourcesIn(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

/** Relative imports of a file, resolved to .ts paths. */
function importsOf (file, text) {
  const found = []
  for (const match of text.matchAll(/(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/g)) {
    found.push(resolve(dirname(file), match[1].replace(/\.js$/, '.ts')))
  }
  return found
}

/** The problems found under `base` (the repository by default), one line each. */
export function checkStructure (base = root) {
  const problems = []
  const graph = new Map()
  for (const file of sourceDirs.flatMap((dir) => sourcesIn(join(base, dir)))) {
    const text = readFileSync(file, 'utf8')
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
    if (lines > maxLines) problems.push(`${relative(base, file)}: ${lines} lines (at most ${maxLines})`)
    graph.set(file, importsOf(file, text))
  }
  // Depth-first search; a grey node met again closes a cycle.
  const colour = new Map()
  const stack = []
  const visit = (file) => {
    colour.set(file, 'grey')
    stack.push(file)
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue
      if (colour.get(next) === 'grey') {
        const cycle = stack.slice(stack.indexOf(next)).concat(next)
        problems.push(`import cycle: ${cycle.map((f) => relative(base, f)).join(' → ')}`)
      } else if (colour.get(next) === undefined) visit(next)
    }
    stack.pop()
    colour.set(file, 'black')
  }
  for (const file of graph.keys()) if (colour.get(file) === undefined) visit(file)
  return problems
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const problems = checkStructure()
  for (const problem of problems) console.error(problem)
  process.exitCode = problems.length === 0 ? 0 : 1
}
