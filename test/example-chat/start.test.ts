/**
 * `npm start` runs the built chat (dist/example-chat/server.js): it must find its page from
 * dist/, listen on HOST and PORT, say where in one human line, and close on SIGTERM.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const built = fileURLToPath(new URL('../../dist/example-chat/server.js', import.meta.url))

t.test('the built chat listens on HOST:PORT and serves its page', {
  skip: existsSync(built) ? false : 'dist/example-chat/server.js is not built (npm run build)'
}, async (t) => {
  const child = spawn(process.execPath, [built], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  const address = await new Promise<string>((resolve, reject) => {
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      // The human line, on a line of its own (not inside a JSON log line).
      const match = /^Chat running at (http:\/\/127\.0\.0\.1:\d+)\/ /m.exec(output)
      if (match !== null) resolve(match[1])
    })
    child.once('exit', (code) => reject(new Error(`exited with ${String(code)} before listening:\n${output}`)))
  })
  const page = await fetch(address)
  t.equal(page.status, 200)
  t.match(await page.text(), /<title>Channels chat<\/title>/)
  t.equal((await fetch(`${address}/channels/client.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'a clean exit on SIGTERM')
})
