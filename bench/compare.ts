/**
 * `vxtap bench compare OLD NEW`: regression tracking between two bench results,
 * in the manner of benchstat. For every mode present in both results and every
 * metric of the metric table (bench/result.ts), the per-round values of each
 * side are compared: medians, the change in percent, the CV over rounds of each
 * side, a two-sided Mann-Whitney U test on the rounds, the p-values of all rows
 * corrected together (Holm-Bonferroni: one comparison is one family of tests,
 * and CI fails on ANY `worse`, so the family-wise error is what must stay at
 * alpha) and a verdict per row: `better`, `worse`, `same` or `unknown`.
 *
 * Two per-metric thresholds turn significance into a decision (see
 * {@link MetricThreshold}): a significant change below `minEffectPct` is
 * `same` (the machine's A/A noise, not a regression), and a non-significant
 * one is `same` only if the test could have seen a change of `detectPct`
 * (minimum detectable effect at the observed noise and rounds); otherwise it is
 * `unknown`: too noisy or too few rounds to say. With few rounds the exact test
 * cannot reach the level at all (3 vs 3 rounds: the smallest possible
 * two-sided p is 2 / C(6,3) = 0.1), and the output says so instead of
 * pretending. Figures whose CV exceeds `cvMax` are flagged `noisy`.
 * Thresholds default to {@link defaultThreshold} and are meant to be derived
 * from A/A runs ({@link calibrateThresholds}).
 *
 * Disturbed rounds (bench/disturbance.ts: steal, another process, a throughput
 * dip) are listed per side and marked on the rows they feed; they stay in the
 * test, flagged, never dropped.
 *
 * Pure code: the CLI (src/cli/bench-compare.ts) reads and validates the files
 * and passes parsed results in; everything here is a function of its arguments.
 * Markdown and JSON are renderers over one {@link Comparison} object.
 */
import { disturbedFor, disturbedSamples, describeDisturbed, type DisturbedSample } from './disturbance.js';
import { metricDefs, perRoundValues, type BenchResult, type MetricDef } from './result.js';
import { cv, median } from './stats.js';

/** Identifier and version of the `--json` output. */
export const COMPARE_SCHEMA = 'vxtap-bench-compare';
export const COMPARE_SCHEMA_VERSION = 2;

/** Defaults of the comparison (one place). */
export const COMPARE_DEFAULTS = {
  /** Family-wise significance level of the two-sided Mann-Whitney tests of one comparison. */
  alpha: 0.05,
  /** Holm-Bonferroni over all rows (bench/README.md says why Holm and not Benjamini-Hochberg). */
  correction: 'holm' as 'holm' | 'none',
  /** Rounds per side we recommend: 4 + 4 can reach p < 0.05 only with no overlap at all. */
  recommendedRounds: 5,
};

/** Largest total sample count (n1 + n2) for which the exact distribution is computed. */
export const EXACT_MAX_N = 50;

/** Result of a two-sided Mann-Whitney U test. */
export interface MannWhitney {
  n1: number;
  n2: number;
  /** U of the first sample: pairs (x, y) with x > y, ties counted 1/2. */
  u: number;
  /** Two-sided p-value. */
  p: number;
  /** exact: the permutation distribution of the rank sum (conditional on ties); normal: normal approximation with tie and continuity correction. */
  method: 'exact' | 'normal';
  /** Whether the pooled sample has ties. */
  ties: boolean;
  /** +1 when the second sample tends to be larger, -1 when smaller, 0 when neither. */
  direction: -1 | 0 | 1;
}

/** Binomial coefficient C(n, k) as a double (exact up to 2^53). */
export function binomial(n: number, k: number): number {
  if (k < 0 || k > n) return 0;
  k = Math.min(k, n - k);
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c < 2 ** 53 ? Math.round(c) : c;
}

/** Smallest two-sided p-value the test can produce for sample sizes n1, n2 (no ties): 2 / C(n1 + n2, n1). */
export function smallestPossibleP(n1: number, n2: number): number {
  if (n1 < 1 || n2 < 1) return 1;
  return Math.min(1, 2 / binomial(n1 + n2, n1));
}

/** Fewest rounds per side (equal sizes) with which a fully separated pair reaches p <= alpha. */
export function minRoundsFor(alpha: number): number {
  let n = 1;
  while (smallestPossibleP(n, n) > alpha && n < 1000) n++;
  return n;
}

/**
 * Complementary error function (Numerical Recipes `erfcc`, Chebyshev fit,
 * fractional error below 1.2e-7 everywhere): enough for p-values.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Midranks (1-based, ties get the mean of their ranks) of `values`, and the tie group sizes. */
export function midranks(values: readonly number[]): { ranks: number[]; tieSizes: number[] } {
  const idx = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const ranks = new Array<number>(values.length);
  const tieSizes: number[] = [];
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1].v === idx[i].v) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k].i] = r;
    if (j > i) tieSizes.push(j - i + 1);
    i = j + 1;
  }
  return { ranks, tieSizes };
}

/**
 * Two-sided Mann-Whitney U test of `x` against `y` (non-finite values are
 * ignored). For n1 + n2 <= {@link EXACT_MAX_N} the p-value is exact: the rank
 * sum of `x` over all C(n1 + n2, n1) equally likely assignments of the pooled
 * midranks, counted by dynamic programming, so ties are handled exactly
 * (conditional on the tie pattern, as benchstat does). Larger samples use the
 * normal approximation with tie correction and continuity correction (scipy's
 * `mannwhitneyu(method="asymptotic")`). p = min(1, 2 * smaller tail).
 * Throws a RangeError when either sample is empty.
 */
