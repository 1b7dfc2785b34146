// @ts-check
// Case 5, cross-node fan-out through Redis: HOOK, NOT IMPLEMENTED YET.
//
// TODO(redis bench): two server processes of variant (a) registered with
// `broker: redisBroker({ url })`, subscribers on node 2, broadcasts issued on node 1;
// report deliveries/s and p50/p99 latency as burst.js / paced.js do (reuse lib/procs.js,
// lib/rpc.js and the load client). Skip with a clear reason when Redis is not reachable.
// The runner calls this once with the context and prints/records whatever non-null
// object it returns under results.cases.crossnode.

/**
 * @param {import('../run.js').Ctx} _ctx
 * @returns {Promise<null | Record<string, unknown>>}
 */
export async function crossnode (_ctx) {
  return null
}
