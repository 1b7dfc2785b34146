/**
 * Running the chat from a shell (server.ts and cluster.ts): the environment it reads, a log
 * a human can read at a terminal, and a listen whose usual failures (a taken port, a port
 * that needs privileges, an address this machine does not have) end in one line that says
 * what to change, not a stack.
 */
import { createRequire } from 'node:module'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'

/** The command the user typed, for the hints: `npm start`, `npm run dev`, or node on the file. */
export function runCommand (script = 'dist/example-chat/server.js'): string {
  const lifecycle = process.env.npm_lifecycle_event
  if (lifecycle === 'start') return 'npm start'
  if (lifecycle !== undefined && lifecycle !== '') return `npm run ${lifecycle}`
  return `node ${script}`
}

/** A refusal to start that is the user's to fix: printed as its one line, without a stack. */
export class StartError extends Error {}

/** `PORT` [3000]: a whole number from 0 (any free port) to 65535. */
export function envPort (env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.PORT
  if (raw === undefined || raw.trim() === '') return 3000
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new StartError(`PORT must be a whole number from 0 to 65535 (0: any free port), got "${raw}".`)
  }
  return port
}

/** `CHAT_ORIGINS`: comma-separated origins whose pages may open the socket [none: same origin only]. */
export function envOrigins (env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  return env.CHAT_ORIGINS?.split(',').map((origin) => origin.trim()).filter((origin) => origin !== '')
}

/** Whether pino-pretty can be loaded (a devDependency: absent from a production install). */
function prettyAvailable (): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty')
    return true
  } catch {
    return false
  }
}

/**
 * Fastify's logger for the chat: at `LOG_LEVEL` [info]; readable lines (pino-pretty) when
 * stdout is a terminal or `LOG_FORMAT=pretty`, one JSON object a line otherwise (for log
 * collectors, and `LOG_FORMAT=json` forces it). pino-pretty missing falls back to JSON.
 */
export function chatLogger (env: NodeJS.ProcessEnv = process.env, isTTY = process.stdout.isTTY === true): FastifyServerOptions['logger'] {
  const level = env.LOG_LEVEL ?? 'info'
  const format = env.LOG_FORMAT ?? (isTTY ? 'pretty' : 'json')
  if (format !== 'pretty' && format !== 'json') {
    throw new StartError(`LOG_FORMAT must be "pretty" or "json", got "${format}".`)
  }
  if (format === 'json' || !prettyAvailable()) return { level }
  return {
    level,
    transport: {
      target: 'pino-pretty',
      options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname,reqId', singleLine: true }
    }
  }
}

/** The one line that tells what to change when `listen` fails in a known way, else undefined. */
export function listenProblem (err: unknown, host: string, port: number, command = runCommand()): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  const other = port === 3000 ? 3001 : 3000
  switch (code) {
    case 'EADDRINUSE':
      return `Port ${port} is in use: set PORT to another port (e.g. PORT=${other} ${command}).`
    case 'EACCES':
      return `Port ${port} needs privileges this user lacks: set PORT to a port above 1023 (e.g. PORT=${other} ${command}).`
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return `HOST ${host} is not an address of this machine: set HOST to one of its addresses (e.g. HOST=127.0.0.1 ${command}).`
    default:
      return undefined
  }
}

/** `url` with its password, if any, masked: for a line that may end up in a log. */
function masked (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return url
  }
}

/**
 * Builds the app with `build`; a Redis it cannot reach at `url` becomes a `StartError` that
 * names REDIS_URL, any other failure is thrown as it is.
 */
export async function buildOrExplain<T> (build: () => Promise<T>, redisUrl: string | undefined): Promise<T> {
  try {
    return await build()
  } catch (err) {
    if (redisUrl === undefined || !/cannot connect to redis/i.test((err as Error | undefined)?.message ?? '')) throw err
    const cause = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message
    throw new StartError(`No Redis at REDIS_URL=${masked(redisUrl)} (${cause}): start one there, set REDIS_URL to one that runs, or unset it to run on memory.`)
  }
}

/**
 * Listens on `host`:`port`; a failure `listenProblem` knows becomes a `StartError` (the app
 * closed first, so its broker lets go), any other failure is thrown as it is.
 */
export async function listenOrExplain (app: FastifyInstance, host: string, port: number, command = runCommand()): Promise<string> {
  try {
    return await app.listen({ host, port })
  } catch (err) {
    const problem = listenProblem(err, host, port, command)
    if (problem === undefined) throw err
    await app.close().catch(() => {})
    throw new StartError(problem)
  }
}

/** How a start script ends on a failure: a `StartError` as its line, anything else with its stack. */
export function exitOnStartFailure (err: unknown): never {
  if (err instanceof StartError) process.stderr.write(`${err.message}\n`)
  else console.error(err)
  process.exit(1)
}