export function mannWhitney(xIn: readonly number[], yIn: readonly number[]): MannWhitney {
  const x = xIn.filter(Number.isFinite);
  const y = yIn.filter(Number.isFinite);
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) throw new RangeError(`mannWhitney needs two non-empty samples (got n1=${n1}, n2=${n2})`);
  const n = n1 + n2;
  const { ranks, tieSizes } = midranks([...x, ...y]);
  const r1 = ranks.slice(0, n1).reduce((s, r) => s + r, 0);
  const u = r1 - (n1 * (n1 + 1)) / 2;
  const mu = (n1 * n2) / 2;
  const direction: -1 | 0 | 1 = u < mu ? 1 : u > mu ? -1 : 0;
  const ties = tieSizes.length > 0;
  if (n <= EXACT_MAX_N) {
    // Doubled midranks are integers; count size-n1 subsets by their sum.
    const r2 = ranks.map((r) => Math.round(r * 2));
    const maxSum = r2.reduce((s, r) => s + r, 0);
    const width = maxSum + 1;
    const dp = new Float64Array((n1 + 1) * width);
    dp[0] = 1;
    let seen = 0;
    for (const r of r2) {
      seen += r;
      for (let k = Math.min(n1, n); k >= 1; k--) {
        const row = k * width;
        const prev = (k - 1) * width;
        for (let s = seen; s >= r; s--) dp[row + s] += dp[prev + s - r];
      }
    }
    const observed = Math.round(r1 * 2);
    const total = binomial(n, n1);
    let le = 0;
    let ge = 0;
    for (let s = 0; s <= maxSum; s++) {
      const c = dp[n1 * width + s];
      if (s <= observed) le += c;
      if (s >= observed) ge += c;
    }
    return { n1, n2, u, p: Math.min(1, (2 * Math.min(le, ge)) / total), method: 'exact', ties, direction };
  }
  const tieTerm = tieSizes.reduce((s, t) => s + t ** 3 - t, 0);
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (variance <= 0) return { n1, n2, u, p: 1, method: 'normal', ties, direction };
  const z = Math.max(0, Math.abs(u - mu) - 0.5) / Math.sqrt(variance);
  return { n1, n2, u, p: Math.min(1, erfc(z / Math.SQRT2)), method: 'normal', ties, direction };
}

/**
 * Inverse of the standard normal CDF (Acklam's rational approximation,
 * relative error below 1.2e-9 on (0, 1)). Used for the minimum detectable
 * effect and the rounds a stopping rule asks for, never for p-values.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile needs 0 < p < 1 (got ${p})`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  let x: number;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - lo) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  return x;
}

/**
 * Holm's step-down adjusted p-values (Holm 1979, "A simple sequentially
 * rejective multiple test procedure", Scand. J. Statist. 6:65-70): sort the m
 * p-values ascending, p~(k) = max over j <= k of min(1, (m - j) p(j)) (0-based
 * k). Rejecting every hypothesis with p~ <= alpha keeps the family-wise error
 * rate (the chance of at least one false `better`/`worse` in the whole table)
 * at alpha under any dependence between the tests. Nulls stay null and are
 * not counted in m.
 */
export function holmAdjust(ps: readonly (number | null)[]): (number | null)[] {
  const idx = ps
    .map((p, i) => ({ p, i }))
    .filter((x): x is { p: number; i: number } => x.p !== null)
    .sort((a, b) => a.p - b.p || a.i - b.i);
  const m = idx.length;
  const out: (number | null)[] = ps.map(() => null);
  let running = 0;
  for (const [k, { p, i }] of idx.entries()) {
    running = Math.max(running, Math.min(1, (m - k) * p));
    out[i] = running;
  }
  return out;
}

// ---------------------------------------------------------------- thresholds

/** Identifier and version of a thresholds file (`--thresholds`, written by `--calibrate`). */
export const THRESHOLDS_SCHEMA = 'vxtap-bench-thresholds';
export const THRESHOLDS_SCHEMA_VERSION = 1;

/** How a metric is judged: the effect sizes that matter and the spread that is too large. */
export interface MetricThreshold {
  /** A significant change smaller than this many percent of the old median still counts as `same` (the machine's A/A noise). */
  minEffectPct: number;
  /**
   * The change (percent) a comparison must be able to see: a non-significant
   * result is `same` only when the test would have detected a change this
   * large with 80% power at the observed noise and rounds; `unknown` otherwise.
   */
  detectPct: number;
  /** Coefficient of variation over rounds (either side) above which the figure is flagged `noisy`. */
  cvMax: number;
}

/** A thresholds file: per metric key, optionally per mode and metric key (mode entries win). */
export interface Thresholds {
  schema: typeof THRESHOLDS_SCHEMA;
  schemaVersion: typeof THRESHOLDS_SCHEMA_VERSION;
  /** Where the figures come from (files, runs, pairs); free-form, for people. */
  source: string;
  metrics: Record<string, MetricThreshold>;
  modes: Record<string, Record<string, MetricThreshold>>;
}

/**
 * Default thresholds per metric family. They are placeholders TO BE DERIVED
 * FROM MEASURED A/A NOISE on the runner (`vxtap bench compare --calibrate
 * A1.json A2.json ...` prints a thresholds file): minEffectPct is of the order
 * of the issue-11 targets for the CV over rounds (5% TCP, 10% latency p50) and
 * detectPct twice that (a 10% throughput slowdown must be seen).
 */
