// @ts-check
// One clock for every process of the bench.
//
// process.hrtime reads CLOCK_MONOTONIC, which on Linux is system-wide: a timestamp taken in
// the server process can be subtracted from one taken in the client process. Date.now() has
// only millisecond resolution and can jump (NTP); performance.timeOrigin is per process.
// Microsecond resolution expressed in milliseconds keeps the number well inside 2^53.

/** @returns {number} milliseconds on the shared monotonic clock, microsecond resolution */
export function now () {
  return Number(process.hrtime.bigint() / 1000n) / 1000
}
