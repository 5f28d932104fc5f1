/** The statistics a behaviour can compare against: a percentile of the profile's devices in the window. */
export const FLEET_STATISTICS = ['p50', 'p90', 'p95', 'p99'] as const;
export type FleetStatistic = (typeof FLEET_STATISTICS)[number];

/**
 * Nearest-rank percentile: the smallest value such that at least p % of the values are at or
 * below it. NaN for no values. Sorts a copy (Float64Array: numeric order, fast for 100,000 values).
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

export function statisticPercent(statistic: FleetStatistic): number {
  return Number(statistic.slice(1));
}
