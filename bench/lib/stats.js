// @ts-check
// Small order statistics used by the cases and the report.

/** @param {number[]} values */
export function median (values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const mid = v.length >> 1
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/**
 * Nearest-rank percentile of an already sorted array.
 * @param {ArrayLike<number>} sorted
 * @param {number} p 0..100
 */
export function percentile (sorted, p) {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

/**
 * Median of each numeric field over a list of per-round records.
 * @param {Array<Record<string, any>>} rounds
 * @returns {Record<string, number>}
 */
export function medianOfRounds (rounds) {
  /** @type {Record<string, number>} */
  const out = {}
  if (rounds.length === 0) return out
  for (const key of Object.keys(rounds[0])) {
    if (typeof rounds[0][key] === 'number') out[key] = median(rounds.map((r) => r[key]))
  }
  return out
}
