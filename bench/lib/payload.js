// @ts-check
// The broadcast payload: { seq, t, pad } sized so that JSON.stringify(data) is about
// `size` bytes. `t` is the send time on the shared clock (see clock.js) for latency cases.

/**
 * @param {number} seq
 * @param {number} t
 * @param {number} size target length of JSON.stringify(data) in bytes
 */
export function makePayload (seq, t, size) {
  // {"seq":123,"t":123456789.123,"pad":""} is ~40 bytes; pad fills the rest.
  const base = JSON.stringify({ seq, t, pad: '' }).length
  return { seq, t, pad: 'x'.repeat(Math.max(0, size - base)) }
}
