/**
 * The shared raw deflate stream of permessage-deflate without server context takeover
 * (`SharedDeflate`, `deflateAlone` through `OutboundFrame.deflatedBytes`): its bytes are those
 * of a fresh `deflateRawSync` per message, also past its 16 KB output buffer; one stream per
 * window is made once and reused; a stream that fails (for real: a zlib stream finished or
 * destroyed through its public API) gives no bytes, and its window falls back to
 * `deflateRawSync` for good, with the same bytes. Pure zlib and ws's own `Sender.frame`: no
 * sockets.
 */
import t from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { randomBytes } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { constants as zlibConstants, deflateRawSync, inflateRawSync, type DeflateRaw } from 'node:zlib'
import * as ws from 'ws'
import {
  deflateLevel, detectSenderFrame, OutboundFrame, SharedDeflate, sharedDeflateOf, type FrameFn
} from '../../plugin/outbound/frame-writer.js'

/** ws's Sender: a named export of ws's ES module, absent from @types/ws. */
const { Sender } = ws as unknown as { Sender: { new (socket: PassThrough): object, frame: FrameFn } }
const build = detectSenderFrame(new Sender(new PassThrough())) as FrameFn
const tail = Buffer.from([0, 0, 0xff, 0xff])

/** What a fresh zlib stream gives for `text` alone, ending with the sync flush's 00 00 ff ff. */
const alone = (text: string | Buffer, windowBits: number): Buffer =>
  deflateRawSync(text, { windowBits, level: deflateLevel, finishFlush: zlibConstants.Z_SYNC_FLUSH })

/** The whole frame a peer without server context takeover must get: RSV1, the tail dropped (RFC 7692 7.2.1). */
const expectedFrame = (text: string, windowBits: number): Buffer => {
  const compressed = alone(text, windowBits)
  return Buffer.concat(Sender.frame(compressed.subarray(0, compressed.length - 4), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: true }))
}

/** The zlib stream a SharedDeflate drives (a private field, reached here to make it fail for real). */
const streamOf = (shared: SharedDeflate): DeflateRaw => (shared as unknown as { stream: DeflateRaw }).stream

/** Base64 of random bytes: compresses to about 3/4 of its size, so `n` chars give that much output. */
const noise = (n: number): string => randomBytes(Math.ceil(n * 3 / 4)).toString('base64').slice(0, n)

const doc = JSON.stringify({ rows: Array.from({ length: 80 }, (_, i) => ({ id: i, name: `player-${i % 7}`, score: (i * 7919) % 1000 })) })

const built: Array<{ bytes: number, compressed?: boolean }> = []
const record = (message: unknown): void => { built.push(message as { bytes: number, compressed?: boolean }) }
subscribe('fastify-channels:frame-built', record)
t.teardown(() => { unsubscribe('fastify-channels:frame-built', record) })

