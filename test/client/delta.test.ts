import { test } from 'tap'
import { createDelta } from 'fossil-delta'
import { applyDelta } from '../../client/delta.js'
import { deltaText } from '../../schemas/delta.js'

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0))
const encode = (base: string, target: string): string => String.fromCharCode(...createDelta(ascii(base), ascii(target)))

/** A small deterministic PRNG, so a failure names its seed. */
function random (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function randomText (rnd: () => number, length: number): string {
  let text = ''
  for (let i = 0; i < length; i++) text += String.fromCharCode(32 + Math.floor(rnd() * 95))
  return text
}

function edit (rnd: () => number, text: string): string {
  const edits = 1 + Math.floor(rnd() * 4)
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rnd() * (text.length + 1))
    const cut = Math.floor(rnd() * Math.min(40, text.length - at + 1))
    const kind = rnd()
    const insert = kind < 0.3 ? '' : kind < 0.6 ? randomText(rnd, Math.floor(rnd() * 30)) : text.slice(0, Math.floor(rnd() * 200))
    text = text.slice(0, at) + insert + text.slice(at + cut)
  }
  return text
}

test('applies what fossil-delta encodes, on many random edits', async (t) => {
  let checked = 0
  for (let seed = 1; seed <= 300; seed++) {
    const rnd = random(seed)
    let text = randomText(rnd, Math.floor(rnd() * 3000))
    for (let step = 0; step < 10; step++) {
      const next = rnd() < 0.05 ? randomText(rnd, Math.floor(rnd() * 500)) : edit(rnd, text)
      const rebuilt = applyDelta(text, encode(text, next))
      if (rebuilt !== next) t.fail(`seed ${seed}, step ${step}: not rebuilt`)
      text = next
      checked++
    }
  }
  t.equal(checked, 3000)
})

test('edge texts: empty base, empty target, equal texts, all 128 ASCII codes', async (t) => {
  const all = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join('')
  for (const [base, target] of [['', ''], ['', 'abc'], ['abc', ''], [all, all], [all, all + all], ['x'.repeat(5000), 'x'.repeat(4999) + 'y']]) {
    t.equal(applyDelta(base as string, encode(base as string, target as string)), target)
  }
})

test('a malformed delta throws, never loops or returns a wrong text', async (t) => {
  const base = deltaText({ score: 1, teams: ['a', 'b', 'c'], note: 'x'.repeat(100) }) as string
  const target = deltaText({ score: 2, teams: ['a', 'b', 'c'], note: 'x'.repeat(100) }) as string
  const good = encode(base, target)
  t.equal(applyDelta(base, good), target)
  const bad = [
    '', '\n', 'zz', good.slice(0, -1), good.slice(0, good.length - 3), good.replace(';', ','),
    good + 'x', '5\n5@0,', '3\n3:abc0;', '1~~~~~~~~~~~~\n', 'A\nA@99999,0;', 'A\nZ:ab0;',
    good.replace(/^\w+/, '1'), 'é' + good, '3\n3:ab\u00e90;'
  ]
  for (const delta of bad) t.throws(() => applyDelta(base, delta), JSON.stringify(delta))
  // Any single character flipped: a throw or (rarely) a text the checksum accepts, never a crash.
  const rnd = random(7)
  let thrown = 0
  for (let i = 0; i < 2000; i++) {
    const at = Math.floor(rnd() * good.length)
    const broken = good.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 128)) + good.slice(at + 1)
    try { applyDelta(base, broken) } catch (err) { if (err instanceof Error) thrown++ }
  }
  t.ok(thrown > 1500, `${thrown} of 2000 flipped deltas refused`)
})

test('deltaText is ASCII and the same for equal data', async (t) => {
  const data = { name: 'Zoë 🎉', tab: '\t', del: '\u007f', lone: '\ud800', n: [1, 2.5, -0, 1e21] }
  const text = deltaText(data) as string
  t.match(text, /^[\x20-\x7e]*$/)
  t.same(JSON.parse(text), JSON.parse(JSON.stringify(data)))
  t.equal(deltaText(JSON.parse(JSON.stringify(data))), text)
  t.equal(deltaText(undefined), undefined)
})
