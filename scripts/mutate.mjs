/**
 * `npm run mutate`: mutation testing with StrykerJS, one source module at a time, each mutant
 * tested only by the test files that cover its module (scripts/mutation-map.mjs).
 *
 *   npm run mutate                                  every mapped module of plugin/, schemas/, client/
 *   npm run mutate -- --mutate plugin/connection/inbox.ts      one module
 *   npm run mutate -- --mutate schemas/ --mutate client/timer.ts   an area and a module
 *   npm run mutate -- --force                       ignore the incremental baseline, re-run everything
 *   npm run mutate -- --list                        the modules and their test files, nothing run
 *
 * Incremental: each module keeps its results in reports/stryker-incremental/<module>.json, so a
 * re-run tests only mutants whose code or covering tests changed. reports/ is generated and
 * ignored by git: where a module has no such file (a clean clone, a new or renamed module),
 * its run is a full one and writes the file. The HTML report of a module is
 * reports/mutation/<module>.html, the scores reports/mutation/scores.json.
 */
import { Stryker } from '@stryker-mutator/core'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import baseConfig from '../stryker.config.mjs'
import { mutationMap, unmapped } from './mutation-map.mjs'

const { values } = parseArgs({
  options: {
    mutate: { type: 'string', multiple: true },
    force: { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
    concurrency: { type: 'string' }
  }
})

const wanted = (values.mutate ?? ['plugin/', 'schemas/', 'client/']).flatMap((value) => value.split(','))
const selected = (module) => wanted.some((selector) => selector.endsWith('/') ? module.startsWith(selector) : module === selector)
const modules = Object.keys(mutationMap).filter(selected)
const unknown = wanted.filter((selector) => !selector.endsWith('/') && !(selector in mutationMap))
if (unknown.length > 0) {
  for (const module of unknown) {
    process.stderr.write(module in unmapped
      ? `${module} is not mapped on purpose: ${unmapped[module]}\n`
      : `not in scripts/mutation-map.mjs: ${module}\n`)
  }
  process.exit(2)
}

if (values.list) {
  for (const module of modules) process.stdout.write(`${module}\n  ${mutationMap[module].join('\n  ')}\n`)
  const left = Object.keys(unmapped).filter(selected)
  if (left.length > 0) process.stdout.write(`\nnot mapped:\n${left.map((module) => `${module}: ${unmapped[module]}\n`).join('')}`)
  process.exit(0)
}

const slug = (module) => module.replace(/\.ts$/, '').replaceAll('/', '-')
const scoresFile = 'reports/mutation/scores.json'
await mkdir('reports/mutation', { recursive: true })
const readScores = async () => JSON.parse(await readFile(scoresFile, 'utf8').catch(() => '{}'))

for (const module of modules) {
  const incrementalFile = `reports/stryker-incremental/${slug(module)}.json`
  const baseline = values.force
    ? 'forced: every mutant is tested again'
    : existsSync(incrementalFile) ? `baseline ${incrementalFile}` : `no baseline yet: a full run, which writes ${incrementalFile}`
  process.stdout.write(`\n=== ${module} (${mutationMap[module].join(', ')})\n    ${baseline}\n`)
  const stryker = new Stryker({
    ...baseConfig,
    concurrency: values.concurrency === undefined ? baseConfig.concurrency : Number(values.concurrency),
    mutate: [module],
    tap: { ...baseConfig.tap, testFiles: mutationMap[module] },
    force: values.force,
    // a file that does not exist is no error: Stryker then runs every mutant and writes it
    incrementalFile,
    htmlReporter: { fileName: `reports/mutation/${slug(module)}.html` },
    // a sandbox directory of this process's own, so two runs (two areas) can go side by side
    tempDirName: `${baseConfig.tempDirName}/${process.pid}`
  })
  const result = score(await stryker.runMutationTest())
  const scores = await readScores()
  scores[module] = { ...result, at: new Date().toISOString() }
  await writeFile(scoresFile, JSON.stringify(scores, null, 2) + '\n')
}

const scores = await readScores()

process.stdout.write('\nmodule | mutants | killed | timeout | survived | no coverage | score (killed or timeout)\n')
for (const module of modules) {
  const s = scores[module]
  process.stdout.write(`${module} | ${s.total} | ${s.killed} | ${s.timeout} | ${s.survived} | ${s.noCoverage} | ${s.score}\n`)
}

/** The score of issue 15: killed or timed out, of the mutants that ran or should have. */
function score (results) {
  const count = (status) => results.filter((result) => result.status === status).length
  const killed = count('Killed')
  const timeout = count('Timeout')
  const survived = count('Survived')
  const noCoverage = count('NoCoverage')
  const total = killed + timeout + survived + noCoverage
  return {
    total,
    killed,
    timeout,
    survived,
    noCoverage,
    errors: count('RuntimeError') + count('CompileError'),
    score: total === 0 ? 'n/a' : `${(100 * (killed + timeout) / total).toFixed(1)} %`
  }
}
