/**
 * Serves the bundled browser client (`client.js`, an ES module, and its source map) through
 * `@fastify/static` under the `client` prefix.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

const here = dirname(fileURLToPath(import.meta.url))

/**
 * Where `npm run build` puts the browser bundle: `dist/browser/` beside `dist/plugin/` when
 * running from the package, or under `dist/` when running from the sources (tests).
 */
export function clientBundleDir (): string | undefined {
  const candidates = [join(here, '..', 'browser'), join(here, '..', 'dist', 'browser')]
  return candidates.find((dir) => existsSync(join(dir, 'client.js')))
}

export async function serveClient (fastify: FastifyInstance, prefix: string): Promise<void> {
  const root = clientBundleDir()
  if (root === undefined) {
    fastify.log.warn('fastify-channels: the browser client is not built (npm run build); nothing is served under %s', prefix)
    return
  }
  await fastify.register(fastifyStatic, {
    root,
    prefix,
    decorateReply: false,
    index: false,
    wildcard: false,
    allowedPath: (pathName) => /^\/?client\.js(\.map)?$/.test(pathName.slice(prefix.length - 1)) || /client\.js(\.map)?$/.test(pathName)
  })
}