export function defaultThreshold(key: string): MetricThreshold {
  if (/^(tcp1Gbps|tcpNGbps)$|^udp\d+(Ndr|Pdr)Kpps$/.test(key)) return { minEffectPct: 5, detectPct: 10, cvMax: 0.1 };
  if (/^lat(Idle|Loaded)(P50|P90)$/.test(key)) return { minEffectPct: 10, detectPct: 20, cvMax: 0.2 };
  if (/^lat(Idle|Loaded)(P99|P999|Max)$/.test(key)) return { minEffectPct: 25, detectPct: 50, cvMax: 0.5 };
  if (/Retransmits$/.test(key)) return { minEffectPct: 50, detectPct: 100, cvMax: 1 };
  if (/Share$/.test(key)) return { minEffectPct: 25, detectPct: 50, cvMax: 0.5 };
  return { minEffectPct: 10, detectPct: 20, cvMax: 0.2 }; // CPU per Gbit / Mpkt, RSS
}

/** The threshold of `mode`/`key`: the file's mode entry, its metric entry, or the default. */
export function thresholdFor(t: Thresholds | null, mode: string, key: string): MetricThreshold {
  return t?.modes[mode]?.[key] ?? t?.metrics[key] ?? defaultThreshold(key);
}

function checkThreshold(v: unknown, where: string): MetricThreshold | Error {
  if (typeof v !== 'object' || v === null) return new TypeError(`${where} must be an object {minEffectPct, detectPct, cvMax}`);
  const o = v as Record<string, unknown>;
  for (const f of ['minEffectPct', 'detectPct', 'cvMax'] as const) {
    if (typeof o[f] !== 'number' || !Number.isFinite(o[f]) || o[f] < 0) return new TypeError(`${where}.${f} must be a number >= 0 (got ${JSON.stringify(o[f])})`);
  }
  return { minEffectPct: o.minEffectPct as number, detectPct: o.detectPct as number, cvMax: o.cvMax as number };
}

