import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { decodeClientFrame, decodeServerFrame, encodeFrame, encodeMessage } from '../../schemas/codec.js'

t.test('decodes every client frame', async (t) => {
  const frames = [
    { type: 'subscribe', channel: 'room-42', id: 1 },
    { type: 'unsubscribe', channel: 'room-42', id: 2 },
    { type: 'message', event: 'chat', channel: 'room-42', data: { text: 'hi' }, id: 3 },
    { type: 'message', data: [1, 2, 3] },
    { type: 'subscribe', channel: 'x' }
  ]
  for (const frame of frames) {
    t.same(decodeClientFrame(JSON.stringify(frame)), { ok: true, frame }, frame.type)
  }
})

t.test('decodes every server frame', async (t) => {
  const frames = [
    { type: 'welcome', sessionId: 'abc', protocol: 1 },
    { type: 'subscribed', channel: 'room-42', id: 1 },
    { type: 'unsubscribed', channel: 'room-42' },
    { type: 'message', event: 'chat', channel: 'room-42', data: { text: 'hi' } },
    { type: 'message', event: 'message' },
    { type: 'ack', id: 3, data: { ok: true } },
    { type: 'ack', id: 3 },
    { type: 'error', id: 3, code: 'VALIDATION_FAILED', message: 'no', errors: [{ path: '/text', message: 'Expected string' }] },
    { type: 'error', code: 'APP_DEFINED', message: 'from a ChannelError' }
  ]
  for (const frame of frames) {
    t.same(decodeServerFrame(JSON.stringify(frame)), { ok: true, frame }, frame.type)
  }
})

t.test('bad client frames are BAD_FRAME, never a throw', async (t) => {
  const cases: Array<[string, RegExp, number?]> = [
    ['not json', /not valid JSON/],
    ['', /not valid JSON/],
    ['"a string"', /JSON object/],
    ['null', /JSON object/],
    ['[1,2]', /JSON object/],
    ['42', /JSON object/],
    ['{}', /unknown frame type/],
    ['{"type":"welcome","id":4}', /unknown frame type/, 4],
    ['{"type":"toString"}', /unknown frame type/],
    ['{"type":"__proto__"}', /unknown frame type/],
    ['{"type":["subscribe"],"channel":"x","id":3}', /unknown frame type/, 3],
    ['{"type":"welcome","id":1}', /unknown frame type/, 1],
    ['{"type":"subscribe","id":5}', /malformed subscribe/, 5],
    ['{"type":"subscribe","channel":42,"id":6}', /malformed subscribe/, 6],
    ['{"type":"unsubscribe"}', /malformed unsubscribe/],
    ['{"type":"message","event":"","id":7}', /malformed message/, 7],
    ['{"type":"message","event":7}', /malformed message/],
    ['{"type":"message","channel":null}', /malformed message/],
    ['{"type":"message","id":0}', /malformed message/],
    ['{"type":"message","id":-1}', /malformed message/],
    ['{"type":"message","id":1.5}', /malformed message/],
    ['{"type":"message","id":"1"}', /malformed message/],
    ['{"type":"message","id":1e300}', /malformed message/],
    ['{"type":"subscribe","channel":"a","__proto__":{"polluted":1}}', /forbidden key/],
    ['{"type":"message","data":{"constructor":{"prototype":{"polluted":1}}}}', /forbidden key/],
    ['{"type":"message","data":{"a":[{"__proto__":{}}]}}', /forbidden key/]
  ]
  for (const [text, message, id] of cases) {
    const result = decodeClientFrame(text)
    t.equal(result.ok, false, text)
    if (!result.ok) {
      t.equal(result.code, 'BAD_FRAME')
      t.match(result.message, message, text)
      t.equal(result.id, id, `id of ${text}`)
    }
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
})

t.test('a client frame is not a server frame', async (t) => {
  t.equal(decodeServerFrame('{"type":"subscribe","channel":"x"}').ok, false)
  t.equal(decodeClientFrame('{"type":"ack","id":1}').ok, false)
})

t.test('encoding', async (t) => {
  t.equal(encodeMessage('chat', 'room', { a: 1 }), '{"type":"message","event":"chat","channel":"room","data":{"a":1}}')
  t.equal(encodeMessage('chat', undefined, undefined), '{"type":"message","event":"chat"}')
  t.equal(encodeFrame({ type: 'ack', id: 3 }), '{"type":"ack","id":3}')
  t.throws(() => encodeMessage('x', undefined, { big: 1n }), TypeError)
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  t.throws(() => encodeMessage('x', undefined, cycle), TypeError)
})

t.test('where code generation is forbidden (a strict Content-Security-Policy), frames are still checked', async (t) => {
  // The same node loader flags as this process (tap's TypeScript loader, or Stryker's), and V8's
  // switch that makes `new Function` throw, as a page without 'unsafe-eval' does.
  const fixture = fileURLToPath(new URL('./fixtures/decode-without-codegen.ts', import.meta.url))
  const { stdout } = await promisify(execFile)(process.execPath,
    [...process.execArgv, '--disallow-code-generation-from-strings', fixture], { timeout: 30_000 })
  t.same(JSON.parse(stdout), {
    codegen: 'forbidden',
    valid: { ok: true, frame: { type: 'subscribe', channel: 'room', id: 1 } },
    malformed: { ok: false, code: 'BAD_FRAME', message: 'malformed subscribe frame: missing or wrong fields', id: 2 },
    server: { ok: true, frame: { type: 'ack', id: 3 } }
  })
})
