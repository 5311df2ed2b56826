/**
 * Summary statistics for repeated bench rounds: median, min, max, coefficient
 * of variation, and ratios computed round by round (so drift of the machine
 * between rounds cancels, as in interleaved A/B benchmarking).
 */

/** Summary of a set of samples; every field is null when there are no samples. */
export interface Summary {
  n: number;
  median: number | null;
  min: number | null;
  max: number | null;
  mean: number | null;
  /** Coefficient of variation: sample standard deviation / mean (null for n < 2 or mean 0). */
  cv: number | null;
}

/** Median of finite values (mean of the middle two for even counts); null when empty. */
export function median(values: readonly number[]): number | null {
  const v = values
    .filter(Number.isFinite)
    .slice()
    .sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Arithmetic mean; null when empty. */
export function mean(values: readonly number[]): number | null {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return null;
  return v.reduce((s, x) => s + x, 0) / v.length;
}

/** Sample standard deviation (n - 1); null for fewer than two values. */
export function stddev(values: readonly number[]): number | null {
  const v = values.filter(Number.isFinite);
  if (v.length < 2) return null;
  const m = v.reduce((s, x) => s + x, 0) / v.length;
  return Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1));
}

/** Coefficient of variation (stddev / |mean|); null when undefined. */
export function cv(values: readonly number[]): number | null {
  const s = stddev(values);
  const m = mean(values);
  if (s === null || m === null || m === 0) return null;
  return s / Math.abs(m);
}

/** All summary statistics of `values` (non-finite values are ignored). */
export function summarize(values: readonly (number | null | undefined)[]): Summary {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return {
    n: v.length,
    median: median(v),
    min: v.length ? Math.min(...v) : null,
    max: v.length ? Math.max(...v) : null,
    mean: mean(v),
    cv: cv(v),
  };
}

/**
 * Ratios `value[r] / base[r]` for the rounds where both exist and base is
 * non-zero. Both arrays are indexed by round; null/undefined marks a missing round.
 */
export function roundRatios(values: readonly (number | null | undefined)[], base: readonly (number | null | undefined)[]): number[] {
  const out: number[] = [];
  const n = Math.min(values.length, base.length);
  for (let r = 0; r < n; r++) {
    const v = values[r];
    const b = base[r];
    if (typeof v === 'number' && typeof b === 'number' && Number.isFinite(v) && Number.isFinite(b) && b !== 0) out.push(v / b);
  }
  return out;
}
