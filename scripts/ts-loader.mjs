/**
 * A minimal TypeScript loader for `npm run mutate`: strips types with esbuild (already a dev
 * dependency), so each of the many test processes Stryker spawns starts in a fraction of the
 * time ts-node needs. Not a type check: `npm run typecheck` is that. Used as
 * `node --import ./scripts/ts-loader.mjs test/x.test.ts`.
 */
import { register } from 'node:module'

register('./ts-loader-hooks.mjs', import.meta.url)
