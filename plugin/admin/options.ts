/**
 * The `admin` option: where the admin page is served and who may see it. Resolved once at
 * registration (plugin/options.ts calls `resolveAdmin`); a wrong value fails registration with
 * FST_CHANNELS_INVALID_OPTION.
 */
import type { FastifyRequest } from 'fastify'
import { InvalidOptionError } from '../errors.js'

export const defaultAdminPath = '/channels/admin'

export interface AdminOptions {
  /** where the page is served ['/channels/admin']; its assets, API and live feed are under it */
  path?: string
  /**
   * Runs on every request of the page, its assets, its API and its live feed, after the app's own
   * hooks; only `true` lets the request through, anything else (or a throw) is answered 401.
   */
  authorize: (request: FastifyRequest) => boolean | Promise<boolean>
}

export interface ResolvedAdmin {
  path: string
  authorize: (request: FastifyRequest) => boolean | Promise<boolean>
}

const known = new Set(['path', 'authorize'])

/** `false` when the page is off (the default). */
export function resolveAdmin (value: unknown): ResolvedAdmin | false {
  if (value === undefined || value === false) return false
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError('admin: expected false or { path?, authorize } (authorize is required)')
  }
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new InvalidOptionError(`admin.${key}: unknown option`)
  }
  const { path = defaultAdminPath, authorize } = value as Partial<AdminOptions>
  if (typeof authorize !== 'function') {
    throw new InvalidOptionError('admin.authorize: required, a function (request) => boolean | Promise<boolean>')
  }
  if (typeof path !== 'string' || !path.startsWith('/') || path.endsWith('/')) { // '/' ends with one too
    throw new InvalidOptionError(`admin.path: expected a route path starting with "/" and not ending with one, got ${String(path)}`)
  }
  return Object.freeze({ path, authorize })
}
