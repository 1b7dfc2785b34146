/**
 * `npm start` runs the built chat (dist/example-chat/server.js): it must find its page from
 * dist/, listen on HOST and PORT, say where in one human line, admit the pages of CHAT_ORIGINS,
 * and close on SIGTERM.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { within } from '../helpers/deadline.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const built = fileURLToPath(new URL('../../dist/example-chat/server.js', import.meta.url))

/** 'open' when a page of `origin` may open the chat's socket, else the refusing HTTP status. */
async function upgradeFrom (url: string, origin: string): Promise<'open' | number> {
  return await within(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { origin })
    ws.once('open', () => { ws.close(); resolve('open') })
    ws.once('unexpected-response', (_request, response) => { ws.terminate(); resolve(response.statusCode ?? -1) })
    ws.once('error', reject)
  }), 5000, `the chat answers an upgrade from ${origin}`)
}

t.test('the built chat listens on HOST:PORT, serves its page and admits the pages of CHAT_ORIGINS', {
  skip: existsSync(built) ? false : 'dist/example-chat/server.js is not built (npm run build)'
}, async (t) => {
  const child = spawn(process.execPath, [built], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', CHAT_ORIGINS: 'http://localhost:5173, http://localhost:8080' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  const address = await within(new Promise<string>((resolve, reject) => {
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      // The human line, on a line of its own (not inside a JSON log line).
      const match = /^Chat running at (http:\/\/127\.0\.0\.1:\d+)\/ /m.exec(output)
      if (match !== null) resolve(match[1])
    })
    child.once('exit', (code) => reject(new Error(`exited with ${String(code)} before listening:\n${output}`)))
  }), 30_000, 'the built chat says where it listens')
  const page = await fetch(address)
  t.equal(page.status, 200)
  t.match(await page.text(), /<title>Channels chat<\/title>/)
  t.equal((await fetch(`${address}/channels/client.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8')
  const socketUrl = `${address.replace('http:', 'ws:')}/ws`
  t.equal(await upgradeFrom(socketUrl, address), 'open', 'the chat\'s own page')
  t.equal(await upgradeFrom(socketUrl, 'http://localhost:5173'), 'open', 'a dev server named in CHAT_ORIGINS')
  t.equal(await upgradeFrom(socketUrl, 'http://localhost:8080'), 'open', 'the second one')
  t.equal(await upgradeFrom(socketUrl, 'http://localhost:5174'), 403, 'any other page')
  child.kill('SIGTERM')
  t.equal(await within(exited, 10_000, 'the chat exits on SIGTERM'), 0, 'a clean exit on SIGTERM')
})
