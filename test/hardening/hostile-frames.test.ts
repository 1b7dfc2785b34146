/**
 * Hostile input: every malformed, oversized, deeply nested or poisoned frame gets a defined
 * answer (an error frame or a close code), nothing crashes the process, and nothing leaks
 * into another connection.
 */
import t, { type Test } from 'tap'
import { Type } from '@sinclair/typebox'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { compileSchema } from '../../plugin/handlers/validate.js'
import { within } from '../helpers/deadline.js'
import { startApp, TestClient, until, type Frame, captureProcessErrors } from '../helpers/server.js'
import { encodeClientFrame, Opcode, RawClient } from './raw-client.js'

const processErrors = captureProcessErrors(t)

interface Node { children: Node[] }
const Tree = Type.Recursive((This) => Type.Object({ children: Type.Array(This) }))

/** Echo handlers that hand hostile data back to the sender through every path. */
function echoHandlers (app: FastifyInstance): void {
  app.channels.on('message', { event: 'echo' }, (socket, data) => {
    socket.send(data, { event: 'echo' })
    return data
  })
  app.channels.on('message', { event: 'ack' }, (_socket, data) => data)
  app.channels.on('message', { event: 'tree', schema: Tree }, (_socket, data: Node) => data.children.length)
  app.channels.on('message', { event: 'broadcast' }, async (socket, data) => {
    await socket.broadcast(data, { event: 'echo' })
  })
}

function nestedArrays (depth: number, inner = '0'): string {
  return '['.repeat(depth) + inner + ']'.repeat(depth)
}

function nestedObjects (depth: number): string {
  depth = Math.floor(depth)
  return '{"a":'.repeat(depth) + '0' + '}'.repeat(depth)
}

function nestedTree (depth: number): string {
  return '{"children":['.repeat(depth) + '{"children":[]}' + ']}'.repeat(depth)
}

async function setup (t: Test, options: Parameters<typeof startApp>[0] = {}): Promise<{ app: FastifyInstance, url: string, port: number, client: TestClient, bystander: TestClient }> {
  const { app, url, port } = await startApp({ rateLimit: false, ...options }, echoHandlers)
  const client = await TestClient.connect(url)
  const bystander = await TestClient.connect(url)
  t.teardown(() => app.close())
  return { app, url, port, client, bystander }
}

/** The bystander saw nothing and is still served; the process took no hit. */
async function bystanderUntouched (t: Test, bystander: TestClient): Promise<void> {
  t.same(processErrors, [], 'no uncaught exception or unhandled rejection')
  await bystander.expectNothing()
  t.same(bystander.frames.filter((frame) => frame.type !== 'unsubscribed'), [], 'nothing leaked to another connection')
  bystander.frames.length = 0
}

/**
 * Whether this process can JSON-encode the value `json` holds: nesting past a depth set by the
 * stack makes JSON.stringify throw a RangeError. The server runs in this process, so its
 * handlers can return the value exactly when this probe can encode it.
 */
function encodable (json: string): boolean {
  try {
    JSON.stringify(JSON.parse(json))
    return true
  } catch {
    return false
  }
}

async function answer (client: TestClient, text: string, id?: number): Promise<Frame> {
  client.send(text)
  return await client.next(id === undefined ? () => true : (frame) => frame.id === id)
}

t.test('not JSON, not an object, unknown type: BAD_FRAME, connection stays open', async (t) => {
  const { client, bystander } = await setup(t)
  const texts = ['hello', '{', '', '   ', 'null', '42', '"str"', '[]', '[{"type":"subscribe","channel":"a"}]',
    'true', '{"type":"subscribe","channel":"a"} trailing', '\u0000', 'NaN', '{"type":"subscribe",}', 'prototype',
    '{"type":5}', '{"type":null}', '{}', '{"type":"welcome","sessionId":"x","protocol":1}', '{"type":"ack"}']
  for (const [index, text] of texts.entries()) {
    const frame = await answer(client, text)
    t.match(frame, { type: 'error', code: 'BAD_FRAME' }, `text #${index}`)
    t.notOk('id' in frame, 'no id to echo')
  }
  const frame = await answer(client, 'prototype')
  t.match(frame.message, /not valid JSON/, 'plain garbage is not mistaken for a poisoning attempt')
  t.equal(client.ws.readyState, client.ws.OPEN)
  await bystanderUntouched(t, bystander)
})

