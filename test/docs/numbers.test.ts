/**
 * Numbers the docs quote are the code's numbers:
 * - the browser bundle's size ("about N KB gzipped", "about N KB minified") against a fresh
 *   build, the same build `npm run build` writes to dist/browser/client.js (built here into a
 *   temporary directory, so neither a missing nor a stale dist/ matters): within half a KB
 *   (1 KB = 1024 bytes), and an upper bound ("at most N KB") must hold;
 * - every default and limit quoted in prose, each from the constant the code uses (or, where
 *   the code keeps none, measured: a session id is read off a real connection);
 * - the option tables of docs/security.md, like the README's.
 * Each quoted figure below is found by a phrase of its page: a figure whose phrase is reworded
 * fails until its entry here is updated, so none can go unchecked silently.
 */
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import Fastify from 'fastify'
import fastifyChannels from '../../plugin/index.js'
import {
  defaultHeartbeat, defaultHistorySize, defaultHistoryTtl, defaultMaxBufferedBytes, defaultMaxChannels,
  defaultMaxPayload, defaultRateLimit
} from '../../plugin/options.js'
import { inboxHighWater } from '../../plugin/connection/inbox.js'
import { abusiveWindows } from '../../plugin/connection/rate-limit.js'
import { maxReportedIssues } from '../../plugin/handlers/validate.js'
import { maxPresenceKeyLength, maxPresenceMetaBytes } from '../../plugin/presence/tracker.js'
import { busyPresenceWindowMs, presenceWindowMs } from '../../plugin/presence/diff-windows.js'
import { shutdownGraceMs, shutdownHandlersMs } from '../../plugin/node/server.js'
import { historyStateTtl } from '../../plugin/broker/types.js'
import { defaultNodeTtl } from '../../plugin/broker/redis/broker.js'
import { MAX_CHANNEL_LENGTH } from '../../schemas/channel.js'
import * as client from '../../client/index.js'
import { defaultProblem, optionCell } from './defaults.js'
import { readDoc, section, tableRows } from './markdown.js'

const KB = 1024

// ---- the bundle -------------------------------------------------------------------------------

t.test('the bundle sizes the docs quote are the real ones', async (t) => {
  const dir = t.testdir()
  // @ts-expect-error a plain .mjs build script, without types
  const { buildClient } = await import('../../scripts/build-client.mjs') as { buildClient: (outdir: string) => Promise<string[]> }
  await buildClient(dir)
  const code = await readFile(join(dir, 'client.js'))
  const actual = { gzipped: gzipSync(code).length / KB, minified: code.length / KB }
  t.comment(`client.js: ${actual.minified.toFixed(2)} KB minified, ${actual.gzipped.toFixed(2)} KB gzipped`)

  for (const file of ['README.md', 'docs/client.md']) {
    const quotes = [...readDoc(file).matchAll(/(about|at most)?\s*(\d+(?:\.\d+)?)\s+KB\s+(gzipped|minified)/g)]
    t.ok(quotes.some(([, how, , what]) => how === 'about' && what === 'gzipped'), `${file} says "about N KB gzipped"`)
    for (const [phrase, how, figure, what] of quotes) {
      const real = actual[what as 'gzipped' | 'minified']
      if (how === 'about') t.ok(Math.abs(real - Number(figure)) < 0.5, `${file}: "${phrase.trim()}" (it is ${real.toFixed(2)} KB)`)
      else if (how === 'at most') t.ok(real <= Number(figure), `${file}: "${phrase.trim()}" holds (${real.toFixed(2)} KB)`)
      else t.fail(`${file}: "${phrase.trim()}": say "about" or "at most"`)
    }
  }
})

// ---- figures quoted in prose -------------------------------------------------------------------

/** A real connection's session id: the docs quote its length and its bits. */
async function sessionIdLength (): Promise<number> {
  const app = Fastify()
  await app.register(fastifyChannels, { client: false })
  try {
    const socket = await app.channels.inject()
    return (socket.sessionId ?? '').length
  } finally {
    await app.close()
  }
}

