// @ts-check
// The server of the workers case: variant (a) on W worker processes behind one port
// (node:cluster), every worker on the same Redis broker, as example-chat/cluster.ts runs it.
//
//   node bench/servers/workers.js          the primary: answers the runner over IPC (lib/rpc.js)
//   (forked by it) ... workers.js worker   one worker: Fastify + the plugin + redisBroker
//
// Runner commands: start({ workers, redisUrl, prefix }) → { port, path }; connections() (the sum
// over workers); markCpu(); cpu() (all workers' CPU ms since markCpu); burst({ count, size }):
// every worker broadcasts its share of `count` payloads at once (worker k sends seq k, k+W, ...),
// so the publishing load is spread over the workers as clients spread over them.
import cluster from 'node:cluster'
import { serve } from '../lib/rpc.js'
import { now } from '../lib/clock.js'
import { makePayload } from '../lib/payload.js'
import { channelsEntry } from '../lib/variants.js'

const channel = 'bench'
const event = 'tick'

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function runWorker () {
  const { default: fastifyChannels, redisBroker } = await import(channelsEntry().href)
  const { default: Fastify } = await import('fastify')
  const index = Number(process.env.BENCH_WORKER_INDEX)
  const workers = Number(process.env.BENCH_WORKERS)
  /** @type {any} */
  const app = Fastify({ logger: false })
  const broker = redisBroker({ url: process.env.BENCH_REDIS_URL, prefix: process.env.BENCH_PREFIX })
  await app.register(fastifyChannels, { path: '/ws', client: false, rateLimit: false, heartbeat: false, broker })
  await app.listen({ host: '127.0.0.1', port: 0 })
  let cpuMark = process.cpuUsage()
  /** @type {Record<string, (args: any) => any>} */
  const handlers = {
    connections: () => app.channels.stats().sockets,
    markCpu () { cpuMark = process.cpuUsage(); return true },
    cpu () {
      const d = process.cpuUsage(cpuMark)
      return (d.user + d.system) / 1000
    },
    async burst (/** @type {{ count: number, size: number }} */ { count, size }) {
      const payloads = []
      for (let seq = index; seq < count; seq += workers) payloads.push(makePayload(seq, 0, size))
      const t0 = now()
      await Promise.all(payloads.map((p) => app.broadcastChannel(channel, p, { event })))
      return t0
    }
  }
  process.on('message', async (/** @type {{ id: number, cmd: string, args?: any }} */ msg) => {
    try {
      process.send?.({ id: msg.id, ok: true, result: await handlers[msg.cmd](msg.args ?? {}) })
    } catch (err) {
      process.send?.({ id: msg.id, ok: false, error: String(/** @type {Error} */ (err).stack ?? err) })
    }
  })
  process.send?.({ id: 0, ok: true, result: { port: app.server.address().port } })
}

function runPrimary () {
  /** @type {import('node:cluster').Worker[]} */
  const workers = []
  let nextId = 1
  /**
   * @param {import('node:cluster').Worker} worker @param {string} cmd @param {any} [args]
   * @returns {Promise<any>}
   */
  const ask = (worker, cmd, args) => new Promise((resolve, reject) => {
    const id = nextId++
    const timer = setTimeout(() => { worker.off('message', onMessage); reject(new Error(`worker: '${cmd}' timed out`)) }, 60000)
    const onMessage = (/** @type {{ id: number, ok: boolean, result?: any, error?: string }} */ msg) => {
      if (msg.id !== id) return
      clearTimeout(timer)
      worker.off('message', onMessage)
      if (msg.ok) resolve(msg.result)
      else reject(new Error(msg.error))
    }
    worker.on('message', onMessage)
    worker.send({ id, cmd, args })
  })
  const all = (/** @type {string} */ cmd, /** @type {any} */ args) => Promise.all(workers.map((w) => ask(w, cmd, args)))

  serve({
    /** @param {{ workers: number, redisUrl: string, prefix: string }} args */
    async start ({ workers: count, redisUrl, prefix }) {
      cluster.setupPrimary({ exec: process.argv[1], args: ['worker'] })
      const ports = await Promise.all(Array.from({ length: count }, (_, i) => new Promise((resolve, reject) => {
        const worker = cluster.fork({ BENCH_WORKER_INDEX: String(i), BENCH_WORKERS: String(count), BENCH_REDIS_URL: redisUrl, BENCH_PREFIX: prefix })
        workers.push(worker)
        worker.once('exit', (code) => reject(new Error(`worker ${i} exited (code ${code}) before listening`)))
        const onReady = (/** @type {{ id: number, result: { port: number } }} */ msg) => {
          if (msg.id !== 0) return
          worker.off('message', onReady)
          resolve(msg.result.port)
        }
        worker.on('message', onReady)
      })))
      if (new Set(ports).size !== 1) throw new Error(`workers listen on different ports: ${ports.join(', ')}`)
      return { port: ports[0], path: '/ws' }
    },
    async connections () {
      /** @type {number[]} */
      const each = await all('connections')
      return each.reduce((sum, n) => sum + n, 0)
    },
    async perWorker () { return await all('connections') },
    async markCpu () { await all('markCpu'); return true },
    async cpu () {
      /** @type {number[]} */
      const each = await all('cpu')
      return { cpuMs: each.reduce((sum, ms) => sum + ms, 0) }
    },
    /** @param {{ count: number, size: number }} args */
    async burst (args) {
      /** @type {number[]} */
      const starts = await all('burst', args)
      return { t0: Math.min(...starts) }
    },
    async stop () {
      for (const w of workers) w.kill('SIGKILL')
      await sleep(100)
      setImmediate(() => process.exit(0))
      return true
    }
  })
  // Workers die with the primary (the runner SIGKILLs it): cluster workers exit when their IPC
  // channel closes.
}

if (cluster.isPrimary) runPrimary()
else {
  process.on('disconnect', () => process.exit(0))
  runWorker().catch((err) => {
    process.stderr.write(String(err?.stack ?? err) + '\n')
    process.exit(1)
  })
}
