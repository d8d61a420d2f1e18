/** Small statistics helpers for the benchmark report. */

/**
 * Returns the value at quantile `q` (0–1) of ascending values, by the
 * nearest-rank method, or NaN when there are none.
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil(q * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number
}

/** Returns the median, the mean of the two middle values for an even count; NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  if (sorted.length % 2 === 1) return sorted[middle] as number
  return ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

export function min(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.min(...values)
}

export function max(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.max(...values)
}