/** Validate a parsed thresholds file; returns an Error naming the field. */
export function parseThresholds(v: unknown): Thresholds | Error {
  if (typeof v !== 'object' || v === null) return new TypeError('thresholds: not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.schema !== THRESHOLDS_SCHEMA) return new TypeError(`thresholds: schema must be "${THRESHOLDS_SCHEMA}" (got ${JSON.stringify(o.schema)})`);
  if (o.schemaVersion !== THRESHOLDS_SCHEMA_VERSION) return new TypeError(`thresholds: schemaVersion must be ${THRESHOLDS_SCHEMA_VERSION} (got ${JSON.stringify(o.schemaVersion)})`);
  const metrics: Record<string, MetricThreshold> = {};
  if (typeof o.metrics !== 'object' || o.metrics === null) return new TypeError('thresholds: metrics must be an object keyed by metric');
  for (const [k, t] of Object.entries(o.metrics)) {
    const c = checkThreshold(t, `thresholds: metrics.${k}`);
    if (c instanceof Error) return c;
    metrics[k] = c;
  }
  const modes: Record<string, Record<string, MetricThreshold>> = {};
  if (o.modes !== undefined) {
    if (typeof o.modes !== 'object' || o.modes === null) return new TypeError('thresholds: modes must be an object keyed by mode');
    for (const [m, by] of Object.entries(o.modes as Record<string, unknown>)) {
      if (typeof by !== 'object' || by === null) return new TypeError(`thresholds: modes.${m} must be an object keyed by metric`);
      modes[m] = {};
      for (const [k, t] of Object.entries(by)) {
        const c = checkThreshold(t, `thresholds: modes.${m}.${k}`);
        if (c instanceof Error) return c;
        modes[m][k] = c;
      }
    }
  }
  return { schema: THRESHOLDS_SCHEMA, schemaVersion: THRESHOLDS_SCHEMA_VERSION, source: typeof o.source === 'string' ? o.source : '', metrics, modes };
}

/** Round up to one decimal (percent thresholds). */
function ceil1(x: number): number {
  return Math.ceil(x * 10 - 1e-9) / 10;
}

/**
 * Thresholds from A/A results: two or more results of the SAME build on the
 * same machine and profile. For every mode and metric measured in at least two
 * of them: minEffectPct = the largest |change of the median| (percent) between
 * any two of the results (at least 1%): a difference the machine produces by
 * itself between consecutive runs is not a regression; detectPct = twice that;
 * cvMax = 1.5 x the largest CV over rounds seen in any of them (at least 0.01).
 * Per-metric entries take the largest over modes. More results give a truer
 * (and larger) maximum; two is the minimum.
 */
export function calibrateThresholds(results: { label: string; result: BenchResult }[]): Thresholds {
  if (results.length < 2) throw new RangeError(`calibration needs two or more A/A results (got ${results.length})`);
  const modes: Thresholds['modes'] = {};
  const metrics: Thresholds['metrics'] = {};
  const modeIds = [...new Set(results.flatMap((r) => r.result.modes.map((m) => m.id)))];
  const keys = [...new Set(results.flatMap((r) => metricDefs(r.result.profile).map((d) => d.key)))];
  for (const mode of modeIds) {
    for (const key of keys) {
      const sides = results.map((r) => side(r.result, mode, key)).filter((s) => s.n > 0);
      if (sides.length < 2) continue;
      let maxDelta = 0;
      for (let i = 0; i < sides.length; i++) {
        for (let j = i + 1; j < sides.length; j++) {
          const a = sides[i].median as number;
          const b = sides[j].median as number;
          const d = a === 0 ? (b === 0 ? 0 : 100) : (Math.abs(b - a) / Math.abs(a)) * 100;
          maxDelta = Math.max(maxDelta, d);
        }
      }
      const maxCv = Math.max(0, ...sides.map((s) => s.cv ?? 0));
      const minEffectPct = Math.max(1, ceil1(maxDelta));
      const t: MetricThreshold = { minEffectPct, detectPct: ceil1(2 * minEffectPct), cvMax: Math.max(0.01, Math.ceil(maxCv * 1.5 * 1000) / 1000) };
      (modes[mode] ??= {})[key] = t;
      const prev = metrics[key] as MetricThreshold | undefined;
      metrics[key] = prev ? { minEffectPct: Math.max(prev.minEffectPct, t.minEffectPct), detectPct: Math.max(prev.detectPct, t.detectPct), cvMax: Math.max(prev.cvMax, t.cvMax) } : { ...t };
    }
  }
  const pairs = (results.length * (results.length - 1)) / 2;
  return {
    schema: THRESHOLDS_SCHEMA,
    schemaVersion: THRESHOLDS_SCHEMA_VERSION,
    source: `A/A calibration over ${results.length} results (${pairs} pair${pairs === 1 ? '' : 's'}): ${results.map((r) => `${r.label} (run ${r.result.runId})`).join(', ')}`,
    metrics,
    modes,
  };
}

// ---------------------------------------------------------------- judging one family of tests

/** Statistical power the minimum detectable effect is computed for. */
export const MDE_POWER = 0.8;
/** Asymptotic relative efficiency of the Mann-Whitney test to the t-test under normal noise (3/pi). */
const MW_EFFICIENCY = 3 / Math.PI;

/**
 * Minimum detectable effect in percent of `base`: the shift a two-sided test
 * at `level` would detect with {@link MDE_POWER} power, given the pooled
 * standard deviation of both sides and n1, n2 rounds (normal approximation,
 * scaled by the Mann-Whitney efficiency 3/pi). Null when it cannot be
 * estimated (fewer than 3 values in all, or base 0).
 */
export function minDetectableEffectPct(x: readonly number[], y: readonly number[], base: number | null, level: number): number | null {
  const n1 = x.length;
  const n2 = y.length;
  if (n1 + n2 < 3 || n1 === 0 || n2 === 0 || base === null || base === 0) return null;
  const ss = (v: readonly number[]) => {
    const m = v.reduce((s, a) => s + a, 0) / v.length;
    return v.reduce((s, a) => s + (a - m) ** 2, 0);
  };
  const sd = Math.sqrt((ss(x) + ss(y)) / (n1 + n2 - 2));
  const z = normalQuantile(1 - level / 2) + normalQuantile(MDE_POWER);
  return ((z * sd * Math.sqrt(1 / n1 + 1 / n2)) / Math.sqrt(MW_EFFICIENCY) / Math.abs(base)) * 100;
}

/**
 * Rounds per side (equal sizes) at which {@link minDetectableEffectPct} falls
 * to `detectPct` for a relative standard deviation `cvRel` (sd / base) at
 * `level`; at least {@link minRoundsFor}(level) so the exact test can reach it.
 */
export function roundsToDetect(cvRel: number, detectPct: number, level: number): number {
  const z = normalQuantile(1 - level / 2) + normalQuantile(MDE_POWER);
  const d = detectPct / 100;
  const n = d > 0 ? Math.ceil((2 * (z * cvRel) ** 2) / (d * d) / MW_EFFICIENCY) : Number.POSITIVE_INFINITY;
  return Math.max(minRoundsFor(level), n);
}

/** Multiple-testing correction over the rows of one comparison. */
export type Correction = 'holm' | 'none';

/** One metric to judge: per-round values of both sides. */
export interface JudgeInput {
  old: readonly (number | null)[];
  new: readonly (number | null)[];
  higherIsBetter: boolean;
  threshold: MetricThreshold;
}

/** The judgement of one metric. */
export interface Judgement {
  old: CompareSide;
  new: CompareSide;
  deltaPct: number | null;
  p: number | null;
  /** p after the multiple-testing correction (Holm), null when untested. */
  pAdjusted: number | null;
  method: MannWhitney['method'] | null;
  direction: -1 | 0 | 1;
  /** Minimum detectable effect (percent) at the family's per-test level; null when not estimable. */
  mdePct: number | null;
  /** Either side's CV over rounds exceeds threshold.cvMax. */
  noisy: boolean;
  verdict: Verdict;
  /** Why the verdict is what it is when that is not plain significance (null otherwise). */
  note: string | null;
}

/** A two-sided two-sample test (Mann-Whitney by default; the Monte Carlo in decide.ts passes a faster exact equivalent). */
export type TwoSampleTest = (x: readonly number[], y: readonly number[]) => Pick<MannWhitney, 'p' | 'method' | 'direction'>;

function sideOf(values: readonly (number | null)[]): CompareSide {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return { n: v.length, median: median(v), cv: v.length >= 2 ? cv(v) : null, values: v };
}

/**
 * Judge a family of metrics at once (the rows of one comparison). Each row
 * gets the two-sided test; the p-values are corrected together (Holm, unless
 * `correction` is 'none'); then per row:
 * - `better` / `worse`: adjusted p <= alpha and |delta| >= minEffectPct (a
 *   rise from an old median of 0 counts as large);
 * - `same`: significant but |delta| < minEffectPct; or not significant, the
 *   medians within minEffectPct, and the test could have seen a change of
 *   detectPct (MDE <= detectPct); or all values equal;
 * - `unknown`: no data on a side; the exact test cannot reach the per-test
 *   level with these rounds; or not significant with an MDE above detectPct
 *   (too noisy or too few rounds to say), or with medians apart by more than
 *   minEffectPct.
 * The per-test level used for "can reach" and the MDE is alpha / m with Holm
 * (the strictest step; m = rows with data on both sides) and alpha without.
 */
export function judgeFamily(inputs: readonly JudgeInput[], opts: { alpha: number; correction: Correction; test?: TwoSampleTest }): Judgement[] {
  const test = opts.test ?? mannWhitney;
  const sides = inputs.map((x) => ({ o: sideOf(x.old), n: sideOf(x.new) }));
  const tests = sides.map(({ o, n }) => (o.n > 0 && n.n > 0 ? test(o.values, n.values) : null));
  const ps = tests.map((t) => t?.p ?? null);
  const m = ps.filter((p) => p !== null).length;
  const adjusted = opts.correction === 'holm' ? holmAdjust(ps) : ps;
  const level = opts.correction === 'holm' && m > 0 ? opts.alpha / m : opts.alpha;
  const levelText = opts.correction === 'holm' && m > 1 ? `${fmtP(level)} (alpha ${opts.alpha} / ${m} tests, Holm)` : `${opts.alpha}`;
  return inputs.map((input, i) => {
    const { o, n } = sides[i];
    const t = tests[i];
    const th = input.threshold;
    let deltaPct: number | null = null;
    if (o.median !== null && n.median !== null) {
      if (o.median !== 0) deltaPct = ((n.median - o.median) / Math.abs(o.median)) * 100;
      else if (n.median === 0) deltaPct = 0;
    }
    const noisy = (o.cv ?? 0) > th.cvMax || (n.cv ?? 0) > th.cvMax;
    const base: Judgement = {
      old: o,
      new: n,
      deltaPct,
      p: t?.p ?? null,
      pAdjusted: adjusted[i],
      method: t?.method ?? null,
      direction: t?.direction ?? 0,
      mdePct: null,
      noisy,
      verdict: 'unknown',
      note: null,
    };
    if (!t) return { ...base, note: `no data in ${o.n === 0 ? 'OLD' : 'NEW'}` };
    base.mdePct = minDetectableEffectPct(o.values, n.values, o.median, level);
    const all = [...o.values, ...n.values];
    if (all.every((v) => v === all[0])) return { ...base, verdict: 'same', note: 'all samples are equal' };
    const pAdj = adjusted[i] as number;
    if (pAdj <= opts.alpha && t.direction !== 0) {
      if (deltaPct !== null && Math.abs(deltaPct) < th.minEffectPct) {
        return { ...base, verdict: 'same', note: `significant, but |delta| is below the minimum effect of ${th.minEffectPct}%` };
      }
      return { ...base, verdict: t.direction > 0 === input.higherIsBetter ? 'better' : 'worse' };
    }
    const minP = smallestPossibleP(o.n, n.n);
    if (minP > level) {
      const need = Math.max(COMPARE_DEFAULTS.recommendedRounds, minRoundsFor(level));
      return { ...base, note: `n=${o.n}+${n.n} rounds can never reach p <= ${levelText} (smallest possible p = ${fmtP(minP)}); run both with --rounds ${need} or more` };
    }
    if (base.mdePct === null || base.mdePct > th.detectPct) {
      return { ...base, note: "not significant, and at this noise and these rounds the test would only see a change of the size in column MDE, more than the metric's detect size" };
    }
    if (deltaPct === null || Math.abs(deltaPct) >= th.minEffectPct) {
      return { ...base, note: 'not significant, but the medians differ by at least the minimum effect' };
    }
    return { ...base, verdict: 'same' };
  });
}

// ---------------------------------------------------------------- comparing two results

/** One side of a row: the per-round values that were present, their median and CV over rounds. */
export interface CompareSide {
  n: number;
  median: number | null;
  /** Coefficient of variation over rounds (sample sd / |mean|); null for n < 2 or mean 0. */
  cv: number | null;
  values: number[];
}

/** Verdict of one row: `unknown` = too noisy or too few rounds to say either way. */
export type Verdict = 'better' | 'worse' | 'same' | 'unknown';

/** One mode x metric comparison. */
export interface CompareRow extends Judgement {
  mode: string;
  metric: string;
  table: string;
  title: string;
  unit: string;
  higherIsBetter: boolean;
  threshold: MetricThreshold;
  /** Rounds of each side whose sample behind this figure was disturbed (flagged, kept in the test). */
  disturbedRounds: { old: number[]; new: number[] };
}

/** Identification of one input in the comparison. */
export interface RunRef {
  label: string;
  runId: string;
  status: BenchResult['status'];
  rounds: number;
  commit: string | null;
}

/** The whole comparison (the `--json` output; the Markdown is rendered from it). */
export interface Comparison {
  schema: typeof COMPARE_SCHEMA;
  schemaVersion: typeof COMPARE_SCHEMA_VERSION;
  alpha: number;
  test: 'Mann-Whitney U, two-sided';
  correction: Correction;
  /** Number of tests in the family (rows with data on both sides). */
  tests: number;
  /** Where the thresholds came from: "defaults" or the thresholds file's source. */
  thresholds: string;
  old: RunRef;
  new: RunRef;
  /** Differences in environment or options that make the comparison doubtful, results not complete, modes not comparable. */
  warnings: string[];
  /** Disturbed samples of each side in the compared modes (bench/disturbance.ts), flagged and kept. */
  disturbed: { old: DisturbedSample[]; new: DisturbedSample[] };
  rows: CompareRow[];
  counts: { better: number; worse: number; same: number; unknown: number; noisy: number };
}

/** Options of {@link compareResults}. */
export interface CompareOptions {
  /** Family-wise significance level, 0 < alpha < 1 (default {@link COMPARE_DEFAULTS}.alpha). */
  alpha: number;
  /** Metric keys to compare; null = all of the metric table. */
  metrics: string[] | null;
  /** Multiple-testing correction (default holm). */
  correction: Correction;
  /** Per-metric thresholds; null = {@link defaultThreshold}. */
  thresholds: Thresholds | null;
}

/** Raw option values as the CLI receives them (strings from flags or environment). */
export interface RawCompareOptions {
  alpha?: string;
  metrics?: string;
  failOnRegression?: string;
  correction?: string;
  json?: boolean | string;
}

/** Validated CLI options (the thresholds file is read by the CLI). */
export interface CompareCliOptions extends Omit<CompareOptions, 'thresholds'> {
  /** Exit 1 when a `worse` change exceeds this many percent; null = never. */
  failOnRegressionPct: number | null;
  json: boolean;
}

/** Parse and validate the CLI options; returns an Error naming the option when one is bad. */
export function parseCompareOptions(raw: RawCompareOptions): CompareCliOptions | Error {
  const alpha = raw.alpha === undefined ? COMPARE_DEFAULTS.alpha : Number(raw.alpha);
  if (!Number.isFinite(alpha) || alpha <= 0 || alpha >= 1) return new TypeError(`--alpha must be a number between 0 and 1 exclusive (got "${String(raw.alpha)}")`);
  let failOnRegressionPct: number | null = null;
  if (raw.failOnRegression !== undefined) {
    failOnRegressionPct = Number(raw.failOnRegression.replace(/%$/, ''));
    if (raw.failOnRegression.trim() === '' || !Number.isFinite(failOnRegressionPct) || failOnRegressionPct < 0) {
      return new TypeError(`--fail-on-regression must be a percentage >= 0, e.g. 5 or 5% (got "${raw.failOnRegression}")`);
    }
  }
  let metrics: string[] | null = null;
  if (raw.metrics !== undefined) {
    metrics = raw.metrics
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean);
    if (metrics.length === 0) return new TypeError('--metrics must list at least one metric key, e.g. tcp1Gbps,latIdleP50');
  }
  const correction = raw.correction ?? COMPARE_DEFAULTS.correction;
  if (correction !== 'holm' && correction !== 'none') return new TypeError(`--correction must be "holm" or "none" (got "${String(raw.correction)}")`);
  const json = raw.json === true || raw.json === 'true' || raw.json === '1';
  return { alpha, metrics, correction, failOnRegressionPct, json };
}

