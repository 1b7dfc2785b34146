// @ts-check
// A load-client process of the reconnect-storm bench (bench/storm/run.js): many bundled clients
// (dist/client, the very client of `fastify-channels/client`, with `ws`) behind an emulated load
// balancer, from one source address (127.0.0.x). Driven over IPC (lib/rpc.js):
//
//   connect   { n, firstUser, upstreams, localAddress, rooms, reconnectJitter, concurrency }: opens
//             `n` clients, user u in room-(u % rooms), each subscribed and tracked in its room
//   phase     { name }: the phase the next latency samples belong to
//   mark      the storm begins: recovery is timed from now (the shared clock)
//   status    how many clients dropped since the mark, how many are back and recovered
//   finish    { seqs }: every room's last published seq: counts losses and duplicates, returns
//             the latency samples and the recovery times
//
// The load balancer: each connection attempt picks one upstream at random among those up, and
// a connect that the kernel refuses (nobody listens: a node that stopped accepting) is retried
// on the other one at once, as nginx does with `proxy_next_upstream error`. An HTTP refusal
// (503) is not retried: the client sees it, as it would through nginx.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import WebSocket from 'ws'
import { serve } from '../lib/rpc.js'
import { now } from '../lib/clock.js'

const { connect } = await import(new URL('../../dist/client/index.js', import.meta.url).href)

/** @type {string[]} ws://127.0.0.1:port of each node, index = node number */
let upstreams = []
let localAddress = '127.0.0.1'
const counts = { attempts: 0, failovers: 0, refusedAtUpgrade: [0, 0], opened: [0, 0] }

/**
 * A WebSocket for the bundled client that is really a connection through the balancer.
 * `holder.node` tells which node the client is on now.
 */
function balancedSocketClass (/** @type {{ node: number }} */ holder) {
  return class Balanced {
    /** @param {string} url the client's URL: its path and query are kept, its host is the balancer's */
    constructor (url) {
      const { pathname, search } = new URL(url)
      this.path = pathname + search
      /** @type {WebSocket | undefined} */
      this.ws = undefined
      /** @type {any} */ this.onopen = null
      /** @type {any} */ this.onmessage = null
      /** @type {any} */ this.onclose = null
      /** @type {any} */ this.onerror = null
      const first = Math.floor(Math.random() * upstreams.length)
      this.order = upstreams.map((_, i) => (first + i) % upstreams.length)
      counts.attempts++
      this.attempt(0)
    }

    get readyState () { return this.ws?.readyState ?? WebSocket.CONNECTING }

    /** @param {string} data */
    send (data) { this.ws?.send(data) }

    /** @param {number} [code] @param {string} [reason] */
    close (code, reason) {
      const ws = this.ws
      if (ws === undefined) return
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate()
      else ws.close(code, reason)
    }

    /** @param {number} i */
    attempt (i) {
      const node = this.order[i]
      const ws = new WebSocket(upstreams[node] + this.path, { localAddress, handshakeTimeout: 10_000, perMessageDeflate: false })
      this.ws = ws
      let opened = false
      let abandoned = false
      ws.on('open', () => {
        opened = true
        holder.node = node
        counts.opened[node]++
        this.onopen?.({})
      })
      ws.on('message', (data, isBinary) => {
        if (abandoned) return
        const text = isBinary ? data : data.toString()
        if (typeof text === 'string') countFrame(text)
        this.onmessage?.({ data: text })
      })
      ws.on('unexpected-response', (_req, res) => {
        counts.refusedAtUpgrade[node]++
        res.resume()
        ws.terminate()
      })
      ws.on('error', (/** @type {NodeJS.ErrnoException} */ err) => {
        if (!opened && err.code === 'ECONNREFUSED' && i + 1 < this.order.length) {
          abandoned = true
          counts.failovers++
          this.attempt(i + 1)
          return
        }
        if (!abandoned) this.onerror?.(err)
      })
      ws.on('close', (code, reason) => { if (!abandoned) this.onclose?.({ code, reason: reason.toString() }) })
    }
  }
}

/** Frames received per phase, by type: phase → type → count (what the clients' CPU went to). */
/** @type {Record<string, Record<string, number>>} */
const frames = {}

/** @param {string} text a frame as it came off the wire: `{"type":"…",…}` */
function countFrame (text) {
  const type = text.startsWith('{"type":"') ? text.slice(9, text.indexOf('"', 9)) : '(other)'
  const byType = (frames[phase] ??= {})
  byType[type] = (byType[type] ?? 0) + 1
}

// ---- the clients -----------------------------------------------------------------------------------

/**
 * @typedef {object} Member
 * @property {any} client
 * @property {{ node: number }} holder
 * @property {string} room
 * @property {number | undefined} last  the last seq received in its room
 * @property {number} joinedAt  when it last got `subscribed` (messages published before are catch-up)
 * @property {number} droppedAt  when it lost its connection after the mark (0: not since)
 * @property {number} recoveredAt  when it got `subscribed` with recovered: true after that (0: not yet)
 */

