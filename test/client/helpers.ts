/**
 * Helpers for the client tests (and the browser and chat tests): the browser bundle, and the
 * client in Node with `ws`, against a real server on loopback.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { connect, type AnyEvents, type ChannelsClient, type ClientOptions, type EventTypeMap, type Status } from '../../client/index.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
export const bundleDir = join(root, 'dist', 'browser')

/**
 * Makes sure the browser bundle exists (CI builds it with `npm run build` first; a lone
 * `npx tap test/...` run builds it here). The build writes atomically, so tests running
 * in parallel never read a half-written file.
 */
export async function ensureClientBundle (): Promise<void> {
  if (existsSync(join(bundleDir, 'client.js')) && existsSync(join(bundleDir, 'client.js.map'))) return
  // @ts-expect-error a plain .mjs build script, without types
  const { buildClient } = await import('../../scripts/build-client.mjs') as { buildClient: () => Promise<string[]> }
  await buildClient()
}

interface Teardown { teardown: (fn: () => void | Promise<void>) => void }

/** A client on `url` with `ws` and quick reconnects; closed at teardown. */
export function clientFor<E extends EventTypeMap<E> = AnyEvents> (t: Teardown, url: string, options: ClientOptions = {}): ChannelsClient<E> {
  const client = connect<E>(url, { WebSocket, backoff: () => 20, ...options })
  t.teardown(() => client.close())
  return client
}

type AnyClient = ChannelsClient<any>

/** Resolves when the client reaches `status` (at once if it is there); rejects after `timeoutMs`. */
export function statusOf (client: AnyClient, status: Status, timeoutMs = 5000): Promise<void> {
  if (client.status === status) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`status "${status}" not reached within ${timeoutMs} ms (now "${client.status}")`))
    }, timeoutMs)
    const off = client.onStatus((now) => {
      if (now !== status) return
      clearTimeout(timer)
      off()
      resolve()
    })
  })
}

/** The next `event` the client receives, with its channel. */
export function nextEvent<T = unknown> (client: AnyClient, event: string, timeoutMs = 5000): Promise<{ data: T, channel?: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`no "${event}" event within ${timeoutMs} ms`))
    }, timeoutMs)
    const off = client.on(event, (data: unknown, meta: { channel?: string }) => {
      clearTimeout(timer)
      off()
      resolve({ data: data as T, channel: meta.channel })
    })
  })
}
