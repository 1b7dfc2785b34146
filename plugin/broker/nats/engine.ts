/**
 * One node's link to NATS, and the parts the core composes from it: one connection (opened
 * here, or the app's own, which stays the app's), a JetStream client for the history stream,
 * and two key-value buckets (the nodes', the presence one). The parts: NatsTransport,
 * NatsRegistry, NatsHistoryStore, NatsPresenceStore.
 *
 * Nothing waits for NATS: while the connection is down publications are refused at once,
 * while NATS hangs they are reported failed after `commandTimeout` (and dropped by receivers
 * if they arrive after their deadline), and past a bound on bytes in flight they are refused;
 * the plugin logs it and goes on delivering locally. A tick (a third of `nodeTtl`) checks that
 * the server answers; when it does not, an outage begins, and on a connection of the engine's
 * own the client is made to reconnect (what waited on the dead socket goes with it). When the
 * connection is back, the node subscribes and registers everything again (EngineNode.restore)
 * before the outage ends; the tick retries that while the outage lasts.
 */
import type { NatsConnection } from '@nats-io/transport-node'
import type { KV, KvOptions } from '@nats-io/kv'
import { BrokerUnreachableError } from '../../errors.js'
import type { EngineNode, EngineParts } from '../parts.js'
import { connectionOptions, type NatsLibrary } from './client.js'
import { NatsClock } from './clock.js'
import { NatsHealth } from './health.js'
import { NatsHistoryStore } from './history-store.js'
import { NatsNames } from './names.js'
import { NatsPresenceStore } from './presence-store.js'
import { NatsRegistry } from './registry-store.js'
import { NatsTransport } from './transport.js'

/** bytes of publications on their way to NATS, at most, per node */
export const maxBytesInFlight = 8 * 1024 * 1024
/** how long close() waits for the connection to close before leaving it */
const closeGraceMs = 1000

export interface NatsEngineSettings {
  servers: string | string[]
  prefix: string
  nodeTtl: number
  commandTimeout: number
}

/** Opens a bucket, creating it when missing; an existing one keeps its configuration. */
async function bucket (lib: NatsLibrary, nc: NatsConnection, timeout: number, name: string, options: Partial<KvOptions>): Promise<KV> {
  const kvm = new lib.Kvm(lib.jetstream(nc, { timeout }))
  try {
    return await kvm.create(name, options)
  } catch {
    return await kvm.open(name)
  }
}

export class NatsEngine {
  private readonly health: NatsHealth
  private readonly transport: NatsTransport
  private readonly registry: NatsRegistry
  private readonly history: NatsHistoryStore
  private readonly names: NatsNames
  private readonly lib: NatsLibrary
  private readonly parts: EngineParts
  private timer: NodeJS.Timeout | undefined
  private connected = true
  private recovering = false
  /** counts reconnects: a recovery that saw one more during its run starts over */
  private readies = 0
  private started = false
  private closed = false
  /** the connection's status events while the node lives (stopped at close: the connection may be the app's) */
  private statuses: AsyncIterable<{ type: string }> | undefined

  private readonly lost = (err: unknown): void => {
    if (this.closed || !this.started) return
    if (this.health.lost(err) && this.own && this.connected) {
      // a server that does not answer: drop the socket and what waits on it, and dial again
      this.nc.reconnect().catch(() => {})
    }
  }

  private constructor (
    private readonly node: EngineNode,
    private readonly nc: NatsConnection,
    private readonly own: boolean,
    private readonly settings: NatsEngineSettings,
    stores: { lib: NatsLibrary, nodes: KV, presence: KV, jsm: Awaited<ReturnType<NatsLibrary['jetstreamManager']>> }
  ) {
    this.health = new NatsHealth(node.log, node.nodeId)
    const names = this.names = new NatsNames(settings.prefix)
    this.lib = stores.lib
    const clock = new NatsClock()
    const timeoutMs = settings.commandTimeout
    // a quarter of the timeout before a publication would be reported failed: the margin for clocks
    const budgetMs = Math.max(Math.floor(timeoutMs * 3 / 4), 1)
    const { headers } = stores.lib
    const dropped = (): void => this.health.drop()
    const late = (): void => this.health.dropLate()
    this.transport = new NatsTransport(nc, {
      names,
      clock,
      headers,
      timeoutMs,
      budgetMs,
      maxBytes: maxBytesInFlight,
      connected: () => this.connected && !nc.isClosed(),
      onDropped: dropped,
      onLate: late,
      onFailed: this.lost
    }, (envelope) => node.receive(envelope))
    const js = stores.lib.jetstream(nc, { timeout: timeoutMs })
    this.parts = {
      transport: this.transport,
      registry: this.registry = new NatsRegistry(nc, stores.nodes, {
        names,
        clock,
        headers,
        nodeId: node.nodeId,
        ttl: settings.nodeTtl,
        timeoutMs,
        budgetMs,
        receive: (envelope) => node.receive(envelope),
        onLost: this.lost,
        onDropped: dropped,
        onLate: late
      }),
      history: this.history = new NatsHistoryStore(nc, js, stores.jsm, { names, clock, headers, timeoutMs, budgetMs }),
      presence: new NatsPresenceStore(nc, js, stores.presence, { names, headers, nodeId: node.nodeId, timeoutMs }),
      start: () => this.start(),
      close: async () => await this.close()
    }
  }

