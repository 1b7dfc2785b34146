/**
 * Module hooks behind scripts/ts-loader.mjs: a `.js` import that has a `.ts` file beside it
 * (NodeNext style) resolves to the `.ts`, and `.ts` sources are transformed by esbuild.
 * Transforms are cached by content hash (Stryker's mutant switching keeps the sandbox's files
 * the same from one test process to the next), so most processes never start esbuild.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const cacheDir = join(fileURLToPath(new URL('..', import.meta.url)), 'node_modules', '.cache', 'ts-loader')

export async function resolve (specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context)
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !/^\.{1,2}\/.*\.js$/.test(specifier)) throw err
    return await nextResolve(specifier.replace(/\.js$/, '.ts'), context)
  }
}

export async function load (url, context, nextLoad) {
  if (!url.startsWith('file:') || !/\.m?ts$/.test(url)) return await nextLoad(url, context)
  const path = fileURLToPath(url)
  const source = await readFile(path, 'utf8')
  const cached = join(cacheDir, createHash('sha256').update(path).update('\0').update(source).digest('hex') + '.js')
  const code = await readFile(cached, 'utf8').catch(() => undefined) ?? await transformAndCache(source, path, cached)
  return { format: 'module', source: code, shortCircuit: true }
}

async function transformAndCache (source, path, cached) {
  const { transform } = await import('esbuild')
  const { code } = await transform(source, {
    loader: 'ts',
    format: 'esm',
    target: 'node20',
    sourcefile: path,
    sourcemap: 'inline',
    // as tsconfig.json compiles them (target ES2022)
    tsconfigRaw: { compilerOptions: { useDefineForClassFields: true } }
  })
  // Written aside and renamed: parallel processes never read a half-written file.
  await mkdir(cacheDir, { recursive: true })
  const partial = `${cached}.${process.pid}.tmp`
  await writeFile(partial, code)
  await rename(partial, cached)
  return code
}