/** The metric table both results share (old's order), or an Error naming unknown keys of `wanted`. */
export function sharedMetrics(oldR: BenchResult, newR: BenchResult, wanted: string[] | null): MetricDef[] | Error {
  const newKeys = new Set(metricDefs(newR.profile).map((d) => d.key));
  const oldDefs = metricDefs(oldR.profile);
  const shared = oldDefs.filter((d) => newKeys.has(d.key));
  if (!wanted) return shared;
  const known = new Set([...oldDefs.map((d) => d.key), ...newKeys]);
  const unknown = wanted.filter((k) => !known.has(k));
  if (unknown.length) return new TypeError(`--metrics: unknown metric ${unknown.map((k) => `"${k}"`).join(', ')}; known: ${[...known].join(', ')}`);
  const notShared = wanted.filter((k) => !shared.some((d) => d.key === k));
  if (notShared.length) return new TypeError(`--metrics: ${notShared.map((k) => `"${k}"`).join(', ')} not measured in both results (UDP frame sizes differ)`);
  return shared.filter((d) => wanted.includes(d.key));
}

const ENV_FIELDS = ['kernel', 'cpuModel', 'cpuCount', 'virtualization', 'container', 'kvm', 'ovsKernelModule'] as const;

function show(v: unknown): string {
  return v === undefined ? 'absent' : JSON.stringify(v);
}

