// @ts-check
// Case 6, density: one server process filled to the limit of the machine (about 19,000
// connections under a 20,000 open-files limit), one variant at a time, each in a fresh server.
//
//   fill       `n` connections, each subscribed to one channel and sending `headerBytes` of extra
//              headers, from `clients` load-client processes (one descriptor per connection each:
//              no single client process could hold them all) bound to source addresses
//              127.0.0.2, 127.0.0.3, ... (each address has its own ephemeral ports).
//              Reported: accept rate (connections/s over the whole fill) and the latency of an
//              HTTP GET on the same server, probed every `probeMs` from the runner while the
//              sockets connect (p50, p99, max).
//   memory     heapUsed and RSS after full GC, minus the same figures before the fill, divided
//              by n: heap and RSS per idle connection.
//   broadcast  one broadcast to all n sockets: the server's CPU time from the call until every
//              socket has it, and the delivery latency over all sockets (p50, p99, max).
//
// The server is pinned to CPU 0 and every client process to CPU 1, as in the other cases.
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { spawnChild } from '../lib/rpc.js'
import { now } from '../lib/clock.js'
import { percentile } from '../lib/stats.js'
import { urlFor } from '../lib/variants.js'

const serverScript = fileURLToPath(new URL('../servers/main.js', import.meta.url))
const clientScript = fileURLToPath(new URL('../clients/main.js', import.meta.url))

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * GETs `url` every `everyMs` over one keep-alive connection until stopped; a request that fails
 * is counted, not thrown.
 * @param {string} url
 * @param {number} everyMs
 */
function probeHttp (url, everyMs) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  /** @type {number[]} */
  const samples = []
  let failures = 0
  const state = { running: true }
  const loop = (async () => {
    while (state.running) {
      const t0 = now()
      await new Promise((resolve) => {
        const req = http.get(url, { agent, timeout: 30000 }, (res) => {
          res.resume()
          res.on('end', () => {
            if (res.statusCode === 200) samples.push(now() - t0)
            else failures++
            resolve(undefined)
          })
        })
        req.on('timeout', () => req.destroy(new Error('timeout')))
        req.on('error', () => { failures++; resolve(undefined) })
      })
      const left = everyMs - (now() - t0)
      if (left > 0) await sleep(left)
    }
  })()
  return {
    async stop () {
      state.running = false
      await loop
      agent.destroy()
      const sorted = samples.sort((x, y) => x - y)
      return { count: sorted.length, failures, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? NaN }
    }
  }
}

/**
 * @param {import('../lib/variants.js').Variant} variant
 * @param {{ n: number, clients: number, headerBytes: number, concurrency: number, probeMs: number }} cfg
 * @param {(line: string) => void} log
 */
