/**
 * The example chat on N worker processes behind one port: one machine's cores, one Redis.
 * node:cluster's primary owns the listening socket and hands each new connection to a worker
 * (round robin); a WebSocket stays on the worker that accepted it. Every worker registers the
 * Redis broker under the same prefix, so a message sent on one worker reaches the sockets of all.
 *
 *   WORKERS=2 REDIS_URL=redis://127.0.0.1:6379 node dist/example-chat/cluster.js
 *
 *   WORKERS            worker processes [the number of CPUs]; more than 1 needs REDIS_URL
 *   REDIS_URL          the Redis every worker shares
 *   CHAT_REDIS_PREFIX  the broker's key and channel prefix ['chat']: one per chat deployment
 *   HOST, PORT, LOG_LEVEL, LOG_FORMAT, CHAT_PASSWORD, CHAT_ORIGINS   as for server.ts (see run.ts)
 *
 * Each worker sends a new socket one `worker` event ({ worker, pid }): which process serves it.
 * What the chat keeps in memory (room member lists, the history shown to newcomers) is per
 * worker; channel traffic is not. See docs/scaling-out-processes.md.
 */
import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { redisBroker } from '../plugin/index.js'
import { buildChatApp } from './server.js'
import { buildOrExplain, chatLogger, envOrigins, envPort, exitOnStartFailure, listenOrExplain, runCommand, StartError } from './run.js'

/** A worker that dies this soon after its start is not restarted again (a crash loop). */
const crashLoopMs = 5000

function workerCount (): number {
  const raw = process.env.WORKERS
  if (raw === undefined || raw === '') return availableParallelism()
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new StartError(`WORKERS: expected a whole number of processes ≥ 1, got "${raw}"`)
  return n
}

function runPrimary (): void {
  const workers = workerCount()
  if (workers > 1 && (process.env.REDIS_URL === undefined || process.env.REDIS_URL === '')) {
    // Without a shared broker each worker would be its own chat: refuse instead of half-working.
    throw new StartError(`WORKERS=${workers} needs REDIS_URL: the workers share their channels through Redis`)
  }
  let stopping = false
  const startedAt = new Map<number, number>()
  const fork = (): void => {
    const worker = cluster.fork()
    startedAt.set(worker.id, Date.now())
  }
  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker.id) ?? 0)
    startedAt.delete(worker.id)
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
      return
    }
    process.stderr.write(`chat cluster: worker ${worker.id} exited (code ${String(code)}, signal ${String(signal)})\n`)
    if (lived < crashLoopMs) {
      process.stderr.write('chat cluster: it died right after starting; not restarting it\n')
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(1)
      return
    }
    fork()
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopping = true
      const alive = Object.values(cluster.workers ?? {})
      if (alive.length === 0) process.exit(0)
      // Each worker closes its sockets with 1001 and leaves Redis cleanly (fastify.close()).
      for (const worker of alive) worker?.process.kill('SIGTERM')
    })
  }
  for (let i = 0; i < workers; i++) fork()
}

async function runWorker (): Promise<void> {
  const host = process.env.HOST ?? '127.0.0.1'
  const port = envPort()
  const origins = envOrigins()
  const url = process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL
  const broker = url === undefined ? undefined : redisBroker({ url, prefix: process.env.CHAT_REDIS_PREFIX ?? 'chat' })
  const app = await buildOrExplain(async () => await buildChatApp({
    logger: chatLogger(),
    channels: { ...(origins === undefined ? {} : { origins }), ...(broker === undefined ? {} : { broker }) }
  }), url)
  const worker = cluster.worker?.id ?? 0
  app.channels.on('connect', (socket) => {
    socket.send({ worker, pid: process.pid }, { event: 'worker' })
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.close().then(() => process.exit(0), (err: unknown) => {
        app.log.error({ err }, 'close failed')
        process.exit(1)
      })
    })
  }
  // In a worker, listen() asks the primary for the shared socket: every worker gets the same
  // port, PORT=0 included. A taken port fails each worker with one line, and the primary, seeing
  // them die right after starting, gives up.
  await listenOrExplain(app, host, port, runCommand('dist/example-chat/cluster.js'))
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    if (cluster.isPrimary) runPrimary()
    else runWorker().catch(exitOnStartFailure)
  } catch (err) {
    exitOnStartFailure(err)
  }
}
