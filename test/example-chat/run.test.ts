/**
 * Running the chat (example-chat/run.ts): PORT is checked, the log is readable at a terminal
 * and JSON otherwise, the usual listen failures become one line naming the variable to
 * change, a Redis that is not there names REDIS_URL (its password masked), and a request is
 * one debug line, not two info lines.
 */
import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { buildChatApp } from '../../example-chat/server.js'
import { buildOrExplain, chatLogger, envPort, listenOrExplain, listenProblem, runCommand, StartError } from '../../example-chat/run.js'

t.test('PORT: 3000 when unset, else a whole number from 0 to 65535', async (t) => {
  t.equal(envPort({}), 3000)
  t.equal(envPort({ PORT: '' }), 3000)
  t.equal(envPort({ PORT: '8080' }), 8080)
  t.equal(envPort({ PORT: '0' }), 0)
  for (const bad of ['abc', '-1', '65536', '80.5']) {
    t.throws(() => envPort({ PORT: bad }), new StartError(`PORT must be a whole number from 0 to 65535 (0: any free port), got "${bad}".`))
  }
})

t.test('the log: pino-pretty at a terminal or with LOG_FORMAT=pretty, JSON otherwise', async (t) => {
  const pretty = { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname,reqId', singleLine: true } }
  t.same(chatLogger({}, true), { level: 'info', transport: pretty }, 'npm start at a terminal')
  t.same(chatLogger({}, false), { level: 'info' }, 'piped (a log collector, a test): JSON lines')
  t.same(chatLogger({ LOG_FORMAT: 'pretty' }, false), { level: 'info', transport: pretty })
  t.same(chatLogger({ LOG_FORMAT: 'json', LOG_LEVEL: 'debug' }, true), { level: 'debug' })
  t.throws(() => chatLogger({ LOG_FORMAT: 'xml' }, true), new StartError('LOG_FORMAT must be "pretty" or "json", got "xml".'))
})

t.test('the command a hint names is the one the user typed', async (t) => {
  const saved = process.env.npm_lifecycle_event
  t.teardown(() => { process.env.npm_lifecycle_event = saved })
  process.env.npm_lifecycle_event = 'start'
  t.equal(runCommand(), 'npm start')
  process.env.npm_lifecycle_event = 'dev'
  t.equal(runCommand(), 'npm run dev')
  delete process.env.npm_lifecycle_event
  t.equal(runCommand(), 'node dist/example-chat/server.js')
  t.equal(runCommand('dist/example-chat/cluster.js'), 'node dist/example-chat/cluster.js')
})

t.test('listen failures a user can fix are one line naming the variable', async (t) => {
  const failure = (code: string): Error => Object.assign(new Error(code), { code })
  t.equal(listenProblem(failure('EADDRINUSE'), '127.0.0.1', 3000, 'npm start'), 'Port 3000 is in use: set PORT to another port (e.g. PORT=3001 npm start).')
  t.equal(listenProblem(failure('EADDRINUSE'), '127.0.0.1', 8080, 'npm start'), 'Port 8080 is in use: set PORT to another port (e.g. PORT=3000 npm start).')
  t.equal(listenProblem(failure('EACCES'), '127.0.0.1', 80, 'npm start'), 'Port 80 needs privileges this user lacks: set PORT to a port above 1023 (e.g. PORT=3000 npm start).')
  t.equal(listenProblem(failure('EADDRNOTAVAIL'), '10.9.9.9', 3000, 'npm start'), 'HOST 10.9.9.9 is not an address of this machine: set HOST to one of its addresses (e.g. HOST=127.0.0.1 npm start).')
  t.equal(listenProblem(failure('EMFILE'), '127.0.0.1', 3000, 'npm start'), undefined, 'anything else keeps its stack')
})

t.test('a taken port: listenOrExplain rejects with the line, the app closed', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const { port } = taken.address() as AddressInfo
  const app = await buildChatApp()
  t.teardown(() => app.close())
  await t.rejects(listenOrExplain(app, '127.0.0.1', port, 'npm start'),
    new StartError(`Port ${port} is in use: set PORT to another port (e.g. PORT=3000 npm start).`))
})

t.test('a Redis that is not there names REDIS_URL, its password masked', async (t) => {
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const { port } = closed.address() as AddressInfo
  await new Promise<void>((resolve) => closed.close(() => resolve())) // a port nobody listens on
  const url = `redis://:s3cret@127.0.0.1:${port}`
  const { redisBroker } = await import('../../plugin/index.js')
  const refused = await buildOrExplain(async () => await buildChatApp({ channels: { broker: redisBroker({ url }) } }), url).then(() => undefined, (err: unknown) => err)
  t.type(refused, StartError)
  t.match((refused as Error).message, new RegExp(`^No Redis at REDIS_URL=redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\): start one there, set REDIS_URL to one that runs, or unset it to run on memory\\.$`))
  t.notMatch((refused as Error).message, /s3cret/)
  await t.rejects(buildOrExplain(async () => { throw new Error('something else') }, url), new Error('something else'), 'other failures pass through')
})

t.test('a request is one debug line: none at info, no "incoming request"', async (t) => {
  for (const level of ['info', 'debug']) {
    const lines: Array<{ level: number, msg: string }> = []
    const stream = new Writable({
      write (chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { level: number, msg: string }))
        done()
      }
    })
    const app = await buildChatApp({ logger: { level, stream } })
    t.teardown(() => app.close())
    t.equal((await app.inject('/rooms')).statusCode, 200)
    t.equal((await app.inject('/style.css')).statusCode, 200)
    const requestLines = lines.filter((line) => /request|GET/.test(line.msg)).map((line) => [line.level, line.msg])
    if (level === 'info') {
      t.same(requestLines, [], 'at info, serving the page logs nothing')
    } else {
      t.match(requestLines, [[20, /^GET \/rooms 200 \(\d+ ms\)$/], [20, /^GET \/style\.css 200 \(\d+ ms\)$/]], 'at debug, one line per request')
      t.equal(requestLines.length, 2)
    }
  }
})
