/**
 * Which test files exercise which source module, for `npm run mutate` (scripts/mutate.mjs).
 * A mutant of a module is tested only by the files listed for it: its mirror test first, then
 * the integration tests that drive it through a real app. Stryker's per-test coverage then runs,
 * for each mutant, only those of these files that reached it.
 *
 * Every source module of plugin/, client/ and schemas/ is either in `mutationMap` or in
 * `unmapped` with its reason; test/package/mutation-map.test.ts reads the tree and fails on a
 * module in neither (a new file), on a path that no longer exists (a rename), and on a module
 * called types-only that has code.
 *
 * Left out of `mutationMap` on purpose: tests that need Redis or Chromium (slow, and they skip
 * without them), tests whose server runs in a forked process (slow-consumer: a mutant there is
 * only seen by the child), and type-only tests. The Redis broker's modules whose tests need a
 * live Redis are in `redisMutationMap` instead: `npm run mutate` runs them only when Redis
 * answers at 127.0.0.1:6379 (REDIS_URL), with CI=true so that a test that cannot reach Redis
 * fails (kills the mutant) instead of skipping.
 */

const app = ['test/connection/connection.test.ts', 'test/node/server.test.ts']

export const mutationMap = {
  // schemas/: the wire protocol
  'schemas/channel.ts': ['test/schemas/channel.test.ts'],
  'schemas/codec.ts': ['test/schemas/codec.test.ts', 'test/schemas/protocol.test.ts'],
  'schemas/wire.ts': ['test/schemas/codec.test.ts', 'test/schemas/server-frames.test.ts'],
  'schemas/server-frames.ts': ['test/schemas/server-frames.test.ts', 'test/schemas/protocol.test.ts'],
  'schemas/guards.ts': ['test/schemas/guards.test.ts', 'test/schemas/server-frames.test.ts'],
  'schemas/delta.ts': ['test/client/delta.test.ts', 'test/client/delta.client.test.ts'],
  'schemas/constants.ts': ['test/schemas/protocol.test.ts'],
  'schemas/protocol.ts': ['test/schemas/protocol.test.ts', 'test/schemas/codec.test.ts'],

  // client/: the browser client, driven against a real server
  'client/timer.ts': ['test/client/timer.test.ts', 'test/client/reconnect-jitter.test.ts'],
  'client/socket.ts': ['test/client/socket.test.ts', 'test/client/liveness.test.ts', 'test/client/client-frames.test.ts', 'test/client/push.test.ts', 'test/client/client.test.ts', 'test/client/reconnect.test.ts', 'test/client/reconnect-jitter.test.ts', 'test/client/history.test.ts'],
  'client/push.ts': ['test/client/push.test.ts', 'test/client/client-frames.test.ts', 'test/client/client.test.ts', 'test/client/reconnect.test.ts'],
  'client/channel.ts': ['test/client/channel.test.ts', 'test/client/client-frames.test.ts', 'test/client/client.test.ts', 'test/client/reconnect.test.ts', 'test/client/epoch-reset.test.ts', 'test/client/delta.client.test.ts'],
  'client/delta.ts': ['test/client/delta.test.ts', 'test/client/delta.client.test.ts'],
  'client/client.ts': ['test/client/client.test.ts', 'test/client/client-frames.test.ts', 'test/client/channel.test.ts', 'test/client/reconnect.test.ts', 'test/client/push.test.ts', 'test/client/socket.test.ts', 'test/client/liveness.test.ts', 'test/client/client-helpers.test.ts', 'test/client/presence.test.ts', 'test/client/epoch-reset.test.ts'],
  'client/errors.ts': ['test/client/client.test.ts', 'test/client/push.test.ts'],
  'client/index.ts': ['test/client/client.test.ts', 'test/client/socket.test.ts'],
  'client/liveness.ts': ['test/client/liveness.test.ts', 'test/client/history.test.ts', 'test/client/reconnect.test.ts'],
  'client/options.ts': ['test/client/client.test.ts', 'test/client/reconnect.test.ts'],
  'client/presence.ts': ['test/client/presence.test.ts', 'test/client/client-frames.test.ts'],

  // plugin/: the server
  'plugin/connection/dispatch.ts': ['test/connection/dispatch.test.ts', ...app, 'test/hardening/hostile-frames.test.ts'],
  'plugin/handlers/registry.ts': ['test/handlers/registry.test.ts', 'test/connection/dispatch.test.ts', 'test/connection/connection.test.ts'],
  'plugin/connection/inbox.ts': ['test/connection/inbox.test.ts', 'test/hardening/inbox.test.ts', 'test/connection/connection.test.ts'],
  'plugin/node/server.ts': ['test/plugin/register.test.ts', 'test/node/drain.test.ts', 'test/history/service.test.ts', 'test/presence/tracker.test.ts', 'test/node/channel-name.test.ts', 'test/outbound/volatile.test.ts', ...app],
  'plugin/broker/publish-failures.ts': ['test/broker/publish-failures.test.ts', 'test/node/server.test.ts'],
  'plugin/connection/rate-limit.ts': ['test/hardening/rate-limit.test.ts'],
  'plugin/options.ts': ['test/plugin/options.test.ts', 'test/plugin/register.test.ts', 'test/history/options.test.ts', 'test/history/service.test.ts'],
  'plugin/handlers/validate.ts': ['test/handlers/validate.test.ts', 'test/handlers/registry.test.ts', 'test/hardening/hostile-frames.test.ts'],
  'plugin/node/channel-map.ts': ['test/node/channel-map.test.ts', ...app],
  'plugin/outbound/frame-writer.ts': ['test/outbound/shared-deflate.test.ts', 'test/outbound/fanout.test.ts', 'test/outbound/frame-paths.test.ts', 'test/outbound/frame-writer.test.ts', 'test/outbound/compression.test.ts', 'test/node/server.test.ts', 'test/outbound/volatile.test.ts'],
  'plugin/outbound/gather.ts': ['test/outbound/gather.test.ts'],
  'plugin/outbound/socket-settings.ts': ['test/outbound/socket-settings.test.ts', 'test/outbound/compression.test.ts', 'test/outbound/gather.test.ts'],
  'plugin/node/heartbeat.ts': ['test/node/heartbeat.test.ts', 'test/hardening/heartbeat.test.ts'],
  'plugin/node/drain.ts': ['test/node/drain.test.ts', 'test/plugin/register.test.ts'],
  'plugin/node/session-id.ts': ['test/node/session-id.test.ts', 'test/connection/connection.test.ts'],
  'plugin/connection/membership.ts': ['test/connection/membership.test.ts', 'test/handlers/subscribed-event.test.ts', 'test/connection/connection.test.ts', 'test/hardening/auth.test.ts', 'test/connection/lifecycle.test.ts'],
  'plugin/connection/connection.ts': [...app, 'test/hardening/auth.test.ts', 'test/connection/lifecycle.test.ts', 'test/plugin/register.test.ts', 'test/hardening/rate-limit.test.ts', 'test/connection/rejoin.test.ts', 'test/hardening/heartbeat.test.ts', 'test/presence/tracker.test.ts', 'test/connection/readonly-set.test.ts', 'test/outbound/volatile.test.ts'],
  'plugin/connection/state.ts': ['test/connection/state.test.ts', 'test/connection/connection.test.ts'],
  'plugin/http/connection-cap.ts': ['test/http/connection-cap.test.ts', 'test/node/drain.test.ts'],
  'plugin/http/origins.ts': ['test/http/origins.test.ts', 'test/plugin/options.test.ts'],
  'plugin/outbound/slow-consumer.ts': ['test/outbound/slow-consumer.test.ts', 'test/connection/connection.test.ts', 'test/outbound/volatile.test.ts'],
  'plugin/handlers/report.ts': ['test/handlers/report.test.ts', 'test/connection/dispatch.test.ts'],
  'plugin/errors.ts': ['test/plugin/errors.test.ts', 'test/connection/connection.test.ts', 'test/node/server.test.ts'],
  // register.ts wires every option: each is tested where its feature is
  'plugin/register.ts': ['test/plugin/register.test.ts', 'test/node/drain.test.ts', 'test/node/server.test.ts', 'test/http/origins.test.ts',
    'test/http/connection-cap.test.ts', 'test/node/heartbeat.test.ts', 'test/hardening/heartbeat.test.ts', 'test/history/service.test.ts',
    'test/client/static.test.ts', 'test/http/upgrade-leftovers.test.ts', 'test/hardening/hostile-frames.test.ts'],
  'plugin/http/upgrades.ts': ['test/http/upgrades.test.ts', 'test/http/upgrade-leftovers.test.ts', 'test/plugin/register.test.ts', 'test/http/connection-cap.test.ts',
    'test/http/origins.test.ts'],
  'plugin/http/static.ts': ['test/client/static.test.ts'],
  'plugin/index.ts': ['test/plugin/register.test.ts', 'test/node/server.test.ts'],
  'plugin/broker/compose.ts': ['test/broker/compose.test.ts', 'test/node/server.test.ts', 'test/history/service.test.ts', 'test/presence/tracker.test.ts'],
  'plugin/broker/envelope.ts': ['test/broker/envelope.test.ts', 'test/history/service.test.ts', 'test/observability/tracing.test.ts'],
  'plugin/broker/recent-ids.ts': ['test/broker/recent-ids.test.ts'],
  'plugin/broker/per-turn.ts': ['test/broker/per-turn.test.ts'],
  'plugin/broker/registry.ts': ['test/broker/registry.test.ts', 'test/node/server.test.ts'],
  'plugin/broker/presence-sync.ts': ['test/broker/presence-sync.test.ts', 'test/broker/memory/presence-store.test.ts', 'test/presence/tracker.test.ts'],
  'plugin/broker/memory/transport.ts': ['test/broker/memory/transport.test.ts', 'test/node/server.test.ts'],
  'plugin/broker/memory/registry-store.ts': ['test/broker/registry.test.ts', 'test/node/server.test.ts'],
  'plugin/broker/memory/broker.ts': ['test/node/server.test.ts', 'test/history/service.test.ts', 'test/presence/tracker.test.ts'],
  'plugin/http/upgrade-leftovers.ts': ['test/http/upgrade-leftovers.test.ts'],
  'plugin/contract/memory-socket.ts': ['test/contract/memory-socket.test.ts', 'test/contract/inject.test.ts'],
  'plugin/contract/inject.ts': ['test/contract/inject.test.ts'],
  'plugin/contract/contract.ts': ['test/contract/contract.test.ts', 'test/contract/emits.test.ts', 'test/contract/inject.test.ts', 'test/contract/asyncapi-cache.test.ts'],
  'plugin/contract/emits.ts': ['test/contract/emits.test.ts', 'test/contract/asyncapi.test.ts', 'test/contract/asyncapi-cache.test.ts'],
  'plugin/contract/json-schema.ts': ['test/contract/json-schema.test.ts', 'test/contract/asyncapi.test.ts', 'test/contract/asyncapi-cache.test.ts'],
  'plugin/contract/asyncapi.ts': ['test/contract/asyncapi-document.test.ts', 'test/contract/asyncapi.test.ts', 'test/contract/asyncapi-cache.test.ts'],
  'plugin/contract/asyncapi-protocol.ts': ['test/contract/asyncapi-protocol.test.ts', 'test/contract/asyncapi.test.ts'],

  // history and presence with the memory broker, and the broker interfaces
  'plugin/history/service.ts': ['test/history/service.test.ts', 'test/history/service-edges.test.ts', 'test/history/stream-restart.test.ts', 'test/connection/rejoin.test.ts', 'test/client/history.test.ts', 'test/history/delta.test.ts'],
  'plugin/broker/memory/history-store.ts': ['test/broker/memory/history-store.test.ts', 'test/history/service.test.ts', 'test/history/idle-state.test.ts'],
  'plugin/presence/tracker.ts': ['test/presence/tracker.test.ts', 'test/presence/tracker-broker.test.ts', 'test/presence/tracker-joins.test.ts', 'test/client/presence.test.ts'],
  'plugin/presence/diff-windows.ts': ['test/presence/diff-windows.test.ts', 'test/presence/tracker.test.ts'],
  'plugin/requests/pending.ts': ['test/requests/pending.test.ts', 'test/requests/ask.test.ts'],
  'plugin/requests/relay.ts': ['test/requests/relay.test.ts', 'test/requests/ask.test.ts'],
  'client/requests.ts': ['test/requests/ask.test.ts'],
  'plugin/users/directory.ts': ['test/users/directory.test.ts', 'test/users/users.test.ts'],
  'plugin/users/identify.ts': ['test/users/users.test.ts'],
  'plugin/presence/mirror.ts': ['test/presence/mirror.test.ts', 'test/presence/tracker.test.ts'],
  'plugin/broker/memory/presence-store.ts': ['test/broker/memory/presence-store.test.ts', 'test/presence/tracker.test.ts', 'test/client/presence.test.ts'],
  'plugin/broker/types.ts': ['test/history/options.test.ts', 'test/broker/memory/history-store.test.ts', 'test/presence/tracker.test.ts', 'test/presence/tracker-broker.test.ts'],

  // the Redis broker's pure parts, whose tests need no Redis
  'plugin/broker/redis/slot.ts': ['test/broker/redis/slot.test.ts', 'test/broker/redis/keys.test.ts'],
  'plugin/broker/redis/keys.ts': ['test/broker/redis/keys.test.ts'],
  'plugin/broker/redis/health.ts': ['test/broker/redis/health.test.ts', 'test/observability/events.test.ts'],

  // the NATS broker's pure parts, whose tests need no NATS
  'plugin/broker/nats/names.ts': ['test/broker/nats/names.test.ts'],
  'plugin/broker/nats/clock.ts': ['test/broker/nats/clock.test.ts'],
  'plugin/broker/nats/history-order.ts': ['test/broker/nats/history-order.test.ts'],
  'plugin/broker/nats/health.ts': ['test/broker/nats/health.test.ts', 'test/observability/events.test.ts'],

  // observability: the events and their subscribers
  'plugin/observability/events.ts': ['test/observability/events.test.ts'],
  'plugin/observability/observe.ts': ['test/observability/events.test.ts', 'test/observability/metrics.test.ts', 'test/observability/tracing.test.ts', 'test/connection/connection.test.ts'],
  'plugin/observability/message-log.ts': ['test/connection/connection.test.ts'],
  'plugin/observability/metrics.ts': ['test/observability/metrics.test.ts'],
  'plugin/observability/tracing.ts': ['test/observability/tracing.test.ts'],

  // stats, nodes and the admin page (the Redis and browser suites of test/admin/ are left out: too slow per mutant)
  'plugin/node/stats.ts': ['test/node/stats-keeper.test.ts', 'test/admin/stats.test.ts', 'test/admin/routes.test.ts'],
  'plugin/node/notices.ts': ['test/admin/stats.test.ts'],
  'plugin/admin/options.ts': ['test/admin/routes.test.ts'],
  'plugin/admin/routes.ts': ['test/admin/routes.test.ts'],
  'plugin/admin/page.ts': ['test/admin/routes.test.ts']
}

