/**
 * Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by
 * playwright-core (which never downloads a browser). Without Chromium the tests skip with a
 * loud message, except under CI, where a missing browser is a failure.
 */
import { existsSync } from 'node:fs'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const screenshotDir = fileURLToPath(new URL('../screenshots/', import.meta.url))

const ci = !['', '0', 'false', undefined].includes(process.env.CI)

/**
 * `false` when the browser tests can run (or must, under CI); else the reason they skip,
 * also printed loudly on stderr so nobody mistakes a skip for a pass.
 */
export function skipWithoutChromium (): string | false {
  if (existsSync(chromiumPath) || ci) return false
  const reason = `Chromium not found at ${chromiumPath}: browser tests SKIPPED (apt-get install chromium, or set CHROMIUM_PATH)`
  process.stderr.write(`\n${'!'.repeat(reason.length)}\n${reason}\n${'!'.repeat(reason.length)}\n\n`)
  return reason
}

export async function launchChromium (): Promise<Browser> {
  if (!existsSync(chromiumPath)) throw new Error(`Chromium not found at ${chromiumPath} (CI=${String(process.env.CI)}): install it with apt-get install chromium`)
  return await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'
    ]
  })
}

/**
 * Resolves once `condition` (run in the page) is truthy; fails after `timeoutMs` with
 * `expectation`, which Playwright's own timeout error does not name.
 */
export async function pageReaches (page: Page, condition: () => unknown, expectation: string, timeoutMs = 10_000): Promise<void> {
  try {
    await page.waitForFunction(condition, undefined, { timeout: timeoutMs })
  } catch (err) {
    throw new Error(`${expectation}: not within ${timeoutMs} ms (${(err as Error).message.split('\n')[0]})`)
  }
}

/** Collects the page's uncaught errors and console errors, to assert there were none. */
export function pageErrors (page: Page): string[] {
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
  page.on('console', (message) => { if (message.type() === 'error') errors.push(`console: ${message.text()}`) })
  return errors
}

export function screenshotPath (name: string): string {
  mkdirSync(screenshotDir, { recursive: true })
  return join(screenshotDir, name)
}

/** Opens the chat at `base` in a fresh browser context (its own storage), enters as `nick`, waits for the lobby. */
export async function enterChat (browser: Browser, base: string, nick: string, viewport = { width: 1280, height: 760 }): Promise<{ page: Page, errors: string[] }> {
  const context = await browser.newContext({ viewport })
  // Shorter than Playwright's 30 s: a missing element fails soon, naming its selector.
  context.setDefaultTimeout(10_000)
  const page = await context.newPage()
  const errors = pageErrors(page)
  await page.goto(base)
  await page.fill('#nick-input', nick)
  await page.click('#nick-form button[type=submit]')
  // Attached, not visible: on a phone both are in the room drawer, closed.
  await page.waitForSelector('#status[data-status="open"]', { state: 'attached' })
  await page.waitForSelector('.room-link.active.joined[data-room="lobby"]', { state: 'attached' })
  return { page, errors }
}