t.test('a shared stream gives, message after message, the bytes of a fresh deflateRawSync, past its 16 KB output buffer too', async (t) => {
  for (const windowBits of [15, 9]) {
    const shared = SharedDeflate.open(windowBits)
    t.ok(shared instanceof SharedDeflate, `window ${windowBits}: the stream's internals work on this Node`)
    if (shared === undefined) continue
    // 16 KB - 1, 16 KB, 16 KB + 1 and far past it (the output buffer doubles: 16, 32, 64, 128, 256 KB)
    const texts = ['{"a":1}', doc, noise(21_840), noise(21_845), noise(21_850), noise(60_000), noise(400_000), '{"a":1}', doc, noise(50)]
    const outputs = texts.map((text) => shared.compress(Buffer.from(text)))
    for (const [i, text] of texts.entries()) {
      const output = outputs[i]
      t.ok(output !== undefined, `message ${i}: compressed`)
      if (output === undefined) continue
      t.ok(output.equals(alone(text, windowBits)), `message ${i} (${text.length} B in, ${output.length} B out): the bytes of deflateRawSync`)
      t.ok(output.subarray(-4).equals(tail), `message ${i}: ends with the flush's 00 00 ff ff`)
      t.equal(inflateRawSync(output, { windowBits, finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString(), text, `message ${i}: inflates back alone`)
    }
    const sizes = outputs.map((output) => output?.length ?? 0)
    t.ok(sizes.some((size) => size > 256 * 1024), `some output (${Math.max(...sizes)} B) took more than four output buffers`)
    t.ok(sizes.some((size) => size > 16 * 1024 && size < 32 * 1024), 'some took two')
    t.ok(outputs[0]?.equals(outputs[7] as Buffer), 'the same message, the same bytes, after the large ones')
    t.not(outputs[0], outputs[7], 'each output its own Buffer (the output buffer is reused)')
    streamOf(shared).destroy()
  }
})

t.test('outputs just under and just over the 16 KB of a fresh output buffer', async (t) => {
  // (zlib's level 3 jumps from 16383 to 16389 bytes here: a block boundary; no text gives 16384 exactly)
  const base = noise(30_000)
  const under = { n: 0, size: 0 }
  const over = { n: 0, size: 0 }
  for (let n = 21_000; n < 23_000 && over.n === 0; n++) {
    const size = alone(base.slice(0, n), 15).length
    if (size < 16 * 1024) Object.assign(under, { n, size })
    else Object.assign(over, { n, size })
  }
  t.ok(under.size > 16 * 1024 - 16 && over.size < 16 * 1024 + 16, `${under.size} B and ${over.size} B`)
  for (const { n, size } of [under, over]) {
    const shared = SharedDeflate.open(15) as SharedDeflate
    const text = base.slice(0, n)
    t.ok(shared.compress(Buffer.from(text))?.equals(alone(text, 15)), `${size} B out: the bytes of deflateRawSync`)
    t.ok(shared.compress(Buffer.from(doc))?.equals(alone(doc, 15)), `${size} B out: and the next message's too`)
    streamOf(shared).destroy()
  }
})

t.test('a stream that failed gives no bytes: destroyed, or finished and then written to (a real zlib error)', async (t) => {
  const destroyed = SharedDeflate.open(15) as SharedDeflate
  streamOf(destroyed).destroy()
  t.equal(destroyed.compress(Buffer.from(doc)), undefined, 'destroyed (its native handle closed)')

  const finished = SharedDeflate.open(15) as SharedDeflate
  t.ok(finished.compress(Buffer.from(doc))?.equals(alone(doc, 15)), 'works before')
  const stream = streamOf(finished)
  // Z_FINISH ends the zlib stream; deflate() with any other flush then returns Z_STREAM_ERROR.
  await new Promise<void>((resolve) => { stream.flush(zlibConstants.Z_FINISH, () => { resolve() }) })
  t.notOk(stream.destroyed, 'not destroyed by the finish itself')
  t.equal(finished.compress(Buffer.from(doc)), undefined, 'the write fails: no bytes (not those of the write before)')
  t.ok(stream.destroyed, 'Node destroyed the stream')
  t.equal(finished.compress(Buffer.from('{"a":1}')), undefined, 'and it stays failed')
  // Node emits the error on the next tick: the stream's listener takes it (no uncaught error).
  await new Promise((resolve) => setImmediate(resolve))
  t.pass('no uncaught zlib error')
})

t.test('a stream whose Node internals are missing gives no bytes and does not throw', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['no native handle (null)', { _handle: null }],
    ['no native handle (undefined)', { _handle: undefined }],
    ['no write state', { _writeState: undefined }]
  ]
  for (const [why, internals] of cases) {
    const shared = SharedDeflate.open(15) as SharedDeflate
    const stream = streamOf(shared)
    Object.assign(stream, internals)
    let output: Buffer | undefined
    t.doesNotThrow(() => { output = shared.compress(Buffer.from(doc)) }, why)
    t.equal(output, undefined, why)
    t.notOk(stream.destroyed, `${why}: not a failure of the stream itself`)
  }
})

t.test('no stream for a window zlib refuses', async (t) => {
  t.equal(SharedDeflate.open(16), undefined)
  t.equal(SharedDeflate.open(7), undefined)
})

