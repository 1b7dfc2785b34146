// @ts-check
// Variant (a): fastify-channels, from the compiled package (dist/). Build it first
// (`npm run bench` does). Heartbeat and rate limit are off so that the bench measures the
// fan-out and the inbound path, not the limits; the bundled browser client is not served.
//
// Inbound case: with opts.inbound = 'schema' the 'echo' handler is registered with a TypeBox
// schema, with 'plain' the same handler without one. Clients send
// {"type":"message","event":"echo","data":{...}} WITHOUT an id, so no ack is sent back: the
// case measures parse + validate + dispatch, and the handler counts what it was given.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { Echo } from '../lib/echo.js'

import { channelsEntry } from '../lib/variants.js'
import { listenOnFreePort } from '../lib/listen.js'

const distEntry = channelsEntry()

/**
 * @param {{ host: string, inbound?: 'schema' | 'plain', onInbound?: () => void }} opts
 */
export async function start (opts) {
  if (!existsSync(distEntry)) {
    throw new Error(`variant (a) needs the built plugin: ${fileURLToPath(distEntry)} does not exist (run \`npm run build\`)`)
  }
  const mod = await import(distEntry.href)
  const fastifyChannels = mod.default
  if (typeof fastifyChannels !== 'function') {
    throw new Error(`variant (a): ${fileURLToPath(distEntry)} has no default export plugin (got ${typeof fastifyChannels})`)
  }

  // `any`: the plugin's type augmentation of FastifyInstance is not visible to this plain-JS file.
  /** @type {any} */
  const app = Fastify({ logger: false })
  await app.register(fastifyChannels, { path: '/ws', client: false, rateLimit: false, heartbeat: false })

  if (opts.inbound) {
    const onInbound = opts.onInbound ?? (() => {})
    // The same handler in both modes; only the schema differs.
    const handler = (/** @type {unknown} */ _socket, /** @type {any} */ data) => {
      if (data.n === 42) onInbound()
    }
    if (opts.inbound === 'schema') app.channels.on('message', { event: 'echo', schema: Echo }, handler)
    else app.channels.on('message', { event: 'echo' }, handler)
  }

  // The density case measures HTTP latency on this route while the sockets connect.
  app.get('/ping', async () => 'pong')

  const port = await listenOnFreePort(app, opts.host)

  return {
    port,
    path: '/ws',
    /** @param {string} channel @param {string} event @param {unknown} data */
    broadcast (channel, event, data) {
      return app.broadcastChannel(channel, data, { event })
    },
    connections: () => app.websocketServer?.clients?.size ?? NaN,
    close: () => app.close()
  }
}