/** Warnings for differences that make a comparison doubtful (the git commit and hostname may differ). */
export function contextWarnings(oldR: BenchResult, newR: BenchResult, oldLabel = 'OLD', newLabel = 'NEW'): string[] {
  const w: string[] = [];
  const differ = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) w.push(`${what} differs: ${oldLabel} ${show(a)}, ${newLabel} ${show(b)}`);
  };
  for (const [label, r] of [
    [oldLabel, oldR],
    [newLabel, newR],
  ] as const) {
    if (r.status !== 'complete') w.push(`${label} status is "${r.status}"${r.incompleteReasons.length ? `: ${r.incompleteReasons.join('; ')}` : ''}`);
    if (!r.environment) w.push(`${label} has no environment recorded`);
  }
  if (oldR.environment && newR.environment) {
    for (const f of ENV_FIELDS) differ(`environment.${f}`, oldR.environment[f], newR.environment[f]);
    const tools = [...new Set([...Object.keys(oldR.environment.tools), ...Object.keys(newR.environment.tools)])].sort();
    for (const t of tools) differ(`environment.tools.${t}`, oldR.environment.tools[t], newR.environment.tools[t]);
  }
  differ('options.profile', oldR.options.profile, newR.options.profile);
  differ('options.mtu', oldR.options.mtu, newR.options.mtu);
  differ('options.netem', oldR.options.netem, newR.options.netem);
  differ('options.pin', oldR.options.pin, newR.options.pin);
  // Absent in older results: host endpoints, full offloads, no contention.
  differ('options.endpoints', oldR.options.endpoints ?? 'host', newR.options.endpoints ?? 'host');
  differ('options.underlayOffloads', oldR.options.underlayOffloads ?? 'full', newR.options.underlayOffloads ?? 'full');
  differ('options.contention', oldR.options.contention ?? null, newR.options.contention ?? null);
  // Absent in older results: rr measured latency, and the run stayed where it was started.
  differ('options.latencyTool', oldR.options.latencyTool ?? 'rr', newR.options.latencyTool ?? 'rr');
  differ('options.cpuPriority', oldR.options.cpuPriority ?? 'normal', newR.options.cpuPriority ?? 'normal');
  const newIds = new Set(newR.modes.map((m) => m.id));
  const oldIds = new Set(oldR.modes.map((m) => m.id));
  for (const m of oldR.modes) if (!newIds.has(m.id)) w.push(`mode ${m.id} only in ${oldLabel} (not compared)`);
  for (const m of newR.modes) if (!oldIds.has(m.id)) w.push(`mode ${m.id} only in ${newLabel} (not compared)`);
  for (const [label, r] of [
    [oldLabel, oldR],
    [newLabel, newR],
  ] as const) {
    for (const m of r.modes) if (!m.available && oldIds.has(m.id) && newIds.has(m.id)) w.push(`mode ${m.id} unavailable in ${label}: ${m.unavailableReason ?? 'no reason recorded'}`);
  }
  return w;
}

