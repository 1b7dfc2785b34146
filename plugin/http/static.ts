/**
 * Serves the bundled browser client (`client.js`, an ES module, and its source map) through
 * `@fastify/static` under the `client` prefix: `/channels/client.js` by default.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

const here = dirname(fileURLToPath(import.meta.url))

/** The files served, with their content types (mime 3, used by @fastify/send, would say application/javascript). */
const served: Readonly<Record<string, string>> = {
  'client.js': 'text/javascript; charset=utf-8',
  'client.js.map': 'application/json; charset=utf-8'
}

/**
 * Where `npm run build` puts the browser bundle: `dist/browser/` beside `dist/plugin/` when
 * running the built package (this file is `dist/plugin/http/static.js`), or under `dist/` when
 * running from the sources (`plugin/http/static.ts`: tests, ts-node).
 */
export function clientBundleDir (): string | undefined {
  const packageRoot = join(here, '..', '..')
  const candidates = [join(packageRoot, 'browser'), join(packageRoot, 'dist', 'browser')]
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
    // An app may register @fastify/static itself: leave `reply.sendFile` to it.
    decorateReply: false,
    index: false,
    // One route per file, made at registration: nothing else under the prefix is looked up.
    wildcard: false,
    allowedPath: (pathName) => Object.hasOwn(served, pathName.replace(/^\//, '')),
    // The content type is ours (below), not the one guessed from the file name.
    contentType: false,
    setHeaders (res, path) {
      res.setHeader('content-type', served[path.slice(path.lastIndexOf('/') + 1)] ?? 'application/octet-stream')
      res.setHeader('x-content-type-options', 'nosniff')
    }
  })
}
