/**
 * Which web pages may open a socket. Browsers send cookies with a WebSocket upgrade and the
 * same-origin policy does not cover WebSockets, so any page a logged-in user visits could open
 * a socket as that user (cross-site WebSocket hijacking). Browsers always send `Origin` on the
 * upgrade: an upgrade from another origin than the server's own, and not allowed by the
 * `origins` option, is answered 403 from an `onRequest` hook of the upgrade route, before any
 * WebSocket exists. An upgrade without `Origin` did not come from a browser page and passes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { InvalidOptionError } from '../errors.js'

/** `'*'`: any page; otherwise exact origins and whole-origin patterns, on top of the server's own. */
export type AllowedOrigins = '*' | {
  /** serialized origins (`https://app.example.com`), as browsers send them */
  exact: ReadonlySet<string>
  /** anchored copies (`^(?:...)$`) of the option's RegExps */
  patterns: readonly RegExp[]
}

export const sameOriginOnly: AllowedOrigins = Object.freeze({ exact: new Set<string>(), patterns: [] })

export const forbiddenOriginCode = 'FST_CHANNELS_FORBIDDEN_ORIGIN'

/**
 * The serialized origin of an absolute http(s) URL (lower-case host, default port dropped),
 * or `undefined` when `text` is not an absolute http(s) URL.
 */
function serializedOrigin (text: string): string | undefined {
  if (!URL.canParse(text)) return undefined
  const url = new URL(text)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  return url.origin
}

/**
 * Whole-origin matching: `/https:\/\/app\.example\.com/` must not accept
 * `https://app.example.com.evil.net`. `g` and `y` are dropped: they make `test()` stateful.
 */
function anchored (pattern: RegExp): RegExp {
  return new RegExp(`^(?:${pattern.source})$`, pattern.flags.replace(/[gy]/g, ''))
}

function allowedEntry (entry: unknown, index: number): string | RegExp {
  if (entry instanceof RegExp) return anchored(entry)
  if (typeof entry !== 'string') {
    throw new InvalidOptionError(`origins[${index}]: expected a string or a RegExp, got ${String(entry)}`)
  }
  const origin = serializedOrigin(entry)
  // An origin is scheme, host and port only: 'https://app.example.com/' or '.../path' is a URL.
  if (origin === undefined || new URL(entry).href !== `${origin}/`) {
    throw new InvalidOptionError(`origins[${index}]: expected an origin such as 'https://app.example.com' ` +
      `(http or https, host, optional port, no path), got '${entry}'`)
  }
  return origin
}

/** Normalises the `origins` option once, at registration. */
export function allowedOrigins (value: unknown): AllowedOrigins {
  if (value === undefined) return sameOriginOnly
  if (value === '*') return '*'
  if (!Array.isArray(value)) {
    throw new InvalidOptionError(`origins: expected '*' or an array of origins (strings or RegExps), got ${String(value)}` +
      (typeof value === 'string' ? ` (for one origin write origins: ['${value}'])` : ''))
  }
  const exact = new Set<string>()
  const patterns: RegExp[] = []
  value.forEach((entry: unknown, index) => {
    const allowed = allowedEntry(entry, index)
    if (typeof allowed === 'string') exact.add(allowed)
    else patterns.push(allowed)
  })
  return Object.freeze({ exact, patterns })
}

/**
 * The origin the request was sent to: scheme, host and port, as Fastify reads them (from
 * `X-Forwarded-Proto`/`X-Forwarded-Host` when `trustProxy` trusts the peer), serialized: scheme
 * and host lower-cased, the scheme's default port dropped. `undefined` when the Host header is
 * missing or malformed.
 */
export function ownOrigin (request: FastifyRequest): string | undefined {
  // A proxy may name the WebSocket scheme, in any letter case (`X-Forwarded-Proto: WSS`); the
  // page that opened the socket has the http one. Hosts are compared lower-cased (serializedOrigin).
  const named = (request.protocol ?? 'http').toLowerCase()
  const protocol = named === 'ws' ? 'http' : named === 'wss' ? 'https' : named
  if (request.host === '') return undefined
  return serializedOrigin(`${protocol}://${request.host}`)
}

/** Whether a page of `origin` may open a socket on the server that `request` was sent to. */
export function isAllowedOrigin (allowed: AllowedOrigins, origin: string, request: FastifyRequest): boolean {
  if (allowed === '*') return true
  // Browsers send origins serialized; anything else (`null` from a sandboxed page, a file: URL,
  // garbage) matches no exact origin, and only a pattern written for it can admit it.
  const normalized = serializedOrigin(origin) ?? origin
  if (normalized === ownOrigin(request)) return true
  if (allowed.exact.has(normalized)) return true
  return allowed.patterns.some((pattern) => pattern.test(normalized))
}

/** The `onRequest` hook of the upgrade route: 403 for a page of an origin that is not allowed. */
export function checkOrigin (allowed: AllowedOrigins): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async function checkOrigin (request, reply) {
    // A plain GET of the route is not a socket (it gets its 404 from @fastify/websocket).
    if (!request.ws) return
    // Protocol version 8 (pre-RFC drafts, still accepted by ws) names it Sec-WebSocket-Origin.
    const origin = request.headers.origin ?? request.headers['sec-websocket-origin']
    if (origin === undefined || isAllowedOrigin(allowed, String(origin), request)) return
    request.log.info({ origin, host: request.host }, 'channels: upgrade refused: origin not allowed')
    await reply.code(403).send({
      statusCode: 403,
      code: forbiddenOriginCode,
      error: 'Forbidden',
      message: `pages from ${String(origin)} may not open a WebSocket here (see the origins option of fastify-channels)`
    })
  }
}