t.test('wrong shapes: BAD_FRAME carrying the id when the id itself is valid', async (t) => {
  const { client, bystander } = await setup(t)
  const withId: Array<Record<string, unknown>> = [
    { type: 'subscribe', id: 1 },
    { type: 'subscribe', channel: 5, id: 2 },
    { type: 'subscribe', channel: null, id: 3 },
    { type: 'subscribe', channel: ['a'], id: 4 },
    { type: 'unsubscribe', channel: { a: 1 }, id: 5 },
    { type: 'message', event: '', id: 6 },
    { type: 'message', event: 'x'.repeat(201), id: 7 },
    { type: 'message', event: 5, id: 8 },
    { type: 'message', channel: 5, id: 9 },
    { type: 'bogus', id: 10 },
    { type: 'subscribe', channel: 'x'.repeat(50_000), id: 11 }
  ]
  for (const frame of withId) {
    const reply = await answer(client, JSON.stringify(frame), frame.id as number)
    t.match(reply, { type: 'error', code: frame.id === 11 ? 'INVALID_CHANNEL' : 'BAD_FRAME', id: frame.id }, `id ${String(frame.id)}`)
  }
  // JSON text, so that 2^53 and 1e400 reach the server as written
  const badIds = ['0', '-1', '-0', '1.5', '"7"', 'true', 'null', '[1]', '{"n":1}', '9007199254740992', '1e400', '1e-400']
  for (const id of badIds) {
    const reply = await answer(client, `{"type":"message","event":"ack","data":1,"id":${id}}`)
    t.match(reply, { type: 'error', code: 'BAD_FRAME' }, `bad id ${id}`)
    t.notOk('id' in reply, 'an invalid id is not echoed')
  }
  t.same(await client.request({ type: 'message', event: 'ack', data: 'max', id: Number.MAX_SAFE_INTEGER }),
    { type: 'ack', id: Number.MAX_SAFE_INTEGER, data: 'max' }, 'the largest id round-trips exactly')
  await bystanderUntouched(t, bystander)
})

t.test('huge numbers are plain JSON numbers', async (t) => {
  const { client } = await setup(t)
  t.same(await answer(client, '{"type":"message","event":"ack","data":1e400,"id":1}', 1), { type: 'ack', id: 1, data: null },
    'Infinity goes back out as JSON null')
  t.same(await answer(client, `{"type":"message","event":"ack","data":${'9'.repeat(60_000)},"id":2}`, 2),
    { type: 'ack', id: 2, data: null }, 'a 60,000-digit number too')
  t.same(await answer(client, '{"type":"message","event":"ack","data":-1e-400,"id":3}', 3), { type: 'ack', id: 3, data: 0 })
})