function side(r: BenchResult, mode: string, key: string): CompareSide {
  return sideOf(perRoundValues(r, mode, key));
}

function fmtP(p: number): string {
  return p >= 0.001 || p === 0 ? p.toFixed(3) : p.toExponential(1);
}

/**
 * Compare two validated results. Rows: every mode present in both (old's
 * order) x every shared metric (or `options.metrics`); a mode-metric without
 * values on either side is left out. All rows form one family for the
 * multiple-testing correction. Throws a TypeError for an unknown metric key
 * (check with {@link sharedMetrics} first to get it as a value).
 */
export function compareResults(oldIn: { label: string; result: BenchResult }, newIn: { label: string; result: BenchResult }, options: Partial<CompareOptions> = {}): Comparison {
  const alpha = options.alpha ?? COMPARE_DEFAULTS.alpha;
  const correction = options.correction ?? COMPARE_DEFAULTS.correction;
  const thresholds = options.thresholds ?? null;
  const oldR = oldIn.result;
  const newR = newIn.result;
  const defs = sharedMetrics(oldR, newR, options.metrics ?? null);
  if (defs instanceof Error) throw defs;
  const newModes = new Set(newR.modes.map((m) => m.id));
  const keys: { mode: string; def: MetricDef; threshold: MetricThreshold; o: (number | null)[]; n: (number | null)[] }[] = [];
  for (const mode of oldR.modes.map((m) => m.id).filter((id) => newModes.has(id))) {
    for (const def of defs) {
      const o = perRoundValues(oldR, mode, def.key);
      const n = perRoundValues(newR, mode, def.key);
      if (!o.some((v) => v !== null && Number.isFinite(v)) && !n.some((v) => v !== null && Number.isFinite(v))) continue;
      keys.push({ mode, def, threshold: thresholdFor(thresholds, mode, def.key), o, n });
    }
  }
  const compared = new Set(keys.map((k) => k.mode));
  const disturbed = { old: disturbedSamples(oldR).filter((d) => compared.has(d.mode)), new: disturbedSamples(newR).filter((d) => compared.has(d.mode)) };
  const judged = judgeFamily(
    keys.map((k) => ({ old: k.o, new: k.n, higherIsBetter: k.def.higherIsBetter, threshold: k.threshold })),
    { alpha, correction },
  );
  const rows: CompareRow[] = keys.map((k, i) => ({
    mode: k.mode,
    metric: k.def.key,
    table: k.def.table,
    title: k.def.title,
    unit: k.def.unit,
    higherIsBetter: k.def.higherIsBetter,
    threshold: k.threshold,
    disturbedRounds: { old: disturbedFor(disturbed.old, k.mode, k.def.key).map((d) => d.round), new: disturbedFor(disturbed.new, k.mode, k.def.key).map((d) => d.round) },
    ...judged[i],
  }));
  const ref = (label: string, r: BenchResult): RunRef => ({ label, runId: r.runId, status: r.status, rounds: r.options.rounds, commit: r.environment?.git.commit ?? null });
  const count = (v: Verdict) => rows.filter((r) => r.verdict === v).length;
  return {
    schema: COMPARE_SCHEMA,
    schemaVersion: COMPARE_SCHEMA_VERSION,
    alpha,
    test: 'Mann-Whitney U, two-sided',
    correction,
    tests: rows.filter((r) => r.p !== null).length,
    thresholds: thresholds ? thresholds.source || 'thresholds file' : 'defaults (to be derived from measured A/A noise: vxtap bench compare --calibrate)',
    old: ref(oldIn.label, oldR),
    new: ref(newIn.label, newR),
    warnings: contextWarnings(oldR, newR),
    disturbed,
    rows,
    counts: { better: count('better'), worse: count('worse'), same: count('same'), unknown: count('unknown'), noisy: rows.filter((r) => r.noisy).length },
  };
}

