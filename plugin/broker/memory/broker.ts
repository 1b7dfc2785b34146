/**
 * The default, in-process broker. One instance per Fastify app is a single node with nothing
 * to publish to. One instance passed to several apps in the same process joins them as nodes
 * of one server, which is how the broker contract is tested without Redis. It is the memory
 * engine's three parts and registry, composed by the core like any other engine.
 */
import { composeBroker } from '../compose.js'
import { positionedEnvelope } from '../envelope.js'
import type { BrokerEngine, EngineNode, EngineParts, HistoryStore } from '../parts.js'
import type { Broker, HistoryLimits } from '../types.js'
import { MemoryHistory } from './history-store.js'
import { MemoryPresence } from './presence-store.js'
import { MemoryRegistry } from './registry-store.js'
import { MemoryBus } from './transport.js'

/** The longest pause between two sweeps of expired history entries. */
const maxSweepInterval = 60_000

export function memoryBroker (): Broker {
  return composeBroker(memoryEngine())
}

/** The memory engine: the nodes that connect to one instance share its topics and stores. */
export function memoryEngine (): BrokerEngine {
  return clockedMemoryEngine(Date.now)
}

/** The memory engine on the clock `clock` (ms): tests move it to age history streams. */
export function clockedMemoryEngine (clock: () => number): BrokerEngine {
  const bus = new MemoryBus()
  const registry = new MemoryRegistry(bus)
  const presence = new MemoryPresence(bus)
  const connected = new Set<EngineNode>()
  // History channels only: one store shared by the nodes, created on first use.
  let streams: MemoryHistory | undefined
  let sweeper: NodeJS.Timeout | undefined

  function streamsFor (limits: HistoryLimits): MemoryHistory {
    const store = streams ??= new MemoryHistory(clock)
    if (sweeper === undefined) {
      sweeper = setInterval(() => store.sweep(limits.ttl), Math.min(limits.ttl, maxSweepInterval))
      sweeper.unref()
    }
    return store
  }

  // An append and its envelope in one synchronous step; the envelope reaches every node
  // subscribed to the channel, the publisher's too, in the order of the offsets.
  const history: HistoryStore = {
    async append (channel, append, limits) {
      const position = streamsFor(limits).append(channel, append.entry, limits)
      bus.publish([{ kind: 'channel', channel }], positionedEnvelope(append, position))
      return position
    },
    async read (channel, query, limits) {
      return streamsFor(limits).read(channel, query, limits)
    }
  }

  return {
    name: 'memory',
    async connect (node): Promise<EngineParts> {
      connected.add(node)
      return {
        transport: bus.transport(node),
        registry: registry.forNode(node.nodeId),
        history,
        presence: presence.forNode(node),
        async close () {
          bus.remove(node)
          connected.delete(node)
          if (connected.size === 0) {
            clearInterval(sweeper)
            sweeper = undefined
          }
        }
      }
    }
  }
}
