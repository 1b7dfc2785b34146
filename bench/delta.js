// @ts-check
// Deltas on a state channel, measured before building them (issue 25, part 2): a scoreboard
// stream, a 2-4 KB JSON document of which one field changes per publication, and how many
// bytes a delivery would carry as the whole payload, as a fossil delta of the JSON text
// (`fossil-delta`) and as a JSON Patch (RFC 6902, `fast-json-patch`), with the CPU to make one
// (once per publication) and to apply one (once per delivery, in the client). Pure computation,
// no sockets: run it alone (`node bench/delta.js`), figures are ratios to the whole payload.
// Then, when the plugin is built (`npm run build`: it loads `dist/`), the real server path: a
// node with `history: { delta: true }`, one socket subscribed with `delta: true` and one
// without on loopback, the bytes of every WebSocket frame each receives.
import { createStringDelta, applyStringDelta } from 'fossil-delta'
import jsonPatch from 'fast-json-patch'
import { existsSync } from 'node:fs'
import Fastify from 'fastify'
import WebSocket from 'ws'
import { listenOnFreePort } from './lib/listen.js'

const publications = Number(process.argv[2] ?? 2000)

/** A scoreboard of `teams` teams: about 2-4 KB of JSON. */
function scoreboard (teams) {
  return {
    match: 'league-2026-round-17',
    updatedAt: 1700000000000,
    teams: Array.from({ length: teams }, (_, i) => ({
      id: `team-${i}`,
      name: `Team number ${i}`,
      score: 0,
      players: Array.from({ length: 3 }, (_, j) => ({ id: `p-${i}-${j}`, points: 0, fouls: 0 }))
    }))
  }
}

/** Deterministic: publication k changes one field. */
function step (state, k) {
  const next = structuredClone(state)
  const team = next.teams[(k * 7) % next.teams.length]
  const which = k % 3
  if (which === 0) team.score += 1 + (k % 3)
  else if (which === 1) team.players[k % 3].points += 2
  else team.players[(k + 1) % 3].fouls += 1
  return next
}

/** @param {number} teams */
function measure (teams) {
  let state = scoreboard(teams)
  const texts = [JSON.stringify(state)]
  const states = [state]
  for (let k = 1; k <= publications; k++) {
    state = step(state, k)
    states.push(state)
    texts.push(JSON.stringify(state))
  }
  const whole = texts.slice(1).reduce((n, t) => n + Buffer.byteLength(t), 0)

  let fossilBytes = 0
  let t0 = process.hrtime.bigint()
  const fossil = []
  for (let k = 1; k <= publications; k++) fossil.push(createStringDelta(texts[k - 1], texts[k]))
  const fossilMake = Number(process.hrtime.bigint() - t0) / 1000 / publications
  t0 = process.hrtime.bigint()
  for (let k = 1; k <= publications; k++) {
    // the client keeps the last text as its base and parses what it rebuilt for its listeners
    const rebuilt = applyStringDelta(texts[k - 1], fossil[k - 1])
    if (JSON.stringify(JSON.parse(rebuilt)) !== texts[k]) throw new Error(`fossil: publication ${k} not rebuilt`)
  }
  const fossilApply = Number(process.hrtime.bigint() - t0) / 1000 / publications
  // carried inside a JSON frame as a string: count its JSON-escaped size
  for (const d of fossil) fossilBytes += Buffer.byteLength(JSON.stringify(d))

  let patchBytes = 0
  t0 = process.hrtime.bigint()
  const patches = []
  for (let k = 1; k <= publications; k++) patches.push(jsonPatch.compare(states[k - 1], states[k]))
  const patchMake = Number(process.hrtime.bigint() - t0) / 1000 / publications
  for (const p of patches) patchBytes += Buffer.byteLength(JSON.stringify(p))
  t0 = process.hrtime.bigint()
  for (let k = 1; k <= publications; k++) {
    const rebuilt = jsonPatch.applyPatch(JSON.parse(texts[k - 1]), patches[k - 1]).newDocument
    if (JSON.stringify(rebuilt) !== texts[k]) throw new Error(`JSON Patch: publication ${k} not rebuilt`)
  }
  const patchApply = Number(process.hrtime.bigint() - t0) / 1000 / publications

  const avgWhole = whole / publications
  console.log(`scoreboard of ${teams} teams: whole payload ${avgWhole.toFixed(0)} B on average, ${publications} publications`)
  console.log(`  fossil delta  ${(fossilBytes / publications).toFixed(1)} B/delivery (${((fossilBytes / whole) * 100).toFixed(1)} % of whole), make ${fossilMake.toFixed(1)} us, apply (patch + parse) ${fossilApply.toFixed(1)} us`)
  console.log(`  JSON Patch    ${(patchBytes / publications).toFixed(1)} B/delivery (${((patchBytes / whole) * 100).toFixed(1)} % of whole), make ${patchMake.toFixed(1)} us, apply (parse + patch) ${patchApply.toFixed(1)} us`)
}

measure(12) // warm-up: the JIT settles before the figures that count
console.log('--- measured:')
measure(12) // about 2.1 KB
measure(20) // about 3.5 KB

/** The real server path: whole and delta frames as two sockets receive them. */
async function measureServer (teams) {
  const pluginUrl = new URL('../dist/plugin/index.js', import.meta.url)
  if (!existsSync(pluginUrl)) {
    console.log('(the real server path: build first, `npm run build`)')
    return
  }
  const { default: fastifyChannels } = await import(pluginUrl.href)
  const app = Fastify()
  await app.register(fastifyChannels, { history: { delta: true }, heartbeat: false, client: false })
  const port = await listenOnFreePort(app, '127.0.0.1')
  const open = async (delta) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
    const got = { bytes: 0, frames: 0, deltas: 0 }
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const subscribed = new Promise((resolve) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString())
        if (frame.type === 'subscribed') resolve(undefined)
        if (frame.type !== 'message') return
        got.frames++
        got.bytes += data.length
        if (frame.delta !== undefined) got.deltas++
      })
    })
    ws.send(JSON.stringify({ type: 'subscribe', channel: 'board', id: 1, delta }))
    await subscribed
    return { ws, got }
  }
  const deltaSocket = await open(true)
  const wholeSocket = await open(false)
  let state = scoreboard(teams)
  const t0 = process.hrtime.bigint()
  for (let k = 1; k <= publications; k++) {
    state = step(state, k)
    await app.broadcastChannel('board', state, { event: 'board' })
  }
  while (deltaSocket.got.frames < publications || wholeSocket.got.frames < publications) await new Promise((resolve) => setTimeout(resolve, 10))
  const perPublication = Number(process.hrtime.bigint() - t0) / 1000 / publications
  const d = deltaSocket.got
  const w = wholeSocket.got
  console.log(`server path, scoreboard of ${teams} teams: whole ${(w.bytes / w.frames).toFixed(0)} B/delivery, with deltas ${(d.bytes / d.frames).toFixed(0)} B/delivery (${((d.bytes / w.bytes) * 100).toFixed(1)} % of whole, ${d.deltas} of ${d.frames} frames deltas), ${perPublication.toFixed(0)} us per publication (two sockets)`)
  deltaSocket.ws.close()
  wholeSocket.ws.close()
  await app.close()
}

await measureServer(12)
await measureServer(20)