t.test('prototype-poisoning keys are refused as BAD_FRAME and pollute nothing', async (t) => {
  const { client, bystander } = await setup(t)
  const poisoned = [
    '{"__proto__":{"type":"subscribe","channel":"a"}}',
    '{"type":"message","event":"ack","data":{"__proto__":{"polluted":1}},"id":1}',
    '{"type":"message","event":"ack","data":{"a":[{"b":{"__proto__":{"polluted":1}}}]},"id":2}',
    '{"type":"message","event":"ack","data":{"constructor":{"prototype":{"polluted":1}}},"id":3}',
    '{"type":"message","event":"ack","data":[[{"constructor":{"prototype":{"polluted":1}}}]],"id":4}',
    '{"type":"message","event":"ack","data":{"\\u005f_proto__":{"polluted":1}},"id":5}',
    '{"type":"message","event":"ack","data":{"__pro\\u0074o__":{"polluted":1}},"id":6}',
    `{"type":"message","event":"ack","data":${nestedObjects(2000).replace('0}', '{"__proto__":{"polluted":1}}}')},"id":7}`
  ]
  for (const [index, text] of poisoned.entries()) {
    const reply = await answer(client, text)
    t.match(reply, { type: 'error', code: 'BAD_FRAME', message: /forbidden key/ }, `poisoned #${index}`)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is clean')
  t.equal(Object.hasOwn(Object.prototype, 'polluted'), false)
  // Harmless look-alikes are data like any other.
  t.same(await client.request({ type: 'message', event: 'ack', data: { constructor: 1, proto: 2, prototype: 3 }, id: 8 }),
    { type: 'ack', id: 8, data: { constructor: 1, proto: 2, prototype: 3 } })
  t.same(await client.request({ type: 'message', event: 'ack', data: '__proto__', id: 9 }),
    { type: 'ack', id: 9, data: '__proto__' }, 'the word in a string value is fine')
  await bystanderUntouched(t, bystander)
})

t.test('deep nesting within maxPayload: an answer for every path, never a RangeError', async (t) => {
  const { client, bystander } = await setup(t)
  let id = 0
  for (const depth of [1000, 10_000, 30_000]) {
    // both shapes stay within maxPayload (64 KiB): 2 bytes a level for arrays, 6 for objects
    for (const [shape, data] of [['arrays', nestedArrays(depth)], ['objects', nestedObjects(depth / 3)]] as const) {
      const label = `${shape} ${shape === 'arrays' ? depth : Math.floor(depth / 3)} deep`
      // Encodable data comes back acknowledged; data too deep to encode fails as HANDLER_ERROR.
      const fits = encodable(data)
      const outcome = fits ? { type: 'ack' } : { type: 'error', code: 'HANDLER_ERROR' }
      const verdict = fits ? 'encodable: acknowledged' : 'too deep to encode: HANDLER_ERROR'
      // ack: the handler returns it
      const ack = await answer(client, `{"type":"message","event":"ack","data":${data},"id":${++id}}`, id)
      t.match(ack, outcome, `${label}: ack, ${verdict}`)
      // echo: socket.send(data) inside the handler, then the same return value
      const echoed = await answer(client, `{"type":"message","event":"echo","data":${data},"id":${++id}}`, id)
      t.match(echoed, outcome, `${label}: echo, ${verdict}`)
      // broadcast to every other socket: fails before anyone gets half of it, or reaches them whole
      const cast = await answer(client, `{"type":"message","event":"broadcast","data":${data},"id":${++id}}`, id)
      t.match(cast, outcome, `${label}: broadcast, ${verdict}`)
      if (fits) await bystander.next((frame) => frame.event === 'echo', 10_000)
      client.frames.length = 0
    }
    // a recursive schema: validated (or refused), never thrown
    const treeData = nestedTree(depth / 10)
    const checkable = compileSchema(Tree).check(JSON.parse(treeData))
    const tree = await answer(client, `{"type":"message","event":"tree","data":${treeData},"id":${++id}}`, id)
    t.match(tree, checkable ? { type: 'ack', data: 1 } : { type: 'error', code: 'VALIDATION_FAILED' },
      `tree ${depth / 10} deep: ${checkable ? 'valid, handled' : 'too deep to check: VALIDATION_FAILED'}`)
    const badTree = await answer(client, `{"type":"message","event":"tree","data":${nestedTree(depth / 10).replace('[]', '[1]')},"id":${++id}}`, id)
    t.match(badTree, { type: 'error', code: 'VALIDATION_FAILED' }, `invalid tree ${depth / 10} deep`)
    t.ok(JSON.stringify(badTree).length < 8192, 'the error frame stays small')
  }
  t.equal(client.ws.readyState, client.ws.OPEN)
  await bystanderUntouched(t, bystander)
})

t.test('a recursive schema fed data deeper than the stack: check is false, issues say why', async (t) => {
  // Deeper than any 64 KiB frame can carry, as an app with a larger maxPayload could receive.
  let deep: Node = { children: [] }
  for (let i = 0; i < 200_000; i++) deep = { children: [deep] }
  const schema = compileSchema(Tree)
  t.equal(schema.check(deep), false)
  t.same(schema.issues(deep), [{ path: '', message: 'the data is nested too deeply to validate' }])
})

t.test('binary frames get BAD_FRAME; the connection stays usable', async (t) => {
  const { client } = await setup(t)
  client.ws.send(Buffer.from('{"type":"subscribe","channel":"a","id":1}'))
  t.match(await client.next(), { type: 'error', code: 'BAD_FRAME', message: /binary/ })
  client.ws.send(new Uint8Array([0, 1, 2, 255]))
  t.match(await client.next(), { type: 'error', code: 'BAD_FRAME' })
  t.match(await client.subscribe('a', 2), { type: 'subscribed', id: 2 })
})

t.test('invalid UTF-8 in a text frame: ws closes with 1007', async (t) => {
  const { app, client, bystander } = await setup(t)
  client.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })
  t.equal((await within(client.closed, 3000, 'invalid UTF-8 closes the socket')).code, 1007)
  await until(() => app.channels.stats().sockets === 1, 3000, 'the offender\'s socket is gone')
  t.pass('only the offender is gone')
  await bystanderUntouched(t, bystander)
})

