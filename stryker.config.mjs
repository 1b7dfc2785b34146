// @ts-check
/**
 * StrykerJS settings shared by every `npm run mutate` run (scripts/mutate.mjs adds, per module,
 * `mutate`, the test files of scripts/mutation-map.mjs, the incremental file and the report
 * names). See docs/mutation-testing.md.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  packageManager: 'npm',
  // The tap runner runs each test file as `node <nodeArgs> <file>`, not through the tap CLI, so
  // TypeScript needs a loader: scripts/ts-loader.mjs strips types with esbuild, about twice as
  // fast to start as tap's own ts-node (@tapjs/typescript/import), which also works here.
  testRunner: 'tap',
  tap: {
    testFiles: [],
    nodeArgs: ['--no-warnings', '--import', './scripts/ts-loader.mjs'],
    forceBail: true
  },
  coverageAnalysis: 'perTest',
  // 2 cores shared by many: one test process at a time.
  concurrency: 1,
  // A busy machine makes honest runs slow: a mutant is a timeout only well past the normal time.
  timeoutMS: 10_000,
  timeoutFactor: 2,
  dryRunTimeoutMinutes: 10,
  incremental: true,
  reporters: ['html', 'clear-text', 'progress'],
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  ignorePatterns: ['dist', 'bench', 'reports', '.tap', 'coverage', 'docs', 'test/screenshots', '.ci', '.stryker-tmp'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true
}
