/**
 * Applies a fossil delta (the format of Fossil SCM, as `fossil-delta` makes it on the server)
 * to a text, the decoder only: the bundle carries no dependency, and the texts a history
 * channel deltas are ASCII (`schemas/delta.ts`), so this works on JS strings, one character a
 * byte. Throws on any malformed delta (a hostile or buggy server): the caller resyncs.
 *
 * Format: `<size>\n` then commands `<n>@<offset>,` (copy n characters of the base from offset),
 * `<n>:<n characters>` (insert them), and `<checksum>;` last; numbers in fossil's base 64.
 */
const digits = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~'

export function applyDelta (base: string, delta: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(delta)) throw new Error('delta: not ASCII')
  let pos = 0
  const int = (): number => {
    let value = 0
    let n = 0
    for (let c: number; pos < delta.length && (c = digits.indexOf(delta[pos] as string)) >= 0; pos++, n++) {
      value = value * 64 + c
      if (value > 0xffffffff) throw new Error('delta: number too large')
    }
    if (n === 0) throw new Error('delta: number expected')
    return value
  }
  const size = int()
  if (delta[pos++] !== '\n') throw new Error('delta: size not terminated')
  const out: string[] = []
  let total = 0
  while (pos < delta.length) {
    const count = int()
    const op = delta[pos++]
    if (op === '@') {
      const offset = int()
      if (delta[pos++] !== ',') throw new Error('delta: copy not terminated')
      total += count
      if (total > size || offset + count > base.length) throw new Error('delta: copy out of bounds')
      out.push(base.slice(offset, offset + count))
    } else if (op === ':') {
      total += count
      if (total > size || pos + count > delta.length) throw new Error('delta: insert out of bounds')
      out.push(delta.slice(pos, pos += count))
    } else if (op === ';') {
      const text = out.join('')
      if (total !== size || pos !== delta.length || checksum(text) !== count) throw new Error('delta: bad checksum or size')
      return text
    } else {
      throw new Error('delta: unknown command')
    }
  }
  throw new Error('delta: unterminated')
}

/** fossil's checksum: the bytes summed as big-endian 32-bit words, modulo 2^32. */
function checksum (text: string): number {
  let sum = 0
  for (let i = 0; i < text.length; i++) sum = (sum + (text.charCodeAt(i) << (24 - 8 * (i & 3)))) | 0
  return sum >>> 0
}
