// @ts-check
// Ratios of (a) against (b) and (c), and the printed table.

/** @param {number | undefined} x @param {number | undefined} y */
function ratio (x, y) {
  return typeof x === 'number' && typeof y === 'number' && Number.isFinite(x) && Number.isFinite(y) && y !== 0 ? x / y : null
}

/**
 * @param {Record<string, any>} cases results.cases
 * @param {string} caseName
 * @param {(r: any) => number | undefined} pick
 */
function againstOthers (cases, caseName, pick) {
  const c = cases[caseName]
  if (!c) return null
  const get = (/** @type {string} */ k) => (c[k] && !c[k].error && !c[k].skipped ? pick(c[k]) : undefined)
  return { aOverB: ratio(get('a'), get('b')), aOverC: ratio(get('a'), get('c')) }
}

/** The density case's rows: which figure, its label, its digits. */
const densityMetrics = [
  { key: 'heapPerConn', label: 'heap B/conn', digits: 0 },
  { key: 'rssPerConn', label: 'rss B/conn', digits: 0 },
  { key: 'acceptPerSec', label: 'accepted conns/s', digits: 0 },
  { key: 'httpP99Ms', label: 'HTTP p99 ms while filling', digits: 1 },
  { key: 'broadcastCpuMs', label: 'broadcast to all: server CPU ms', digits: 0 },
  { key: 'deliveryP99Ms', label: 'broadcast to all: p99 ms', digits: 1 }
]

/** @param {Record<string, any>} cases */
export function computeRatios (cases) {
  /** @type {Record<string, any>} */
  const out = {}
  if (cases.burst) {
    out.burstDeliveriesPerSec = againstOthers(cases, 'burst', (r) => r.median.deliveriesPerSec)
    out.burstServerCpuPerDelivery = againstOthers(cases, 'burst', (r) => r.median.serverCpuUsPerDelivery)
  }
  if (cases.paced) {
    out.pacedP50 = againstOthers(cases, 'paced', (r) => r.median.p50Ms)
    out.pacedP99 = againstOthers(cases, 'paced', (r) => r.median.p99Ms)
  }
  if (cases.memory) {
    const ns = new Set(Object.values(cases.memory).flatMap((r) => (r && r.byN ? Object.keys(r.byN) : [])))
    out.memoryHeapPerConn = {}
    out.memoryRssPerConn = {}
    for (const n of ns) {
      out.memoryHeapPerConn[n] = againstOthers(cases, 'memory', (r) => r.byN[n]?.median.heapPerConn)
      out.memoryRssPerConn[n] = againstOthers(cases, 'memory', (r) => r.byN[n]?.median.rssPerConn)
    }
  }
  if (cases.density) {
    out.density = {}
    for (const key of densityMetrics.map((m) => m.key)) out.density[key] = againstOthers(cases, 'density', (r) => r.median[key])
  }
  if (cases.connect) out.connectServerCpuPerConn = againstOthers(cases, 'connect', (r) => r.median.serverCpuUsPerConn)
  const a = cases.inbound?.a
  if (a && !a.error && !a.skipped) {
    out.inboundSchemaOverPlain = ratio(a.schema?.median.msgsPerSec, a.plain?.median.msgsPerSec)
    // CPU per message is steadier than wall-clock msgs/s; above 1 = what validation costs.
    out.inboundCpuSchemaOverPlain = ratio(a.schema?.median.serverCpuUsPerMsg, a.plain?.median.serverCpuUsPerMsg)
  }
  return out
}

/** @param {number | null | undefined} x @param {number} [digits] */
function fmt (x, digits = 0) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-'
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** @param {any} r */
function cellStatus (r) {
  if (!r) return '-'
  if (r.skipped) return 'skipped'
  if (r.error) return 'ERROR'
  return null
}

/**
 * @param {any} results
 * @returns {string}
 */
