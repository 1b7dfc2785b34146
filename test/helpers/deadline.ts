/**
 * Deadlines for awaited events. A test that awaits an event that never comes must fail at
 * once with the expectation it broke ("the heartbeat cuts off a silent peer"), not with tap's
 * generic file timeout two minutes later.
 */

/**
 * Resolves as `event` does, or rejects after `ms` with an error that names `expectation`.
 * The timer is cleared either way, so a passing test leaves nothing behind.
 */
export async function within<T> (event: PromiseLike<T>, ms: number, expectation: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${expectation}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([event, deadline])
  } finally {
    clearTimeout(timer)
  }
}