/**
 * The Redis broker's modules whose tests need a live Redis (127.0.0.1:6379, or REDIS_URL) and,
 * for the cluster half of test/redis/targets.ts, REDIS_CLUSTER_URL (scripts/mutate.mjs starts a
 * cluster of its own when it is unset). The fast focused tests of test/broker/redis/, and of
 * test/redis/ only cluster.test.ts (the sharded pub/sub path, about 8 s): its fault suites kill,
 * pause and restart servers, far too slow per mutant.
 */
const cluster = 'test/redis/cluster.test.ts'
export const redisMutationMap = {
  'plugin/broker/redis/clock.ts': ['test/broker/redis/clock.test.ts', 'test/broker/redis/scripts.test.ts'],
  'plugin/broker/redis/pubsub.ts': ['test/broker/redis/transport.test.ts', 'test/broker/redis/presence-store.test.ts', 'test/broker/redis/broker.test.ts', cluster],
  'plugin/broker/redis/scripts.ts': ['test/broker/redis/scripts.test.ts'],
  'plugin/broker/redis/transport.ts': ['test/broker/redis/transport.test.ts'],
  'plugin/broker/redis/presence-store.ts': ['test/broker/redis/presence-store.test.ts'],
  'plugin/broker/redis/history-store.ts': ['test/broker/redis/history-store-direct.test.ts'],
  'plugin/broker/redis/registry-store.ts': ['test/broker/redis/registry-store.test.ts'],
  'plugin/broker/redis/link.ts': ['test/broker/redis/link-blocked.test.ts', 'test/broker/redis/link-unix.test.ts'],
  'plugin/broker/redis/client.ts': ['test/broker/redis/client.test.ts', 'test/broker/redis/link-blocked.test.ts', 'test/broker/redis/transport.test.ts', 'test/broker/redis/broker.test.ts'],
  'plugin/broker/redis/engine.ts': ['test/broker/redis/engine.test.ts', 'test/broker/redis/engine-recovery.test.ts', 'test/broker/redis/engine-cluster.test.ts', 'test/broker/redis/broker.test.ts'],
  'plugin/broker/redis/broker.ts': ['test/broker/redis/engine.test.ts', 'test/broker/redis/engine-cluster.test.ts', 'test/broker/redis/broker.test.ts']
}

