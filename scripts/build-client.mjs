#!/usr/bin/env node
/**
 * Bundles the client into one ES module for browsers: dist/browser/client.js and its source
 * map, with every dependency (the protocol schemas, TypeBox, secure-json-parse) inside, so a
 * page needs nothing but `import { connect } from '/channels/client.js'`.
 *
 *   node scripts/build-client.mjs            build once
 *   node scripts/build-client.mjs --watch    rebuild on every change (npm run dev)
 */
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
export const defaultOutDir = join(root, 'dist', 'browser')

/** The esbuild options of the browser bundle. */
export function bundleOptions (outdir = defaultOutDir) {
  return {
    absWorkingDir: root,
    entryPoints: { client: join(root, 'client', 'index.ts') },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15.4'],
    minify: true,
    sourcemap: true,
    legalComments: 'eof',
    logLevel: 'warning',
    write: false
  }
}

/**
 * Writes each output file through a temporary name and a rename, so a server (or a test
 * running beside this build) never reads a half-written bundle.
 */
async function writeAtomically (outputFiles) {
  for (const file of outputFiles) {
    await mkdir(dirname(file.path), { recursive: true })
    const temporary = join(dirname(file.path), `.${basename(file.path)}.${process.pid}.${Date.now()}.tmp`)
    await writeFile(temporary, file.contents)
    await rename(temporary, file.path)
  }
}

/** Builds the bundle into `outdir` [dist/browser]; resolves with the files written. */
export async function buildClient (outdir = defaultOutDir) {
  const result = await esbuild.build(bundleOptions(outdir))
  await writeAtomically(result.outputFiles)
  return result.outputFiles.map((file) => file.path)
}

/** Rebuilds on every change until the process ends. */
export async function watchClient (outdir = defaultOutDir) {
  const context = await esbuild.context({
    ...bundleOptions(outdir),
    plugins: [{
      name: 'write-atomically',
      setup (build) {
        build.onEnd(async (result) => {
          if (result.errors.length === 0) await writeAtomically(result.outputFiles)
        })
      }
    }]
  })
  await context.watch()
  return context
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--watch')) {
    await watchClient()
    console.log('watching client/ and schemas/: rebuilding dist/browser/client.js on change')
  } else {
    const files = await buildClient()
    for (const file of files) console.log(`built ${relative(root, file)}`)
  }
}
