/**
 * Reading the project's markdown pages for the doc tests: sections by heading, table rows as
 * cells, fenced blocks. Small on purpose: the pages are ours, written in one plain style.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../..', import.meta.url))

export function readDoc (file: string): string {
  return readFileSync(join(root, file), 'utf8')
}

export interface Section {
  /** the heading's text, without the leading #s */
  heading: string
  /** the heading's level: 2 for ##, 3 for ### */
  level: number
  /** the text under the heading, up to the next heading of the same or a higher level */
  body: string
}

/** The sections of `text` whose heading has `level` #s (fenced blocks are not searched for headings). */
export function sections (text: string, level: number): Section[] {
  const lines = text.split('\n')
  const found: Section[] = []
  let fenced = false
  let current: { heading: string, start: number } | undefined
  const close = (end: number): void => {
    if (current !== undefined) found.push({ heading: current.heading, level, body: lines.slice(current.start, end).join('\n') })
  }
  for (const [index, line] of lines.entries()) {
    if (/^```/.test(line)) fenced = !fenced
    if (fenced) continue
    const match = /^(#{1,6}) (.+)$/.exec(line)
    if (match === null || match[1].length > level) continue
    close(index)
    current = match[1].length === level ? { heading: match[2].trim(), start: index + 1 } : undefined
  }
  close(lines.length)
  return found
}

/** The one section of `text` at `level` whose heading is `heading`; throws when there is none. */
export function section (text: string, level: number, heading: string): Section {
  const found = sections(text, level).filter((s) => s.heading === heading)
  if (found.length !== 1) throw new Error(`expected one "${'#'.repeat(level)} ${heading}" section, found ${found.length}`)
  return found[0]
}

/** The body rows of every markdown table in `text`, each as its trimmed cells (header and rule rows left out). */
export function tableRows (text: string): string[][] {
  const rows: string[][] = []
  let inTable = false
  let fenced = false
  for (const line of text.split('\n')) {
    if (/^```/.test(line)) fenced = !fenced
    if (fenced || !line.startsWith('|')) {
      inTable = false
      continue
    }
    const cells = line.slice(1, line.endsWith('|') ? -1 : undefined).split(/(?<!\\)\|/).map((cell) => cell.trim())
    if (!inTable) {
      inTable = true // the header row
      continue
    }
    if (cells.every((cell) => /^:?-+:?$/.test(cell))) continue
    rows.push(cells)
  }
  return rows
}

/** The text between backticks at the start of `cell` (`` `path` [x] `` → `path`), or undefined. */
export function leadingCode (cell: string): string | undefined {
  return /^`([^`]+)`/.exec(cell)?.[1]
}

/** The lines of every fenced block of `language` in `text`. */
export function fencedLines (text: string, language: string): string[] {
  const lines: string[] = []
  let inside = false
  for (const line of text.split('\n')) {
    if (!inside && line.trim() === '```' + language) inside = true
    else if (inside && line.trim() === '```') inside = false
    else if (inside && line.trim() !== '') lines.push(line)
  }
  return lines
}

/** Ways a doc may write `n`: 65536, 65,536, 2⁵³ − 1 for Number.MAX_SAFE_INTEGER. */
export function spellings (n: number): string[] {
  const plain = String(n)
  const spelled = [plain, n.toLocaleString('en-US')]
  if (n === Number.MAX_SAFE_INTEGER) spelled.push('2⁵³ − 1')
  return spelled
}

/** Whether `text` holds `n` as a number of its own (65536 does not hold 6553 or 655360). */
export function mentionsNumber (text: string, n: number): boolean {
  return spellings(n).some((spelled) => {
    const escaped = spelled.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    return new RegExp(`(?<![\\d,.])${escaped}(?![\\d]|,\\d)`).test(text)
  })
}