t.test('a frame larger than maxPayload closes with 1009, whole or fragmented', async (t) => {
  const { app, url, port, bystander } = await setup(t, { maxPayload: 1024 })
  const whole = await TestClient.connect(url)
  whole.send({ type: 'message', event: 'ack', data: 'x'.repeat(2000), id: 1 })
  t.equal((await within(whole.closed, 3000, 'a whole frame over maxPayload closes the socket')).code, 1009)

  // the same bytes in fragments of 500: ws counts the whole message
  const raw = await RawClient.connect(port)
  const text = JSON.stringify({ type: 'message', event: 'ack', data: 'x'.repeat(2000), id: 1 })
  for (let offset = 0; offset < text.length; offset += 500) {
    const last = offset + 500 >= text.length
    raw.write(encodeClientFrame(offset === 0 ? Opcode.text : Opcode.continuation, text.slice(offset, offset + 500), last))
  }
  await within(raw.ended, 3000, 'a fragmented message over maxPayload cuts the peer off')
  t.equal(raw.closeCode(), 1009)
  t.notOk(raw.json().some((frame) => frame.type === 'ack'), 'not handled')
  await until(() => app.channels.stats().sockets === 2, 3000, 'only the setup\'s client and the bystander are left')
  await bystanderUntouched(t, bystander)
})

t.test('protocol violations below JSON are closed by ws with 1002', async (t) => {
  const { app, port, bystander } = await setup(t)
  const violations: Array<[string, Buffer]> = [
    ['unmasked frame', Buffer.from([0x81, 0x02, 0x7b, 0x7d])],
    ['reserved bit set', (() => { const b = encodeClientFrame(Opcode.text, '{}'); b[0] |= 0x40; return b })()],
    ['unknown opcode', encodeClientFrame(0x3, 'x')],
    ['fragmented ping', encodeClientFrame(Opcode.ping, 'x', false)],
    ['ping payload over 125 bytes', encodeClientFrame(Opcode.ping, 'x'.repeat(126))],
    ['continuation without a start', encodeClientFrame(Opcode.continuation, 'x')],
    ['close frame with a 1-byte payload', encodeClientFrame(Opcode.close, Buffer.from([3]))],
    ['close frame with an invalid code', encodeClientFrame(Opcode.close, Buffer.from([0x03, 0xe7]))]
  ]
  for (const [label, bytes] of violations) {
    const raw = await RawClient.connect(port)
    raw.write(bytes)
    await within(raw.ended, 3000, `a peer sending ${label} is cut off`)
    t.equal(raw.closeCode(), 1002, label)
  }
  const invalidReason = await RawClient.connect(port)
  invalidReason.write(encodeClientFrame(Opcode.close, Buffer.from([0x03, 0xe8, 0xff])))
  await within(invalidReason.ended, 3000, 'a peer sending a close reason that is not UTF-8 is cut off')
  t.equal(invalidReason.closeCode(), 1007, 'close reason that is not UTF-8')
  await until(() => app.channels.stats().sockets === 2, 3000, 'only the setup\'s client and the bystander are left')
  await bystanderUntouched(t, bystander)
})

t.test('a peer\'s protocol violation is logged at info, never at error', async (t) => {
  const lines: Array<{ level: number, msg: string, err?: { code?: string } }> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()))
      done()
    }
  })
  const { app, url, port } = await startApp({ maxPayload: 1024 }, undefined, { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  const utf8 = await TestClient.connect(url)
  utf8.ws.send(Buffer.from([0xff]), { binary: false })
  t.equal((await within(utf8.closed, 3000, 'invalid UTF-8 closes the socket')).code, 1007)
  const big = await TestClient.connect(url)
  big.send('x'.repeat(2000))
  t.equal((await within(big.closed, 3000, 'a frame over maxPayload closes the socket')).code, 1009)
  const raw = await RawClient.connect(port)
  raw.write(encodeClientFrame(0x3, 'x'))
  await within(raw.ended, 3000, 'a peer sending a reserved opcode is cut off')
  t.equal(raw.closeCode(), 1002)
  await until(() => lines.filter((line) => line.err?.code?.startsWith('WS_ERR_') === true).length === 3, 3000,
    'the three violations are logged')
  t.same(lines.filter((line) => line.level >= 50).map((line) => line.msg), [], 'nothing at error level')
  t.same(lines.filter((line) => line.err !== undefined).map((line) => [line.level, line.err?.code]),
    [[30, 'WS_ERR_INVALID_UTF8'], [30, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'], [30, 'WS_ERR_INVALID_OPCODE']])
})

t.test('no uncaught exception or unhandled rejection in the whole file', async (t) => {
  t.same(processErrors, [])
})
