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
 * The Redis broker's modules (redisMutationMap) run only when Redis answers a PING at
 * 127.0.0.1:6379 (or REDIS_URL); without it they are refused (named one by one: exit 2; within
 * an area: left out, said so), never run with tests that would skip. Their runs set CI=true, so
 * a test that cannot reach Redis fails (kills) instead of skipping, and use REDIS_CLUSTER_URL,
 * or a 3-master cluster this script starts (scripts/redis-cluster.sh) and stops at the end.
 *
 * Incremental: each module keeps its results in reports/stryker-incremental/<module>.json, so a
 * re-run tests only mutants whose code or covering tests changed. reports/ is generated and
 * ignored by git: where a module has no such file (a clean clone, a new or renamed module),
 * its run is a full one and writes the file. The HTML report of a module is
 * reports/mutation/<module>.html, the scores reports/mutation/scores.json.
 */
import { Stryker } from '@stryker-mutator/core'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import baseConfig from '../stryker.config.mjs'
import { mutationMap, redisMutationMap, unmapped } from './mutation-map.mjs'

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
const testFiles = { ...mutationMap, ...redisMutationMap }
const unknown = wanted.filter((selector) => !selector.endsWith('/') && !(selector in testFiles))
if (unknown.length > 0) {
  for (const module of unknown) {
    process.stderr.write(module in unmapped
      ? `${module} is not mapped on purpose: ${unmapped[module]}\n`
      : `not in scripts/mutation-map.mjs: ${module}\n`)
  }
  process.exit(2)
}

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const redisModules = Object.keys(redisMutationMap).filter(selected)
let modules = Object.keys(mutationMap).filter(selected)

if (values.list) {
  modules.push(...redisModules)
  for (const module of modules) {
    process.stdout.write(`${module}${module in redisMutationMap ? ' (needs Redis)' : ''}\n  ${testFiles[module].join('\n  ')}\n`)
  }
  const left = Object.keys(unmapped).filter(selected)
  if (left.length > 0) process.stdout.write(`\nnot mapped:\n${left.map((module) => `${module}: ${unmapped[module]}\n`).join('')}`)
  process.exit(0)
}

if (redisModules.length > 0) {
  if (await redisAnswers(redisUrl)) {
    modules.push(...redisModules)
  } else {
    const named = redisModules.filter((module) => wanted.includes(module))
    process.stderr.write(`Redis does not answer a PING at ${redisUrl}: ${named.length > 0 ? 'refused' : 'left out'}, ` +
      `since their tests would skip and every mutant survive (start Redis, or set REDIS_URL):\n${redisModules.map((module) => `  ${module}\n`).join('')}`)
    if (named.length > 0) process.exit(2)
  }
}
modules = modules.filter((module, index) => modules.indexOf(module) === index)

/** The cluster of the Redis modules' runs: REDIS_CLUSTER_URL, else one of this run's own, started when first needed. */
let clusterDir
let clusterUrl = process.env.REDIS_CLUSTER_URL === '' ? undefined : process.env.REDIS_CLUSTER_URL
process.on('exit', () => {
  if (clusterDir !== undefined) execFileSync('scripts/redis-cluster.sh', ['stop', clusterDir])
})
function redisCluster () {
  if (clusterUrl === undefined) {
    clusterDir = mkdtempSync(join(tmpdir(), 'mutate-cluster-'))
    process.stdout.write(`    starting a Redis Cluster for the Redis modules (scripts/redis-cluster.sh, in ${clusterDir})\n`)
    clusterUrl = execFileSync('scripts/redis-cluster.sh', ['start', clusterDir, '3', '0'], { encoding: 'utf8' }).trim().split('\n').at(-1)
  }
  return clusterUrl
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
  process.stdout.write(`\n=== ${module} (${testFiles[module].join(', ')})\n    ${baseline}\n`)
  const needsRedis = module in redisMutationMap
  const saved = { CI: process.env.CI, REDIS_URL: process.env.REDIS_URL, REDIS_CLUSTER_URL: process.env.REDIS_CLUSTER_URL }
  if (needsRedis) {
    // a test that cannot reach Redis (or the cluster) must fail, and so kill, never skip
    process.env.CI = 'true'
    process.env.REDIS_URL = redisUrl
    process.env.REDIS_CLUSTER_URL = redisCluster()
  }
  const stryker = new Stryker({
    ...baseConfig,
    concurrency: values.concurrency === undefined ? baseConfig.concurrency : Number(values.concurrency),
    mutate: [module],
    tap: { ...baseConfig.tap, testFiles: testFiles[module] },
    force: values.force,
    // a file that does not exist is no error: Stryker then runs every mutant and writes it
    incrementalFile,
    htmlReporter: { fileName: `reports/mutation/${slug(module)}.html` },
    // a sandbox directory of this process's own, so two runs (two areas) can go side by side
    tempDirName: `${baseConfig.tempDirName}/${process.pid}`
  })
  const result = score(await stryker.runMutationTest())
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
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

/** true when a Redis at `url` answers PING within a second (a plain TCP exchange, no client library). */
async function redisAnswers (url) {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve) => {
    const socket = connect({ host: hostname === '' ? '127.0.0.1' : hostname, port: Number(port === '' ? 6379 : port) })
    let answer = ''
    const done = (ok) => { clearTimeout(timer); socket.destroy(); resolve(ok) }
    const timer = setTimeout(() => done(false), 1000)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1')
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'))
    })
    socket.on('error', () => done(false))
    socket.on('close', () => done(false))
  })
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