  /**
   * Connects (unless `given`), sets up the buckets and hands out the node's parts. Rejects
   * with BrokerUnreachableError when NATS cannot be reached or has no JetStream.
   */
  static async open (node: EngineNode, lib: NatsLibrary, settings: NatsEngineSettings, given?: NatsConnection): Promise<EngineParts> {
    const names = new NatsNames(settings.prefix)
    const timeout = settings.commandTimeout
    let nc: NatsConnection
    try {
      nc = given ?? await lib.connect(connectionOptions(settings.servers, `${settings.prefix}:${node.nodeId}`, timeout))
    } catch (err) {
      throw new BrokerUnreachableError('nats', (err as Error).message, { cause: err })
    }
    try {
      const jsm = await lib.jetstreamManager(nc, { timeout })
      const { nodes, presence } = await NatsEngine.buckets(lib, nc, settings, names)
      return new NatsEngine(node, nc, given === undefined, settings, { lib, nodes, presence, jsm }).parts
    } catch (err) {
      if (given === undefined) await nc.close().catch(() => {})
      throw new BrokerUnreachableError('nats', `JetStream is not usable: ${(err as Error).message}`, { cause: err })
    }
  }

  /** The two buckets, created when missing (at start, and after a server that lost its store). */
  private static async buckets (lib: NatsLibrary, nc: NatsConnection, settings: NatsEngineSettings, names: NatsNames): Promise<{ nodes: KV, presence: KV }> {
    const timeout = settings.commandTimeout
    return {
      nodes: await bucket(lib, nc, timeout, names.nodesBucket, { history: 1, ttl: settings.nodeTtl }),
      presence: await bucket(lib, nc, timeout, names.presenceBucket, { history: 1, republish: names.presenceRepublish })
    }
  }

  /** The node is set up: watch the connection. */
  private start (): void {
    this.started = true
    this.watch().catch(() => {})
    this.timer = setInterval(() => this.tick(), Math.max(Math.floor(this.settings.nodeTtl / 3), 50))
    this.timer.unref()
  }

  private async watch (): Promise<void> {
    this.statuses = this.nc.status()
    for await (const status of this.statuses) {
      if (this.closed) return
      switch (status.type) {
        case 'disconnect':
          this.connected = false
          this.lost(new Error('nats connection lost'))
          break
        case 'reconnect':
          this.connected = true
          this.readies++
          this.recover()
          break
        case 'staleConnection':
          this.lost(new Error('nats stopped answering pings'))
          break
      }
    }
  }

  /** Every third of the TTL: recover while down, else check the server answers. */
  private tick (): void {
    if (this.closed) return
    if (!this.health.up) {
      this.recover()
      return
    }
    this.health.report()
    this.transport.check().catch(this.lost)
  }

  /** Has the core subscribe and register everything again (the buckets made again if missing), then ends the outage. */
  private recover (): void {
    if (this.recovering || this.closed || !this.connected || this.nc.isClosed()) return
    this.recovering = true
    const readies = this.readies
    // a server restarted without its store has lost the buckets and the stream: made again first
    this.history.forget()
    NatsEngine.buckets(this.lib, this.nc, this.settings, this.names).then(async () => await this.node.restore()).then((restored) => {
      if (readies === this.readies && this.connected) this.health.back(restored)
    }, this.lost).finally(() => {
      this.recovering = false
      if (readies !== this.readies) this.recover()
    })
  }

  private async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    const statuses = this.statuses as { stop?: () => void } | undefined
    statuses?.stop?.()
    this.transport.close()
    this.registry.close()
    if (!this.own) return // the app's connection stays open
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, closeGraceMs) })
    await Promise.race([this.nc.close().catch(() => {}), grace])
    clearTimeout(timer)
  }
}
