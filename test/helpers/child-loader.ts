/**
 * The TypeScript loader among this process's node arguments, for a forked child that runs a
 * `.ts` fixture: tap's (`--import=…@tapjs/typescript…`) or the mutation runner's (`--import
 * ./scripts/ts-loader.mjs`, see docs/mutation-testing.md). Only the loader: tap's coverage and
 * process tracking, or Stryker's hook, must not run in the child.
 */
export function typescriptLoaderArgs (execArgv: readonly string[] = process.execArgv): string[] {
  const loader: string[] = []
  execArgv.forEach((arg, index) => {
    if (!/@tapjs\/typescript|ts-loader/.test(arg)) return
    // `--import <module>` comes as two arguments: the flag goes along
    if (!arg.startsWith('-') && index > 0) loader.push(execArgv[index - 1])
    loader.push(arg)
  })
  return loader
}