t.test('deflatedBytes: one shared stream per window, made on first use and reused; the frame is RSV1 + the bytes without their tail', async (t) => {
  const windowBits = 13
  t.equal(sharedDeflateOf(windowBits), undefined, 'nothing before the window\'s first message')
  const first = new OutboundFrame(doc).deflatedBytes(build, windowBits)
  const shared = sharedDeflateOf(windowBits)
  t.ok(shared instanceof SharedDeflate, 'a shared stream once used')
  t.ok(first.equals(expectedFrame(doc, windowBits)), 'the frame: header with RSV1, the deflated payload without 00 00 ff ff')
  t.equal(first[0], 0xc1, 'FIN + RSV1 + text')
  const big = noise(100_000)
  const second = new OutboundFrame(big).deflatedBytes(build, windowBits)
  t.ok(second.equals(expectedFrame(big, windowBits)), 'a payload larger than the output buffer')
  t.equal(sharedDeflateOf(windowBits), shared, 'the same stream for the next message')
  t.equal(sharedDeflateOf(14), undefined, 'other windows untouched')
  // the stream is really the one used: a failure of it shows in the next message
  streamOf(shared as SharedDeflate).destroy()
  const third = new OutboundFrame('{"after":"destroy"}').deflatedBytes(build, windowBits)
  t.ok(third.equals(expectedFrame('{"after":"destroy"}', windowBits)), 'the same bytes, from the fallback')
  t.equal(sharedDeflateOf(windowBits), null, 'that window fell back')
})

t.test('a shared stream that fails for real: the message still gets the right frame, and the window stays on deflateRawSync', async (t) => {
  const windowBits = 11
  const warmup = new OutboundFrame('{"warm":"up up up"}').deflatedBytes(build, windowBits)
  t.ok(warmup.equals(expectedFrame('{"warm":"up up up"}', windowBits)))
  const shared = sharedDeflateOf(windowBits) as SharedDeflate
  t.ok(shared instanceof SharedDeflate)
  const stream = streamOf(shared)
  await new Promise<void>((resolve) => { stream.flush(zlibConstants.Z_FINISH, () => { resolve() }) })
  for (const text of [doc, noise(40_000), '{"a":1}']) {
    const wire = new OutboundFrame(text).deflatedBytes(build, windowBits)
    t.ok(wire.equals(expectedFrame(text, windowBits)), `${text.length} B: the frame of deflateRawSync`)
    t.equal(sharedDeflateOf(windowBits), null, 'fallen back, and stays so')
  }
  await new Promise((resolve) => setImmediate(resolve))
})

t.test('deflatedBytes caches one frame per window on the message, and publishes each once', async (t) => {
  const frame = new OutboundFrame(doc)
  const before = built.length
  const w15 = frame.deflatedBytes(build, 15)
  const w10 = frame.deflatedBytes(build, 10)
  const w9 = frame.deflatedBytes(build, 9)
  t.ok(w15.equals(expectedFrame(doc, 15)), 'window 15')
  t.ok(w10.equals(expectedFrame(doc, 10)), 'window 10')
  t.ok(w9.equals(expectedFrame(doc, 9)), 'window 9')
  t.equal(frame.deflatedBytes(build, 15), w15, 'the same Buffer for 15 again')
  t.equal(frame.deflatedBytes(build, 10), w10, 'the same Buffer for 10 again')
  t.equal(frame.deflatedBytes(build, 9), w9, 'the same Buffer for 9 again')
  t.same(built.slice(before), [
    { bytes: w15.length, compressed: true },
    { bytes: w10.length, compressed: true },
    { bytes: w9.length, compressed: true }
  ], 'three frames built, each published once')
  // the other order: a non-default window first
  const other = new OutboundFrame(doc)
  const o10 = other.deflatedBytes(build, 10)
  t.ok(o10.equals(w10))
  t.ok(other.deflatedBytes(build, 15).equals(w15), 'then 15: its own frame, not the one for 10')
  t.equal(other.deflatedBytes(build, 10), o10)
})

t.test('a message is not volatile unless said so', async (t) => {
  t.equal(new OutboundFrame('x').volatile, false)
  t.equal(new OutboundFrame('x', true).volatile, true)
})
