/**
 * Summary statistics of one numeric column, withheld when they would describe a small group.
 *
 * - Withheld when fewer than T values (or T persons) are present, and also when between 1 and T-1
 *   records (or persons) lack a value: the count of missing values is a small count like any other.
 * - min and max are the most identifying numbers (the one 103-year-old, the one extreme lab value), so the
 *   true extremes are never shown. `min` is the smallest value at or below which at least T records of at
 *   least T persons lie, and never above the 25th percentile; `max` mirrors it from the top, never below
 *   the 75th. So each reported extreme is shared by a group of at least T, or is no more revealing than a
 *   quartile already is.
 * - Quartiles interpolate linearly between ranks (as percentile_cont does); stddev is the sample one.
 */
export interface NumericValue {
  value: number;
  subject: string;
}

export interface NumericSummary {
  count: number;
  mean: number;
  stddev: number;
  min: number;
  p25: number;
  median: number;
  p75: number;
  max: number;
}

/** `values` holds the present values; `missing` the rows without one and their persons. */
export function summarizeNumbers(values: readonly NumericValue[], missing: { rows: number; subjects: number }, threshold: number): NumericSummary | undefined {
  const subjects = new Set(values.map((v) => v.subject)).size;
  if (values.length < threshold || subjects < threshold) return undefined;
  if (missing.rows > 0 && (missing.rows < threshold || missing.subjects < threshold)) return undefined;

  const sorted = [...values].sort((a, b) => a.value - b.value);
  const xs = sorted.map((v) => v.value);
  const n = xs.length;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const variance = n > 1 ? xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  const p25 = quantile(xs, 0.25);
  const p75 = quantile(xs, 0.75);
  return {
    count: n,
    mean,
    stddev: Math.sqrt(variance),
    min: Math.min(protectedExtreme(sorted, threshold), p25),
    p25,
    median: quantile(xs, 0.5),
    p75,
    max: Math.max(protectedExtreme([...sorted].reverse(), threshold), p75),
  };
}

function quantile(sorted: readonly number[], p: number): number {
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Walking from one end, the first value by which at least T records of at least T persons have been passed. */
function protectedExtreme(ordered: readonly NumericValue[], threshold: number): number {
  const seen = new Set<string>();
  for (let i = 0; i < ordered.length; i++) {
    seen.add(ordered[i]!.subject);
    if (i + 1 >= threshold && seen.size >= threshold) return ordered[i]!.value;
  }
  return ordered[ordered.length - 1]!.value;
}
