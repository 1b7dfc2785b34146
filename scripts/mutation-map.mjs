/**
 * Which test files exercise which source module, for `npm run mutate` (scripts/mutate.mjs).
 * A mutant of a module is tested only by the files listed for it: its mirror test first, then
 * the integration tests that drive it through a real app. Stryker's per-test coverage then runs,
 * for each mutant, only those of these files that reached it.
 *
 * Left out on purpose: tests that need Redis or Chromium (slow, and they skip without them),
 * tests whose server runs in a forked process (slow-consumer: a mutant there is only seen by
 * the child), and type-only tests. Modules that hold only types (plugin/types.ts,
 * schemas/events.ts, plugin/broker/types.ts) have no mutants worth the run.
 */

const app = ['test/plugin/connection.test.ts', 'test/plugin/server.test.ts']

export const mutationMap = {
  // schemas/: the wire protocol
  'schemas/channel.ts': ['test/schemas/channel.test.ts'],
  'schemas/codec.ts': ['test/schemas/codec.test.ts', 'test/schemas/protocol.test.ts'],
  'schemas/wire.ts': ['test/schemas/codec.test.ts', 'test/schemas/server-frames.test.ts'],
  'schemas/server-frames.ts': ['test/schemas/server-frames.test.ts', 'test/schemas/protocol.test.ts'],
  'schemas/guards.ts': ['test/schemas/guards.test.ts', 'test/schemas/server-frames.test.ts'],
  'schemas/constants.ts': ['test/schemas/protocol.test.ts'],
  'schemas/protocol.ts': ['test/schemas/protocol.test.ts', 'test/schemas/codec.test.ts'],

  // client/: the browser client, driven against a real server
  'client/timer.ts': ['test/client/timer.test.ts'],
  'client/socket.ts': ['test/client/socket.test.ts', 'test/client/liveness.test.ts', 'test/client/client-frames.test.ts', 'test/client/push.test.ts', 'test/client/client.test.ts', 'test/client/reconnect.test.ts', 'test/client/history.test.ts'],
  'client/push.ts': ['test/client/push.test.ts', 'test/client/client-frames.test.ts', 'test/client/client.test.ts', 'test/client/reconnect.test.ts'],
  'client/channel.ts': ['test/client/channel.test.ts', 'test/client/client-frames.test.ts', 'test/client/client.test.ts', 'test/client/reconnect.test.ts'],
  'client/client.ts': ['test/client/client.test.ts', 'test/client/client-frames.test.ts', 'test/client/channel.test.ts', 'test/client/reconnect.test.ts',
    'test/client/push.test.ts', 'test/client/socket.test.ts', 'test/client/liveness.test.ts', 'test/client/client-helpers.test.ts', 'test/client/presence.test.ts'],
  'client/client-helpers.ts': ['test/client/client-helpers.test.ts', 'test/client/client.test.ts', 'test/client/presence.test.ts'],
  'client/errors.ts': ['test/client/client.test.ts', 'test/client/push.test.ts'],
  'client/index.ts': ['test/client/client.test.ts', 'test/client/socket.test.ts'],
  'client/liveness.ts': ['test/client/liveness.test.ts', 'test/client/history.test.ts', 'test/client/reconnect.test.ts'],
  'client/options.ts': ['test/client/client.test.ts', 'test/client/reconnect.test.ts'],
  'client/presence.ts': ['test/client/presence.test.ts', 'test/client/client-frames.test.ts'],

  // plugin/: the server
  'plugin/dispatch.ts': ['test/plugin/dispatch.test.ts', ...app, 'test/hardening/hostile-frames.test.ts'],
  'plugin/handlers.ts': ['test/plugin/handlers.test.ts', 'test/plugin/dispatch.test.ts', 'test/plugin/connection.test.ts'],
  'plugin/inbox.ts': ['test/plugin/inbox.test.ts', 'test/hardening/inbox.test.ts', 'test/plugin/connection.test.ts'],
  'plugin/server.ts': ['test/plugin/server.test.ts', 'test/plugin/register.test.ts', 'test/plugin/connection.test.ts', 'test/history/service.test.ts', 'test/presence/tracker.test.ts'],
  'plugin/publish-failures.ts': ['test/plugin/publish-failures.test.ts', 'test/plugin/server.test.ts'],
  'plugin/rate-limit.ts': ['test/hardening/rate-limit.test.ts'],
  'plugin/options.ts': ['test/plugin/options.test.ts', 'test/plugin/register.test.ts'],
  'plugin/validate.ts': ['test/plugin/validate.test.ts', 'test/plugin/handlers.test.ts', 'test/hardening/hostile-frames.test.ts'],
  'plugin/channels.ts': ['test/plugin/channels.test.ts', ...app],
  'plugin/channel-name.ts': ['test/plugin/channel-name.test.ts', ...app],
  'plugin/fanout.ts': ['test/plugin/fanout.test.ts', 'test/plugin/server.test.ts'],
  'plugin/frame-writer.ts': ['test/plugin/frame-writer.test.ts', 'test/plugin/fanout.test.ts'],
  'plugin/heartbeat.ts': ['test/plugin/heartbeat.test.ts', 'test/hardening/heartbeat.test.ts'],
  'plugin/membership.ts': ['test/plugin/membership.test.ts', 'test/plugin/connection.test.ts', 'test/hardening/auth.test.ts'],
  'plugin/connection.ts': [...app, 'test/hardening/auth.test.ts', 'test/plugin/lifecycle.test.ts', 'test/plugin/register.test.ts',
    'test/hardening/rate-limit.test.ts', 'test/plugin/rejoin.test.ts', 'test/hardening/heartbeat.test.ts', 'test/presence/tracker.test.ts'],
  'plugin/connection-state.ts': ['test/plugin/connection-state.test.ts', 'test/plugin/connection.test.ts'],
  'plugin/connection-cap.ts': ['test/plugin/connection-cap.test.ts'],
  'plugin/origins.ts': ['test/plugin/origins.test.ts', 'test/plugin/options.test.ts'],
  'plugin/lifecycle.ts': ['test/plugin/lifecycle.test.ts', 'test/plugin/connection.test.ts'],
  'plugin/outbound.ts': ['test/plugin/outbound.test.ts', 'test/plugin/connection.test.ts'],
  'plugin/report.ts': ['test/plugin/report.test.ts', 'test/plugin/dispatch.test.ts'],
  'plugin/readonly-set.ts': ['test/plugin/readonly-set.test.ts'],
  'plugin/errors.ts': ['test/plugin/errors.test.ts', 'test/plugin/connection.test.ts', 'test/plugin/server.test.ts'],
  // register.ts wires every option: each is tested where its feature is
  'plugin/register.ts': ['test/plugin/register.test.ts', 'test/plugin/server.test.ts', 'test/plugin/origins.test.ts',
    'test/plugin/connection-cap.test.ts', 'test/plugin/heartbeat.test.ts', 'test/hardening/heartbeat.test.ts', 'test/history/service.test.ts',
    'test/client/static.test.ts', 'test/plugin/upgrade-leftovers.test.ts', 'test/hardening/hostile-frames.test.ts'],
  'plugin/upgrades.ts': ['test/plugin/upgrade-leftovers.test.ts', 'test/plugin/register.test.ts', 'test/plugin/connection-cap.test.ts',
    'test/plugin/origins.test.ts'],
  'plugin/static.ts': ['test/client/static.test.ts'],
  'plugin/index.ts': ['test/plugin/register.test.ts', 'test/plugin/server.test.ts'],
  'plugin/broker/memory.ts': ['test/plugin/server.test.ts', 'test/history/service.test.ts', 'test/presence/tracker.test.ts'],
  'plugin/positive-integer.ts': ['test/plugin/options.test.ts'],
  'plugin/upgrade-leftovers.ts': ['test/plugin/upgrade-leftovers.test.ts'],
  'plugin/memory-socket.ts': ['test/plugin/memory-socket.test.ts', 'test/plugin/inject.test.ts'],
  'plugin/inject.ts': ['test/plugin/inject.test.ts'],
  'plugin/contract.ts': ['test/plugin/contract.test.ts', 'test/plugin/emits.test.ts', 'test/plugin/inject.test.ts'],
  'plugin/emits.ts': ['test/plugin/emits.test.ts', 'test/plugin/asyncapi.test.ts'],
  'plugin/json-schema.ts': ['test/plugin/json-schema.test.ts', 'test/plugin/asyncapi.test.ts'],
  'plugin/asyncapi.ts': ['test/plugin/asyncapi-document.test.ts', 'test/plugin/asyncapi.test.ts'],
  'plugin/asyncapi-protocol.ts': ['test/plugin/asyncapi-protocol.test.ts', 'test/plugin/asyncapi.test.ts'],

  // history and presence (memory broker; the Redis ones need Redis and are not mapped)
  'plugin/history/service.ts': ['test/history/service.test.ts', 'test/history/service-edges.test.ts', 'test/plugin/rejoin.test.ts', 'test/client/history.test.ts'],
  'plugin/history/options.ts': ['test/history/options.test.ts', 'test/history/service.test.ts'],
  'plugin/history/frame.ts': ['test/broker/memory-history.test.ts', 'test/history/service.test.ts'],
  'plugin/broker/memory-history.ts': ['test/broker/memory-history.test.ts', 'test/history/service.test.ts'],
  'plugin/presence/tracker.ts': ['test/presence/tracker.test.ts', 'test/presence/tracker-broker.test.ts', 'test/presence/tracker-joins.test.ts', 'test/client/presence.test.ts'],
  'plugin/presence/mirror.ts': ['test/presence/mirror.test.ts', 'test/presence/tracker.test.ts'],
  'plugin/broker/memory-presence.ts': ['test/broker/memory-presence.test.ts', 'test/presence/tracker.test.ts', 'test/client/presence.test.ts']
}