/**
 * Rows that fail `--fail-on-regression PCT`: verdict `worse` (significant after
 * the correction, beyond the minimum effect) and a change larger than `pct`
 * percent. A significant rise from an old median of 0 (delta undefined) counts
 * as exceeding any PCT.
 */
export function regressions(c: Pick<Comparison, 'rows'>, pct: number): CompareRow[] {
  return c.rows.filter((r) => r.verdict === 'worse' && (r.deltaPct === null || Math.abs(r.deltaPct) > pct));
}

/** A value with about 4 significant digits. */
export function formatValue(v: number | null): string {
  if (v === null) return 'n/a';
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return String(Number(v.toPrecision(4)));
}

/** A change in percent with its sign ("+12.3%", "-0.4%", "0.0%"). */
export function formatDelta(d: number | null): string {
  if (d === null) return 'n/a';
  const s = d.toFixed(1);
  return Number(s) === 0 ? '0.0%' : `${d > 0 ? '+' : ''}${s}%`;
}

function short(commit: string | null): string {
  return commit ? commit.slice(0, 12) : 'unknown';
}

function fmtCv(c: number | null): string {
  return c === null ? 'n/a' : `${(c * 100).toFixed(1)}%`;
}

/** Render the comparison as Markdown: header, warnings, the table, footnotes for the notes. */
export function renderCompareMarkdown(c: Comparison): string {
  const out: string[] = [];
  out.push('# vxtap bench compare', '');
  for (const [name, r] of [
    ['old', c.old],
    ['new', c.new],
  ] as const) {
    out.push(`- ${name}: \`${r.label}\` (run ${r.runId}, commit ${short(r.commit)}, ${r.rounds} round${r.rounds === 1 ? '' : 's'}, ${r.status})`);
  }
  const corr = c.correction === 'holm' ? `Holm-Bonferroni over ${c.tests} tests (family-wise error <= alpha)` : 'no correction for multiple tests';
  out.push(`- test: ${c.test} over the per-round values, alpha = ${c.alpha}, ${corr}; p is the adjusted p-value`);
  out.push(
    `- verdicts: better / worse = significant and at least the metric's minimum effect; same = not significant although a change of the metric's detect size would have been seen, or below the minimum effect; unknown = too noisy or too few rounds to say; MDE = the smallest change the test would see with 80% power at this noise and these rounds; noisy = CV over rounds above the metric's limit`,
  );
  out.push(`- thresholds: ${c.thresholds}`, '');
  if (c.warnings.length) {
    out.push('**Warnings** (the two results may not be comparable):', '');
    for (const w of c.warnings) out.push(`- ${w}`);
    out.push('');
  }
  if (c.rows.length === 0) {
    out.push('No mode and metric measured in both results.', '');
    return out.join('\n');
  }
  const notes: string[] = [];
  const noteRef = (note: string | null): string => {
    if (!note) return '';
    let i = notes.indexOf(note);
    if (i < 0) i = notes.push(note) - 1;
    return ` [${i + 1}]`;
  };
  out.push('| mode | metric | old | new | delta | p (n) | CV old / new | MDE | min effect / detect | verdict |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of c.rows) {
    const p = r.pAdjusted === null ? 'n/a' : `${fmtP(r.pAdjusted)} (n=${r.old.n}+${r.new.n})`;
    const spread = `${fmtCv(r.old.cv)} / ${fmtCv(r.new.cv)}`;
    const dist = r.disturbedRounds.old.length + r.disturbedRounds.new.length > 0 ? ', disturbed †' : '';
    const verdict = `${r.verdict}${r.noisy ? ', **noisy**' : ''}${dist}${noteRef(r.note)}`;
    out.push(
      `| ${r.mode} | ${r.metric} (${r.unit}) | ${formatValue(r.old.median)} | ${formatValue(r.new.median)} | ${formatDelta(r.deltaPct)} | ${p} | ${spread} | ${r.mdePct === null ? 'n/a' : `${r.mdePct.toFixed(1)}%`} | ${r.threshold.minEffectPct}% / ${r.threshold.detectPct}% | ${verdict} |`,
    );
  }
  out.push('');
  for (const [i, n] of notes.entries()) out.push(`[${i + 1}] ${n}`);
  if (notes.length) out.push('');
  if (c.disturbed.old.length + c.disturbed.new.length > 0) {
    out.push('† Disturbed rounds (steal, another process or a throughput dip; flagged, kept in the test):', '');
    for (const [name, list] of [
      ['old', c.disturbed.old],
      ['new', c.disturbed.new],
    ] as const) {
      out.push(`- ${name}: ${list.length ? '' : 'none'}`.trimEnd(), ...describeDisturbed(list).map((l) => `  - ${l}`));
    }
    out.push('');
  }
  out.push(
    `${c.counts.better} better, ${c.counts.worse} worse, ${c.counts.same} same, ${c.counts.unknown} unknown; ${c.counts.noisy} noisy (old and new are medians over rounds; metric keys as in result.json derived.metrics)`,
    '',
  );
  return out.join('\n');
}