/** The backoff's first and last ranges, in ms (its jitter drawn at both ends). */
function backoffRange (tries: number): [number, number] {
  return [client.exponentialBackoff({ random: () => 0 })(tries), client.exponentialBackoff({ random: () => 1 })(tries)]
}

interface Quote {
  file: string
  /** finds the figure(s) in the page; each capture group is one figure */
  phrase: RegExp
  /** the figures, in capture order */
  expected: number[]
}

async function quotes (): Promise<Quote[]> {
  const idLength = await sessionIdLength()
  const bits = idLength * 6 // base64url: 6 bits a character
  // plugin/broker/redis/presence.ts: dead nodes are looked for every min(2 s, nodeTtl / 5)
  const presenceReapS = (defaultNodeTtl + Math.min(2000, defaultNodeTtl / 5)) / 1000
  const [firstLow, firstHigh] = backoffRange(1)
  const [lastLow, lastHigh] = backoffRange(30)
  return [
    { file: 'README.md', phrase: /queue \(at most (\d+), then the socket stops reading/, expected: [inboxHighWater] },
    { file: 'README.md', phrase: /`errors: \[\{ path, message \}\]`\s+\(at most (\d+)\)/, expected: [maxReportedIssues] },
    { file: 'README.md', phrase: /the session id: (\d+) random bits/, expected: [bits] },
    { file: 'README.md', phrase: /merged over (\d+) ms/, expected: [presenceWindowMs] },
    { file: 'README.md', phrase: /removed everywhere within about (\d+) s/, expected: [presenceReapS] },
    { file: 'README.md', phrase: /gives peers (\d+) ms\s+to answer/, expected: [shutdownGraceMs] },
    { file: 'README.md', phrase: /\(up to (\d+) ms\) for their/, expected: [shutdownHandlersMs] },
    { file: 'README.md', phrase: /pings after `heartbeat`\s+\[(\d+)\] ms/, expected: [client.defaultHeartbeat] },
    { file: 'docs/protocol.md', phrase: /`maxPayload` \((\d+) bytes by default\)/, expected: [defaultMaxPayload] },
    { file: 'docs/protocol.md', phrase: /by default (\d+) frames\s+per (\d+) ms/, expected: [defaultRateLimit.max, defaultRateLimit.interval] },
    { file: 'docs/protocol.md', phrase: /every `heartbeat` ms\s+\((\d+) by default\)/, expected: [defaultHeartbeat] },
    { file: 'docs/protocol.md', phrase: /pings after (\d+) ms in which\s+nothing arrived/, expected: [client.defaultHeartbeat] },
    { file: 'docs/protocol.md', phrase: /within another\s+(\d+) ms/, expected: [client.defaultHeartbeat] },
    { file: 'docs/protocol.md', phrase: /within (\d+) ms of opening/, expected: [client.defaultTimeout] },
    { file: 'docs/protocol.md', phrase: /`maxChannels` channels \((\d+) by default\)/, expected: [defaultMaxChannels] },
    { file: 'docs/protocol.md', phrase: /a short window \((\d+) ms\)/, expected: [presenceWindowMs] },
    { file: 'docs/protocol.md', phrase: /at most (\d+) issues/, expected: [maxReportedIssues] },
    { file: 'docs/protocol.md', phrase: /limited in (\d+) consecutive windows/, expected: [abusiveWindows] },
    { file: 'docs/protocol.md', phrase: /Channel names are 1 to (\d+) UTF-16/, expected: [MAX_CHANNEL_LENGTH] },
    { file: 'docs/protocol.md', phrase: /today (\d+) base64url characters: (\d+) random bits/, expected: [idLength, bits] },
    { file: 'docs/client.md', phrase: /\((\d+) frames a second per socket by default\)/, expected: [defaultRateLimit.max * 1000 / defaultRateLimit.interval] },
    { file: 'docs/client.md', phrase: /\*\*`maxQueue` frames \((\d+)\)\*\*/, expected: [client.defaultMaxQueue] },
    { file: 'docs/client.md', phrase: /the default waits (\d+)–(\d+) ms, then doubles[^|]*up to (\d+)–(\d+) s/, expected: [firstLow, firstHigh, lastLow / 1000, lastHigh / 1000] },
    { file: 'docs/security.md', phrase: /channel names are 1–(\d+) UTF-16 code units/, expected: [MAX_CHANNEL_LENGTH] },
    { file: 'docs/security.md', phrase: /lists at most (\d+) issues/, expected: [maxReportedIssues] },
    { file: 'docs/security.md', phrase: /queues (\d+) inbound frames/, expected: [inboxHighWater] },
    { file: 'docs/security.md', phrase: /limited in \*\*(\d+) consecutive windows\*\*/, expected: [abusiveWindows] },
    { file: 'docs/security.md', phrase: /\*\*Session ids\*\* are (\d+) bits from the CSPRNG \(`crypto\.randomBytes\((\d+)\)`, (\d+) base64url characters\)/, expected: [bits, bits / 8, idLength] },
    { file: 'docs/history.md', phrase: /`size` \[(\d+)\]/, expected: [defaultHistorySize] },
    { file: 'docs/history.md', phrase: /`ttl` \[(\d+)\]/, expected: [defaultHistoryTtl] },
    { file: 'docs/history.md', phrase: /after `heartbeat` ms \[(\d+)\]/, expected: [client.defaultHeartbeat] },
    { file: 'docs/history.md', phrase: /the client's `timeout` \[(\d+)\]/, expected: [client.defaultTimeout] },
    { file: 'docs/history.md', phrase: /are kept (\d+) hours after its last use/, expected: [historyStateTtl / 3_600_000] },
    { file: 'docs/presence.md', phrase: /a window of (\d+) ms per channel/, expected: [presenceWindowMs] },
    { file: 'docs/presence.md', phrase: /A busy channel's window is (\d+) ms \(`busyPresenceWindowMs`\): one whose change comes within\s+(\d+) ms of its last diff/, expected: [busyPresenceWindowMs, busyPresenceWindowMs] },
    { file: 'docs/protocol.md', phrase: /changed again within (\d+) ms of its last diff, the window is (\d+) ms/, expected: [busyPresenceWindowMs, busyPresenceWindowMs] },
    { file: 'docs/presence.md', phrase: /a string of 1–(\d+) UTF-16 code units/, expected: [maxPresenceKeyLength] },
    { file: 'docs/presence.md', phrase: /larger than ([\d,]+) bytes as JSON/, expected: [maxPresenceMetaBytes] },
    { file: 'docs/presence.md', phrase: /`nodeTtl`, (\d+) s by default/, expected: [defaultNodeTtl / 1000] },
    { file: 'docs/presence.md', phrase: /at most about (\d+) s after the death/, expected: [presenceReapS] },
    { file: 'docs/testing-and-asyncapi.md', phrase: /waits for the welcome \[(\d+) ms\]/, expected: [client.defaultTimeout] },
    { file: 'docs/origins-and-limits.md', phrase: /`maxBufferedBytes` \((\d+) MiB by default\)/, expected: [defaultMaxBufferedBytes / 2 ** 20] }
  ]
}

t.test('every figure quoted in prose is the code\'s', async (t) => {
  for (const { file, phrase, expected } of await quotes()) {
    const found = [...readDoc(file).matchAll(new RegExp(phrase.source, 'g'))]
    t.ok(found.length > 0, `${file}: ${phrase.source} is still there (reworded? update its entry)`)
    for (const match of found) {
      t.same(match.slice(1).map((figure) => Number(figure.replace(/,/g, ''))), expected, `${file}: "${match[0]}"`)
    }
  }
})

t.test('docs/security.md: the limits table states the code\'s defaults', async (t) => {
  const rows = tableRows(section(readDoc('docs/security.md'), 2, 'Limits').body)
  t.ok(rows.length >= 7, `${rows.length} limits`)
  for (const [first] of rows) {
    const cell = optionCell(first)
    t.not(cell?.fallback, undefined, `${first}: \`option\` [default]`)
    if (cell?.fallback !== undefined) t.equal(defaultProblem(cell.name, cell.fallback), undefined, first)
  }
})
