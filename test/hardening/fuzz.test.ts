/**
 * Fuzz: thousands of mutated frames (random bytes, truncated JSON, type confusion, mutated valid
 * frames, random ids/channels/events, binary, fragmented and oversize frames, garbage on the TCP stream)
 * thrown at a server by several raw clients at once. Every frame the server sends must be a
 * well-formed protocol frame, every close code one the protocol names, nothing may escape as an
 * uncaught exception or unhandled rejection, and afterwards a fresh client is served normally.
 *
 * Deterministic for a seed: FUZZ_SEED=<n> replays a run; FUZZ_FRAMES=<n> changes its size.
 */
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { Writable } from 'node:stream'
import { ChannelError } from '../../plugin/index.js'
import { decodeServerFrame } from '../../schemas/codec.js'
import { ErrorCodes } from '../../schemas/protocol.js'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient, until, captureProcessErrors } from '../helpers/server.js'
import { encodeClientFrame, Opcode, RawClient } from './raw-client.js'

const seed = Number(process.env.FUZZ_SEED ?? 20240611)
const totalFrames = Number(process.env.FUZZ_FRAMES ?? 6000)
const workers = 4
const timeBudgetMs = 45_000

const processErrors = captureProcessErrors(t)

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng (state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let x = Math.imul(state ^ (state >>> 15), 1 | state)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

class Fuzzer {
  constructor (readonly random: () => number) {}

  int (max: number): number { return Math.floor(this.random() * max) }
  pick<T> (items: readonly T[]): T { return items[this.int(items.length)] }
  chance (p: number): boolean { return this.random() < p }

  string (): string {
    const alphabets = ['abc', 'room-', 'private-', ' \t\n', '\u0000\u0001\u007f\u0085', 'ünï😀', '\ud800\udfff\ufeff\u2028',
      '"\\{}[]:,', '__proto__', 'constructor', 'prototype']
    const length = this.pick([0, 1, 3, 10, 50, 199, 200, 201, 1000])
    let text = ''
    while (text.length < length) text += this.pick(alphabets)[this.int(12)] ?? 'x'
    return text.slice(0, length)
  }

  number (): number {
    return this.pick([0, -0, 1, -1, 1.5, 2 ** 31, 2 ** 53 - 1, 2 ** 53, 2 ** 64, -(2 ** 53), 1e308, 5e-324, Number.MAX_VALUE, this.int(1e6)])
  }

  value (depth = 0): unknown {
    const kinds = depth > 3 ? ['string', 'number', 'null', 'bool'] : ['string', 'number', 'null', 'bool', 'array', 'object', 'deep']
    switch (this.pick(kinds)) {
      case 'string': return this.string()
      case 'number': return this.number()
      case 'null': return null
      case 'bool': return this.chance(0.5)
      case 'array': return Array.from({ length: this.int(5) }, () => this.value(depth + 1))
      case 'object': {
        const object: Record<string, unknown> = {}
        for (let i = this.int(5); i > 0; i--) object[this.pick(['type', 'id', 'channel', 'event', 'data', 'text', this.string()])] = this.value(depth + 1)
        return object
      }
      default: {
        let deep: unknown = 0
        for (let i = this.int(3000); i > 0; i--) deep = [deep]
        return deep
      }
    }
  }

  id (): unknown {
    return this.chance(0.7) ? 1 + this.int(1000) : this.value(3)
  }

  channel (): unknown {
    return this.chance(0.6) ? this.pick(['room-1', 'room-2', 'private-1', 'lobby']) : this.chance(0.8) ? this.string() : this.value(3)
  }

  /** A frame that is valid, or nearly so. */
  frame (): Record<string, unknown> {
    const frame: Record<string, unknown> = { type: this.pick(['subscribe', 'unsubscribe', 'message', 'message', 'message']) }
    if (frame.type !== 'message' || this.chance(0.5)) frame.channel = this.channel()
    if (frame.type === 'message') {
      frame.event = this.chance(0.7) ? this.pick(['echo', 'chat', 'throw', 'broadcast', 'nothing', 'message']) : this.value(2)
      frame.data = this.chance(0.5) ? { text: this.string() } : this.value()
    }
    if (this.chance(0.7)) frame.id = this.id()
    if (this.chance(0.2)) frame[this.pick(['type', 'id', 'channel', 'event', 'data', '__proto__', 'extra'])] = this.value(2)
    return frame
  }

  /** Text-level mutations of a frame's JSON. */
  mutateText (text: string): string {
    switch (this.int(6)) {
      case 0: return text.slice(0, this.int(text.length + 1)) // truncated
      case 1: { // insert JSON-significant characters
        const at = this.int(text.length + 1)
        return text.slice(0, at) + this.pick(['{', '}', '[', ']', '"', ',', ':', '\\', 'null', '1e999', '\u0000', '😀']) + text.slice(at)
      }
      case 2: { // delete a slice
        const at = this.int(text.length)
        return text.slice(0, at) + text.slice(at + 1 + this.int(10))
      }
      case 3: { // duplicate a slice
        const at = this.int(text.length)
        const piece = text.slice(at, at + 1 + this.int(20))
        return text.slice(0, at) + piece + piece + text.slice(at)
      }
      case 4: return text.replace(/"(type|id|channel|event|data)"/, `"${this.pick(['__proto__', 'constructor', 'TYPE', ''])}"`)
      default: return `{"constructor":{"prototype":${text}}}`
    }
  }

  /** Byte-level mutation: may leave invalid UTF-8 (the server then closes with 1007). */
  mutateBytes (text: string): Buffer {
    const bytes = Buffer.from(text)
    for (let i = this.int(4); i >= 0 && bytes.length > 0; i--) bytes[this.int(bytes.length)] = this.int(256)
    return bytes
  }
}

type Action =
  | { kind: 'text', payload: Buffer | string }
  | { kind: 'binary', payload: Buffer }
  | { kind: 'fragmented', payload: string }
  | { kind: 'ping', payload: Buffer }
  | { kind: 'garbage', payload: Buffer }

function nextAction (fuzz: Fuzzer): Action {
  const roll = fuzz.random()
  const text = JSON.stringify(fuzz.frame())
  if (roll < 0.35) return { kind: 'text', payload: text }
  if (roll < 0.70) return { kind: 'text', payload: fuzz.mutateText(text) }
  if (roll < 0.74) return { kind: 'text', payload: fuzz.mutateBytes(text) }
  if (roll < 0.79) {
    const bytes = Buffer.from(Array.from({ length: fuzz.int(200) }, () => fuzz.int(256)))
    return fuzz.chance(0.5) ? { kind: 'binary', payload: bytes } : { kind: 'text', payload: bytes.toString('latin1') }
  }
  if (roll < 0.80) return { kind: 'text', payload: JSON.stringify({ type: 'message', event: 'echo', data: 'x'.repeat(17 * 1024) }) }
  if (roll < 0.86) return { kind: 'text', payload: JSON.stringify(fuzz.value()) }
  if (roll < 0.90) return { kind: 'binary', payload: Buffer.from(text) }
  if (roll < 0.94) return { kind: 'fragmented', payload: text }
  if (roll < 0.97) return { kind: 'ping', payload: Buffer.from(Array.from({ length: fuzz.int(126) }, () => fuzz.int(256))) }
  return { kind: 'garbage', payload: Buffer.from(Array.from({ length: 1 + fuzz.int(64) }, () => fuzz.int(256))) }
}

const allowedCloseCodes = new Set([1000, 1001, 1002, 1007, 1008, 1009, 1013])
const appCodes = new Set(['APP_REFUSED'])

interface Findings {
  sent: number
  answers: number
  connections: number
  malformed: string[]
  unknownCodes: string[]
  closeCodes: Map<number, number>
}

function inspect (raw: RawClient, findings: Findings): void {
  for (const frame of raw.frames) {
    if (frame.opcode === Opcode.text) {
      findings.answers++
      const decoded = decodeServerFrame(frame.payload.toString())
      if (!decoded.ok) findings.malformed.push(frame.payload.toString().slice(0, 200))
      else if (decoded.frame.type === 'error' && !(ErrorCodes as readonly string[]).includes(decoded.frame.code) && !appCodes.has(decoded.frame.code)) {
        findings.unknownCodes.push(decoded.frame.code)
      }
    } else if (frame.opcode === Opcode.binary) {
      findings.malformed.push('a binary frame')
    }
  }
  const code = raw.closeCode()
  if (code !== undefined) findings.closeCodes.set(code, (findings.closeCodes.get(code) ?? 0) + 1)
}

/** Waits until the server has taken everything sent so far (a ping is answered in order), or the connection ends. */
async function settle (raw: RawClient): Promise<boolean> {
  if (raw.socket.destroyed) return false
  const pongs = raw.frames.filter((frame) => frame.opcode === Opcode.pong).length
  raw.write(encodeClientFrame(Opcode.ping, 'settle'))
  try {
    await raw.waitFor(() => raw.frames.filter((frame) => frame.opcode === Opcode.pong).length > pongs || raw.closeCode() !== undefined, 5000)
  } catch {
    return false
  }
  return raw.closeCode() === undefined
}

async function worker (port: number, fuzz: Fuzzer, budget: number, deadline: number, findings: Findings): Promise<void> {
  let raw: RawClient | undefined
  let sinceSettle = 0
  const retire = async (): Promise<void> => {
    if (raw === undefined) return
    raw.destroy()
    await within(raw.ended, 3000, 'a destroyed fuzz connection ends')
    inspect(raw, findings)
    raw = undefined
  }
  for (let i = 0; i < budget && Date.now() < deadline; i++) {
    if (raw === undefined) {
      raw = await RawClient.connect(port)
      findings.connections++
    }
    const action = nextAction(fuzz)
    findings.sent++
    switch (action.kind) {
      case 'text': raw.write(encodeClientFrame(Opcode.text, action.payload)); break
      case 'binary': raw.write(encodeClientFrame(Opcode.binary, action.payload)); break
      case 'ping': raw.write(encodeClientFrame(Opcode.ping, action.payload)); break
      case 'fragmented': {
        const cut = fuzz.int(action.payload.length)
        raw.write(encodeClientFrame(Opcode.text, action.payload.slice(0, cut), false))
        raw.write(encodeClientFrame(Opcode.continuation, action.payload.slice(cut)))
        break
      }
      case 'garbage': {
        // Bytes that are no frame at all: the server must close or drop the connection. We end
        // our side so a length field that promises more bytes cannot keep it waiting.
        raw.write(action.payload)
        raw.socket.end()
        await within(raw.ended, 5000, 'the server closes a connection that sent bytes that are no frame')
        inspect(raw, findings)
        raw = undefined
        continue
      }
    }
    if (++sinceSettle >= 25 || raw.closeCode() !== undefined) {
      sinceSettle = 0
      if (!(await settle(raw))) await retire()
    }
  }
  if (raw !== undefined) {
    await settle(raw)
    await retire()
  }
}

const configurations = [
  { label: 'no rate limit', frames: totalFrames, options: { rateLimit: false as const }, logged: false },
  // Logged through a real pino logger (every frame in and out, every handler error), rate limited.
  { label: 'messageLog and a rate limit', frames: Math.ceil(totalFrames / 3), options: { rateLimit: { max: 40, interval: 100 }, messageLog: true }, logged: true }
]

for (const { label, frames, options, logged } of configurations) {
  t.test(`fuzz (${label}): ${frames} hostile frames (seed ${seed}), then a fresh client is served`, async (t) => {
    const errorsSeen: string[] = []
    const Chat = Type.Object({ text: Type.String({ minLength: 1, maxLength: 100 }) })
    let logLines = 0
    const logStream = new Writable({ write (_chunk, _encoding, done) { logLines++; done() } })
    const fastifyOptions = logged ? { logger: { level: 'trace', stream: logStream } } : {}
    const { app, url, port } = await startApp({ maxPayload: 16 * 1024, heartbeat: 1000, ...options }, (app) => {
      app.channels.on('subscribe', { channel: /^private-/ }, () => { throw new ChannelError('APP_REFUSED', 'members only') })
      app.channels.on('message', { event: 'echo' }, (socket, data, meta) => {
        socket.send(data, { event: 'echo', channel: meta.channel })
        return data
      })
      app.channels.on('message', { event: 'chat', schema: Chat }, (socket, data, meta) => {
        return socket.broadcastChannel({ text: data.text }, { channel: meta.channel, event: 'chat' })
      })
      app.channels.on('message', { event: 'throw' }, () => { throw new Error('internal detail') })
      app.channels.on('message', { event: 'broadcast' }, (socket, data) => socket.broadcast(data, { event: 'broadcast' }))
      app.channels.on('message', { event: 'nothing' }, () => undefined)
      app.channels.on('error', (_socket, error) => { errorsSeen.push(error.message) })
    }, fastifyOptions)
    t.teardown(() => app.close())

    const findings: Findings = { sent: 0, answers: 0, connections: 0, malformed: [], unknownCodes: [], closeCodes: new Map() }
    const started = Date.now()
    const deadline = started + timeBudgetMs
    await Promise.all(Array.from({ length: workers }, (_, index) =>
      worker(port, new Fuzzer(prng(seed + index)), Math.ceil(frames / workers), deadline, findings)))
    t.comment(`${findings.sent} frames over ${findings.connections} connections in ${Date.now() - started} ms; ` +
    `${findings.answers} text frames back; close codes ${JSON.stringify([...findings.closeCodes])}`)

    t.ok(findings.sent >= Math.min(frames, 1000), 'thousands of frames were thrown')
    if (logged) t.ok(logLines > findings.sent / 2, `the logger took every frame (${logLines} lines)`)
    t.same(processErrors, [], 'no uncaught exception or unhandled rejection')
    t.same(findings.malformed.slice(0, 5), [], 'every frame the server sent is a well-formed protocol frame')
    t.same(findings.unknownCodes.slice(0, 5), [], 'every error code is a protocol code (or the app\'s own)')
    t.same([...findings.closeCodes.keys()].filter((code) => !allowedCloseCodes.has(code)), [], 'every close code is a protocol one')
    t.same([...new Set(errorsSeen)].filter((message) => message !== 'internal detail'), [], 'only the deliberate handler error reached error handlers')
    await until(() => app.channels.stats().sockets === 0 && app.websocketServer.clients.size === 0, 10_000,
      'every fuzz connection is gone from the plugin and ws')
    t.has(app.channels.stats(), { sockets: 0, channels: 0 }, 'every fuzz connection was cleaned up')

    // A fresh pair of clients is served as if nothing happened.
    const alice = await TestClient.connect(url)
    const bob = await TestClient.connect(url)
    t.match(await alice.subscribe('room-1', 1), { type: 'subscribed', channel: 'room-1', id: 1 })
    t.match(await bob.subscribe('room-1', 1), { type: 'subscribed', channel: 'room-1', id: 1 })
    t.same(await alice.request({ type: 'message', event: 'chat', channel: 'room-1', data: { text: 'still here?' }, id: 2 }),
      { type: 'ack', id: 2 })
    t.same(await bob.next((frame) => frame.type === 'message'), { type: 'message', event: 'chat', channel: 'room-1', data: { text: 'still here?' } })
    bob.send({ type: 'message', event: 'echo', data: [1, 'two'], id: 3 })
    t.same(await bob.next(), { type: 'message', event: 'echo', data: [1, 'two'] })
    t.same(await bob.next(), { type: 'ack', id: 3, data: [1, 'two'] })
    alice.close()
    bob.close()
    await within(Promise.all([alice.closed, bob.closed]), 3000, 'the fresh clients close when they ask to')
  })
}
