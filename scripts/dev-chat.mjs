#!/usr/bin/env node
/**
 * `npm run dev`: the example chat with auto-reload. After `npm run build`, it keeps three
 * things running until Ctrl-C:
 *   - tsc --watch           recompiles plugin/, schemas/, client/ and example-chat/ into dist/
 *   - esbuild (watch mode)  rebundles dist/browser/client.js
 *   - node --watch          restarts dist/example-chat/server.js whenever what it imports changes
 * The page's own files (example-chat/public/) are read on each request: just reload the page.
 * The chat's environment applies as for `npm start` (PORT, REDIS_URL, LOG_LEVEL, ...: see
 * example-chat/README.md); at a terminal its log is readable lines, and a taken port is one line.
 *
 * The chat's socket admits pages of its own origin only (the `origins` option: a page of any
 * other origin gets 403, see docs/origins-and-limits.md). To serve the page from a dev server
 * on another port (Vite on 5173, say), either proxy `/ws` through that dev server (then the page
 * and the socket share one origin), or name its origin:
 *   CHAT_ORIGINS=http://localhost:5173 npm run dev
 * (comma-separated; exact origins as the browser's address bar shows them: scheme, host, port).
 */
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { watchClient } from './build-client.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

const children = [
  spawn(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--watch', '--preserveWatchOutput'], { cwd: root, stdio: 'inherit' }),
  spawn(process.execPath, ['--watch', 'dist/example-chat/server.js'], { cwd: root, stdio: 'inherit', env: process.env })
]
const bundler = await watchClient()

let stopping = false
function stop (code = 0) {
  if (stopping) return
  stopping = true
  for (const child of children) child.kill('SIGTERM')
  bundler.dispose().finally(() => process.exit(code))
}
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => stop(0))
for (const child of children) child.once('exit', (code) => stop(code ?? 1))