async function fillOne (variant, cfg, log) {
  /** @type {import('../lib/rpc.js').Child[]} */
  const children = []
  try {
    const server = await spawnChild(serverScript, { name: `server ${variant.label}`, args: [variant.module], cpu: 0, nodeFlags: ['--expose-gc'] })
    children.push(server)
    const started = await server.call('start', {}, 20000)
    const url = urlFor(variant, started)
    const clients = []
    for (let i = 0; i < cfg.clients; i++) {
      const client = await spawnChild(clientScript, { name: `load client ${i + 1} ${variant.label}`, cpu: 1, nodeFlags: ['--max-old-space-size=4096'] })
      children.push(client)
      clients.push(client)
    }
    const base = await server.call('memory', {}, 30000)

    // Fill: every client process opens its share at once; the HTTP probe runs throughout.
    const shares = clients.map((_, i) => Math.floor(cfg.n / cfg.clients) + (i < cfg.n % cfg.clients ? 1 : 0))
    const probe = probeHttp(`http://127.0.0.1:${started.port}/ping`, cfg.probeMs)
    const t0 = now()
    const fills = await Promise.allSettled(clients.map((client, i) => client.call('connect', {
      kind: variant.client,
      url,
      n: shares[i],
      channel: 'bench',
      concurrency: cfg.concurrency,
      timeoutMs: 60000,
      localAddress: `127.0.0.${i + 2}`,
      headerBytes: cfg.headerBytes
    }, 600000 + shares[i] * 50)))
    const fillMs = now() - t0
    const httpLatency = await probe.stop()
    const failed = fills.find((f) => f.status === 'rejected')
    if (failed) throw /** @type {PromiseRejectedResult} */ (failed).reason
    const seen = await server.call('connections')
    if (seen !== cfg.n) throw new Error(`server sees ${seen} connections, expected ${cfg.n}`)

    // Memory: let the accept and upgrade garbage settle, then measure after full GC.
    await sleep(500)
    const m = await server.call('memory', {}, 60000)

    // One broadcast to every socket.
    await Promise.all(clients.map((c) => c.call('arm', { mode: 'latency', perSocket: 1 })))
    await server.call('paced', { channel: 'bench', event: 'tick', count: 1, size: 100, rate: 1 }, 60000)
    const waits = await Promise.all(clients.map((c) => c.call('wait', { timeoutMs: 60000, raw: true }, 90000)))
    const cpu = await server.call('cpu')
    const delivered = waits.reduce((sum, w) => sum + w.delivered, 0)
    if (delivered !== cfg.n) throw new Error(`broadcast reached ${delivered} of ${cfg.n} sockets`)
    const samples = waits.flatMap((w) => w.samples ?? []).sort((x, y) => x - y)

    const row = {
      connections: cfg.n,
      heapPerConn: (m.heapUsed - base.heapUsed) / cfg.n,
      rssPerConn: (m.rss - base.rss) / cfg.n,
      externalPerConn: (m.external - base.external) / cfg.n,
      heapMb: m.heapUsed / 1048576,
      rssMb: m.rss / 1048576,
      fillSeconds: fillMs / 1000,
      acceptPerSec: cfg.n / (fillMs / 1000),
      httpP50Ms: httpLatency.p50Ms,
      httpP99Ms: httpLatency.p99Ms,
      httpMaxMs: httpLatency.maxMs,
      httpRequests: httpLatency.count,
      httpFailures: httpLatency.failures,
      broadcastCpuMs: cpu.cpuMs,
      deliveryP50Ms: percentile(samples, 50),
      deliveryP99Ms: percentile(samples, 99),
      deliveryMaxMs: samples.at(-1) ?? NaN
    }
    log(`  ${variant.label}: ${cfg.n} conns in ${row.fillSeconds.toFixed(1)} s (${Math.round(row.acceptPerSec)}/s), ` +
      `heap ${Math.round(row.heapPerConn)} B/conn, rss ${Math.round(row.rssPerConn)} B/conn, ` +
      `HTTP p99 ${row.httpP99Ms.toFixed(1)} ms during the fill, broadcast ${row.broadcastCpuMs.toFixed(0)} ms CPU, p99 ${row.deliveryP99Ms.toFixed(1)} ms`)
    return row
  } finally {
    // Clients first: the server then sees the closes instead of a dead peer.
    await Promise.all(children.slice(1).map((c) => c.kill()))
    await children[0]?.kill()
  }
}

/**
 * @param {import('../run.js').Ctx} ctx
 * @param {import('../lib/variants.js').Variant[]} variants
 */
export async function density (ctx, variants) {
  const cfg = ctx.config.density
  /** @type {Record<string, any>} */
  const out = {}
  ctx.log(`  ${cfg.n} connections per server, ${cfg.clients} client processes, ${cfg.headerBytes} B of extra headers each`)
  for (const variant of variants) {
    try {
      const row = await fillOne(variant, cfg, ctx.log)
      out[variant.key] = { config: cfg, median: row }
    } catch (err) {
      out[variant.key] = { error: /** @type {Error} */ (err).message }
    }
    // Let the kernel reap the closed sockets before the next server fills up.
    await sleep(1000)
  }
  return out
}