/** @type {Member[]} */
const members = []
const tally = { lost: 0, duplicated: 0, recoveredFalse: 0, drops: 0 }
let markAt = 0
let phase = 'fill'
/** latency samples per phase, per node: [phase][node] → ms */
/** @type {Record<string, number[][]>} */
const samples = {}
let cpuMark = process.cpuUsage()
const loopDelay = monitorEventLoopDelay({ resolution: 5 })
loopDelay.enable()
let peakRss = 0
setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }, 200).unref()

/** @param {Member} m @param {any} data */
function onTick (m, data) {
  const { seq, t } = data
  if (m.last === undefined) m.last = seq
  else if (seq === m.last + 1) m.last = seq
  else if (seq <= m.last) tally.duplicated++
  else {
    tally.lost += seq - m.last - 1
    m.last = seq
  }
  // Live deliveries only: what was published before the client (re)joined is catch-up.
  if (t >= m.joinedAt) {
    const byNode = (samples[phase] ??= [[], []])
    byNode[m.holder.node].push(now() - t)
  }
}

/**
 * @param {number} user
 * @param {number} rooms
 * @param {number} reconnectJitter
 * @returns {Promise<void>}
 */
function open (user, rooms, reconnectJitter) {
  const holder = { node: -1 }
  const room = `room-${user % rooms}`
  const client = connect('ws://balancer/ws', {
    WebSocket: balancedSocketClass(holder),
    params: { u: String(user) },
    reconnectJitter,
    timeout: 20_000
  })
  /** @type {Member} */
  const m = { client, holder, room, last: undefined, joinedAt: 0, droppedAt: 0, recoveredAt: 0 }
  members.push(m)
  client.on('tick', (/** @type {any} */ data) => onTick(m, data))
  client.onStatus((/** @type {string} */ status) => {
    if (status === 'reconnecting' && markAt !== 0 && m.droppedAt === 0) {
      m.droppedAt = now()
      tally.drops++
    }
  })
  client.onSubscribed((/** @type {string} */ channel, /** @type {any} */ info) => {
    m.joinedAt = now()
    // Tracked again in every new session (presence belongs to a connection).
    client.send('track', { key: `u${user}` }, { channel })
    if (m.droppedAt === 0 || m.recoveredAt !== 0) return
    if (info.recovered === true) m.recoveredAt = now()
    else if (info.recovered === false) {
      tally.recoveredFalse++
      m.recoveredAt = now()
      m.last = undefined // it cannot count across a gap it was told about
    }
  })
  return client.subscribe(room)
}

serve({
  /** @param {{ n: number, firstUser: number, upstreams: string[], localAddress: string, rooms: number, reconnectJitter: number, concurrency: number }} args */
  async connect (args) {
    const cpu = process.cpuUsage()
    upstreams = args.upstreams
    localAddress = args.localAddress
    let next = 0
    const worker = async () => {
      while (next < args.n) {
        const user = args.firstUser + next++
        await open(user, args.rooms, args.reconnectJitter)
      }
    }
    await Promise.all(Array.from({ length: args.concurrency }, worker))
    const used = process.cpuUsage(cpu)
    return { clients: members.length, counts, cpuMs: (used.user + used.system) / 1000 }
  },

  /** @param {{ name: string }} args */
  phase ({ name }) {
    phase = name
    return true
  },

  mark () {
    markAt = now()
    cpuMark = process.cpuUsage()
    loopDelay.reset()
    peakRss = process.memoryUsage.rss()
    return markAt
  },

  status () {
    let dropped = 0
    let back = 0
    let maxRecoveredAt = 0
    let open = 0
    for (const m of members) {
      if (m.client.status === 'open') open++
      if (m.droppedAt === 0) continue
      dropped++
      if (m.recoveredAt !== 0) {
        back++
        maxRecoveredAt = Math.max(maxRecoveredAt, m.recoveredAt)
      }
    }
    return { clients: members.length, open, dropped, back, maxRecoveredAt, counts }
  },

  /** @param {{ seqs: number[] }} args */
  finish ({ seqs }) {
    // Whatever a client has not received of its room by now is lost (the runner waited first).
    // (A client reset by a `recovered: false` and given nothing since is counted there.)
    let tailLost = 0
    for (const m of members) {
      const last = seqs[Number(m.room.slice('room-'.length))]
      if (m.last !== undefined && m.last < last) tailLost += last - m.last
    }
    const cpu = process.cpuUsage(cpuMark)
    const recoveries = members.filter((m) => m.droppedAt !== 0).map((m) => ({ droppedAt: m.droppedAt, recoveredAt: m.recoveredAt }))
    return {
      lost: tally.lost + tailLost,
      duplicated: tally.duplicated,
      recoveredFalse: tally.recoveredFalse,
      drops: tally.drops,
      recoveries,
      samples,
      counts,
      frames,
      cpuMs: (cpu.user + cpu.system) / 1000,
      loopDelayMaxMs: loopDelay.max / 1e6,
      peakRssMb: peakRss / 1048576
    }
  },

  close () {
    for (const m of members) m.client.close()
    return true
  }
})
