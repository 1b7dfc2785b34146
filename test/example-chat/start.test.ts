/**
 * `npm start` runs the built chat (dist/example-chat/server.js): it must find its page from
 * dist/, listen on HOST and PORT, say where in one human line, admit the pages of CHAT_ORIGINS,
 * and close on SIGTERM. Its log is JSON when piped and readable with LOG_FORMAT=pretty (or at
 * a terminal), with no line per request at info; a taken port is one line naming PORT.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
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

const skip = existsSync(built) ? false : 'dist/example-chat/server.js is not built (npm run build)'

/** Resolves with everything the child wrote to stdout once `pattern` matched it; fails if it exits first. */
async function stdoutUntil (child: ReturnType<typeof spawn>, pattern: RegExp, what: string): Promise<{ output: string, match: RegExpExecArray }> {
  return await within(new Promise((resolve, reject) => {
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = pattern.exec(output)
      if (match !== null) resolve({ output, match })
    })
    child.once('exit', (code) => reject(new Error(`exited with ${String(code)} before ${what}:\n${output}`)))
  }), 30_000, what)
}

t.test('the built chat listens on HOST:PORT, serves its page and admits the pages of CHAT_ORIGINS', { skip }, async (t) => {
  const child = spawn(process.execPath, [built], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', CHAT_ORIGINS: 'http://localhost:5173, http://localhost:8080' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  // The human line, on a line of its own (not inside a JSON log line).
  const address = (await stdoutUntil(child, /^Chat running at (http:\/\/127\.0\.0\.1:\d+)\/ /m, 'the built chat says where it listens')).match[1]
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

  // Piped, the log is JSON lines; serving the page, its assets and the sockets logged no request.
  const logLines = output.split('\n').filter((line) => line.startsWith('{'))
  const messages = logLines.map((line) => (JSON.parse(line) as { msg: string }).msg)
  t.match(messages, [/^Server listening at http:\/\/127\.0\.0\.1:\d+$/], 'JSON lines, the listening one first')
  t.notOk(messages.some((msg) => /incoming request|request completed|^GET /.test(msg)), `no line per request at info: ${JSON.stringify(messages)}`)
  t.same(output.split('\n').filter((line) => line !== '' && !line.startsWith('{')).map((line) => line.replace(/\d+/g, 'N')),
    ['Chat running at http://N.N.N.N:N/ (open it in two browser tabs; Ctrl-C stops it)'], 'beside them, the one human line')
})

t.test('LOG_FORMAT=pretty: readable lines, as at a terminal', { skip }, async (t) => {
  const child = spawn(process.execPath, [built], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', LOG_FORMAT: 'pretty' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const { output } = await stdoutUntil(child, /INFO: Server listening at http:\/\/127\.0\.0\.1:\d+/, 'a readable listening line')
  t.match(output, /^\[\d\d:\d\d:\d\d\] INFO: Server listening at http:\/\/127\.0\.0\.1:\d+$/m, '[time] LEVEL: message')
  t.notMatch(output, /\{"level"/, 'no JSON line')
  child.kill('SIGTERM')
  t.equal(await within(exited, 10_000, 'the chat exits on SIGTERM'), 0)
})

t.test('a taken port: one line naming PORT, a non-zero exit, no stack', { skip }, async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const { port } = taken.address() as AddressInfo
  // As `npm start` runs it (npm sets npm_lifecycle_event): the hint names the command typed.
  const child = spawn(process.execPath, [built], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), npm_lifecycle_event: 'start' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await within(new Promise<number | null>((resolve) => child.once('exit', resolve)), 30_000, 'the chat exits on a taken port')
  t.equal(code, 1, 'a non-zero exit')
  t.equal(stderr, `Port ${port} is in use: set PORT to another port (e.g. PORT=3000 npm start).\n`, 'one line on stderr, no stack')
  t.notMatch(stdout, /Chat running/)
})