export function formatTable (results) {
  const { cases, ratios } = results
  /** @type {string[][]} */
  const rows = [['case', 'metric', '(a) channels', '(b) hand-written', '(c) socket.io', 'a/b', 'a/c']]
  /**
   * @param {string} caseName @param {string} metric @param {(r: any) => number | undefined} pick
   * @param {number} digits @param {{ aOverB: number | null, aOverC: number | null } | null | undefined} rat
   */
  const add = (caseName, metric, pick, digits, rat) => {
    const c = cases[caseName]
    const cell = (/** @type {string} */ k) => cellStatus(c[k]) ?? fmt(pick(c[k]), digits)
    rows.push([caseName, metric, cell('a'), cell('b'), cell('c'), fmt(rat?.aOverB, 2), fmt(rat?.aOverC, 2)])
  }
  if (cases.burst) {
    const cfg = Object.values(cases.burst).find((r) => r?.config)?.config
    const shape = cfg ? ` (${cfg.n}x${cfg.messages})` : ''
    add('burst', `deliveries/s${shape}`, (r) => r.median.deliveriesPerSec, 0, ratios.burstDeliveriesPerSec)
    add('burst', 'server CPU us/delivery', (r) => r.median.serverCpuUsPerDelivery, 2, ratios.burstServerCpuPerDelivery)
  }
  if (cases.paced) {
    const cfg = Object.values(cases.paced).find((r) => r?.config)?.config
    const shape = cfg ? ` (${cfg.n} subs, ${cfg.rate}/s)` : ''
    add('paced', `p50 ms${shape}`, (r) => r.median.p50Ms, 2, ratios.pacedP50)
    add('paced', 'p99 ms', (r) => r.median.p99Ms, 2, ratios.pacedP99)
    add('paced', 'max ms', (r) => r.median.maxMs, 2, null)
  }
  if (cases.memory) {
    for (const n of Object.keys(ratios.memoryHeapPerConn ?? {})) {
      add('memory', `heap B/conn N=${n}`, (r) => r.byN?.[n]?.median.heapPerConn, 0, ratios.memoryHeapPerConn[n])
      add('memory', `rss B/conn N=${n}`, (r) => r.byN?.[n]?.median.rssPerConn, 0, ratios.memoryRssPerConn[n])
    }
  }
  if (cases.density) {
    const cfg = Object.values(cases.density).find((r) => r?.config)?.config
    for (const m of densityMetrics) {
      const label = m.key === 'heapPerConn' && cfg ? `${m.label} (N=${cfg.n}, ${cfg.headerBytes} B headers)` : m.label
      add('density', label, (r) => r.median?.[m.key], m.digits, ratios.density?.[m.key])
    }
  }
  if (cases.connect) {
    const cfg = Object.values(cases.connect).find((r) => r?.config)?.config
    add('connect', `server CPU us/connection${cfg ? ` (${cfg.n} opening and subscribing)` : ''}`, (r) => r.median.serverCpuUsPerConn, 0, ratios.connectServerCpuPerConn)
    add('connect', 'connects/s', (r) => r.median.connectsPerSec, 0, null)
  }
  const w = cases.workers
  if (w && w.one) {
    const shape = w.config ? ` (${w.config.n}x${w.config.messages}, Redis)` : ''
    rows.push(['workers', `1 worker deliveries/s${shape}`, fmt(w.one.median.deliveriesPerSec), '', '', '', ''])
    rows.push(['workers', '2 workers deliveries/s', fmt(w.two.median.deliveriesPerSec), '', '', '', ''])
    rows.push(['workers', 'deliveries/s 2 / 1', fmt(w.ratios.deliveriesPerSecTwoOverOne, 2), '', '', '', ''])
    rows.push(['workers', 'CPU us/delivery 2 / 1', fmt(w.ratios.cpuPerDeliveryTwoOverOne, 2), '', '', '', ''])
  }
  if (cases.inbound) {
    const a = cases.inbound.a
    const st = cellStatus(a)
    rows.push(['inbound', 'msgs/s no schema', st ?? fmt(a.plain?.median.msgsPerSec), '', '', '', ''])
    rows.push(['inbound', 'msgs/s TypeBox schema', st ?? fmt(a.schema?.median.msgsPerSec), '', '', '', ''])
    rows.push(['inbound', 'msgs/s schema / no schema', fmt(ratios.inboundSchemaOverPlain, 2), '', '', '', ''])
    rows.push(['inbound', 'server CPU us/msg no schema', st ?? fmt(a.plain?.median.serverCpuUsPerMsg, 2), '', '', '', ''])
    rows.push(['inbound', 'server CPU us/msg schema', st ?? fmt(a.schema?.median.serverCpuUsPerMsg, 2), '', '', '', ''])
    rows.push(['inbound', 'CPU/msg schema / no schema', fmt(ratios.inboundCpuSchemaOverPlain, 2), '', '', '', ''])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows
    .map((r) => r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '))
    .join('\n')
}
