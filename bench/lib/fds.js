// @ts-check
// The file-descriptor limit the bench's processes run with. Every connection costs one
// descriptor in the load client and one in the server. Node raises its own soft
// RLIMIT_NOFILE to the hard limit at startup, and children inherit it, so what a shell
// started from here reports is what the children get; only the hard limit (`ulimit -Hn`,
// /etc/security/limits.conf) can make it larger.
import { execFileSync } from 'node:child_process'

let cached = NaN

/** @returns {number} the open-files limit of this process and its children (Infinity if unlimited) */
export function fdLimit () {
  if (Number.isNaN(cached)) {
    try {
      const out = execFileSync('/bin/sh', ['-c', 'ulimit -n']).toString().trim()
      cached = out === 'unlimited' ? Infinity : Number(out)
    } catch { cached = Infinity }
  }
  return cached
}