/** The reason of a module that holds only types and re-exports (the map's test checks it has no code). */
export const typesOnly = 'types and re-exports only: nothing to mutate'
const needsNats = 'its tests need a live NATS with JetStream (test/broker/nats/): too slow to run per mutant, and they skip without NATS'

/** Source modules left out of `npm run mutate` on purpose, each with its reason. */
export const unmapped = {
  'plugin/types.ts': typesOnly,
  'plugin/channel-steps.ts': typesOnly,
  'plugin/broker/parts.ts': typesOnly,
  'schemas/events.ts': typesOnly,
  'schemas/index.ts': typesOnly,

  'plugin/broker/nats/broker.ts': needsNats,
  'plugin/broker/nats/client.ts': needsNats,
  'plugin/broker/nats/engine.ts': needsNats,
  'plugin/broker/nats/history-store.ts': needsNats,
  'plugin/broker/nats/presence-store.ts': needsNats,
  'plugin/broker/nats/registry-store.ts': needsNats,
  'plugin/broker/nats/scan.ts': needsNats,
  'plugin/broker/nats/transport.ts': needsNats,

  'plugin/admin/page-script.ts': 'the admin page\'s script runs in a browser: its test (test/admin/browser.test.ts) needs Chromium and Redis, too slow per mutant'
}
