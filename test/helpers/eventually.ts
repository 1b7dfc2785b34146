/**
 * Polling for a condition, shared by every suite (the Redis, NATS, users and broker tests). It
 * lives here, not beside a suite that needs a service, so that a test importing it needs none.
 */

/** Polls `check` until it resolves true; rejects after `timeoutMs`. */
export async function eventually (check: () => Promise<boolean> | boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
