/**
 * The NATS client plumbing of the engine: loading the optional peers (`@nats-io/transport-node`,
 * `@nats-io/jetstream`, `@nats-io/kv`) on first use, the options of a connection the engine
 * opens, and the few calls every part shares (a flush with a deadline, error tests).
 */
import type { MsgHdrs, NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node'
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import type { Kvm } from '@nats-io/kv'
import { MissingNatsError } from '../../errors.js'

/** What the engine uses of the three packages. */
export interface NatsLibrary {
  connect: (options: NodeConnectionOptions) => Promise<NatsConnection>
  headers: () => MsgHdrs
  jetstream: (nc: NatsConnection, options?: { timeout?: number }) => JetStreamClient
  jetstreamManager: (nc: NatsConnection, options?: { timeout?: number, checkAPI?: boolean }) => Promise<JetStreamManager>
  Kvm: new (nc: JetStreamClient | NatsConnection) => Kvm
}

function notFound (err: unknown, specifier: string): boolean {
  // Node says ERR_MODULE_NOT_FOUND; some loaders (ts-node's) throw the same message without a code.
  const { code, message } = err as { code?: string, message?: string }
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' ||
    (code === undefined && /cannot find/i.test(message ?? '') && (message ?? '').includes(specifier))
}

async function load<T> (specifier: string): Promise<T> {
  try {
    return await import(specifier) as T
  } catch (err) {
    if (notFound(err, specifier)) throw new MissingNatsError({ cause: err })
    throw err
  }
}

/** Loads the three packages (`specifiers` is there for tests of the missing-peer error). */
export async function loadNats (specifiers = { transport: '@nats-io/transport-node', jetstream: '@nats-io/jetstream', kv: '@nats-io/kv' }): Promise<NatsLibrary> {
  const [transport, jetstream, kv] = await Promise.all([
    load<Pick<NatsLibrary, 'connect' | 'headers'>>(specifiers.transport),
    load<Pick<NatsLibrary, 'jetstream' | 'jetstreamManager'>>(specifiers.jetstream),
    load<Pick<NatsLibrary, 'Kvm'>>(specifiers.kv)
  ])
  return { connect: transport.connect, headers: transport.headers, jetstream: jetstream.jetstream, jetstreamManager: jetstream.jetstreamManager, Kvm: kv.Kvm }
}

/**
 * Our own connection: it reconnects forever, and is named so that the server's monitoring
 * shows whose it is. What the client would replay after a reconnect is never relied on: the
 * transport refuses to publish while disconnected, and every publication carries a deadline
 * the receivers check (see transport.ts).
 */
export function connectionOptions (servers: string | string[], name: string, timeoutMs: number): NodeConnectionOptions {
  return {
    servers,
    name,
    timeout: timeoutMs,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    waitOnFirstConnect: false,
    // the engine checks the connection itself on every tick; these catch a dead one in between
    pingInterval: 5000,
    maxPingOut: 2
  }
}

/** Resolves once the server answered a PING sent after everything before it; rejects after `timeoutMs`. */
export async function flushWithin (nc: NatsConnection, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`nats did not answer within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    await Promise.race([nc.flush(), late])
  } finally {
    clearTimeout(timer)
  }
}

/** A JetStream publish refused because the subject's last sequence was not the one expected (another writer came first). */
export function isWrongSequence (err: unknown): boolean {
  const { code, message } = err as { code?: unknown, message?: string }
  const api = (err as { api_error?: { err_code?: number } }).api_error
  return api?.err_code === 10071 || code === 10071 || /wrong last sequence/i.test(message ?? '')
}

/** A request that found no subscriber (a session no node holds). */
export function isNoResponders (err: unknown): boolean {
  const { name, message } = err as { name?: string, message?: string }
  const isNo = (err as { isNoResponders?: () => boolean }).isNoResponders
  return name === 'NoRespondersError' || (typeof isNo === 'function' && isNo.call(err)) || /no responders/i.test(message ?? '')
}
