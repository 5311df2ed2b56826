/**
 * Deciding with a bounded number of rounds: the sequential stopping rule that
 * CI uses when `compare` says `unknown`, and the machinery that checks the
 * whole decision procedure's error rates by simulation or by resampling real
 * per-round data.
 *
 * The stopping rule (group-sequential, Bonferroni across looks). A plan fixes,
 * before any data is seen, the per-side round counts at which the comparison
 * is looked at: schedule = [n1, n2, ..., nK] (default 6, 9, 12). At look k the
 * first n_k rounds of each side are compared with {@link judgeFamily} at the
 * per-look level alpha / K (and Holm over the metrics inside the look). Then:
 * stop and fail on any `worse`; stop when no metric is `unknown`; stop at the
 * cap (look K) with whatever is left `unknown`; otherwise add
 * n_{k+1} - n_k rounds per side and look again.
 *
 * Why it does not inflate false alarms: under "no change" the chance of a
 * false `worse`/`better` at look k is at most alpha / K whatever happened at
 * the other looks (each look's test is valid at its level for its fixed n_k:
 * the schedule does not depend on the data, only whether a look happens does,
 * and skipping looks can only remove chances). By the union bound the chance
 * of any false alarm over all K looks is at most K x alpha / K = alpha. This is
 * the simplest alpha-spending function (equal spending, Bonferroni); it is
 * conservative (Pocock or O'Brien-Fleming boundaries would spend less
 * needlessly) but needs no distributional assumption, which the rank test and
 * the machine's noise do not give us. Adding rounds only while `unknown`
 * (i.e. choosing rounds by peeking) without this split is exactly what
 * inflates false alarms: {@link estimateRates} measures both.
 *
 * Pure code: random numbers come from a seeded generator passed in, data from
 * arrays; the CLI (src/cli/bench-compare.ts, `bench validate-decision`) reads
 * result files.
 */
import { judgeFamily, mannWhitney, type Correction, type MannWhitney, type MetricThreshold, type TwoSampleTest, type Verdict } from './compare.js';
import { perRoundValues, type BenchResult } from './result.js';

/** Defaults of the stopping rule (one place). */
export const DECIDE_DEFAULTS = {
  /** Rounds per side at the first look: 6 + 6 reaches p = 0.0022, enough for alpha 0.05 / 3 looks / up to 7 gated metrics. */
  initialRounds: 6,
  /** Rounds per side added at each further look. */
  stepRounds: 3,
  /** Cap on rounds per side. */
  maxRounds: 12,
  alpha: 0.05,
  comparisons: 1000,
  seed: 1,
};

/** A sequential plan: the per-side round counts of every look, fixed in advance. */
export interface SequentialPlan {
  /** Strictly increasing round counts per side, one per look. */
  schedule: number[];
  /** Family-wise false-alarm budget over all looks and metrics. */
  alpha: number;
  /** Correction over the metrics within one look. */
  correction: Correction;
  /**
   * How alpha is spent over the looks: 'bonferroni' (alpha / K per look, the
   * rule CI uses) or 'none' (alpha at every look: naive peeking, kept only to
   * show by simulation what it costs).
   */
  spending?: 'bonferroni' | 'none';
}

/** Build a plan from the first look, the step and the cap: [initial, initial + step, ..., max]. Throws RangeError on bad values. */
export function makePlan(initial: number, step: number, max: number, alpha: number = DECIDE_DEFAULTS.alpha, correction: Correction = 'holm'): SequentialPlan {
  if (!Number.isInteger(initial) || initial < 2) throw new RangeError(`initial rounds must be an integer >= 2 (got ${initial})`);
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`step rounds must be an integer >= 1 (got ${step})`);
  if (!Number.isInteger(max) || max < initial) throw new RangeError(`max rounds must be an integer >= initial rounds ${initial} (got ${max})`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be between 0 and 1 exclusive (got ${alpha})`);
  const schedule: number[] = [];
  for (let n = initial; n < max; n += step) schedule.push(n);
  schedule.push(max);
  return { schedule, alpha, correction };
}

/** Parse "6,9,12" into a plan; an Error names the option when the schedule is not strictly increasing integers >= 2. */
export function parseSchedule(text: string, alpha: number = DECIDE_DEFAULTS.alpha): SequentialPlan | Error {
  const schedule = text.split(',').map((x) => Number(x.trim()));
  if (!schedule.length || schedule.some((n, i) => !Number.isInteger(n) || n < 2 || (i > 0 && n <= schedule[i - 1]))) {
    return new TypeError(`--schedule must be strictly increasing round counts >= 2, e.g. 6,9,12 (got "${text}")`);
  }
  if (!(alpha > 0 && alpha < 1)) return new TypeError(`--alpha must be a number between 0 and 1 exclusive (got "${alpha}")`);
  return { schedule, alpha, correction: 'holm' };
}

/** The level each look is tested at: alpha / K (Bonferroni across the K looks); alpha with spending 'none'. */
export function lookAlpha(plan: SequentialPlan): number {
  return plan.spending === 'none' ? plan.alpha : plan.alpha / plan.schedule.length;
}

/** What to do after a look. */
export type StepDecision = { action: 'stop'; reason: 'worse' | 'decided' | 'cap'; why: string } | { action: 'add'; rounds: number; why: string };

/**
 * The stopping rule, a pure function of the plan, the look just made (0-based
 * index into plan.schedule) and its verdicts.
 */
export function nextStep(plan: SequentialPlan, look: number, verdicts: readonly Verdict[]): StepDecision {
  const n = plan.schedule[look] as number | undefined;
  if (n === undefined) throw new RangeError(`look ${look} is not in the plan (${plan.schedule.length} looks)`);
  const worse = verdicts.filter((v) => v === 'worse').length;
  const unknown = verdicts.filter((v) => v === 'unknown').length;
  if (worse) return { action: 'stop', reason: 'worse', why: `${worse} metric(s) worse at look ${look + 1} (${n} rounds per side, level ${fmt(lookAlpha(plan))})` };
  if (!unknown) return { action: 'stop', reason: 'decided', why: `every metric decided at look ${look + 1} (${n} rounds per side)` };
  if (look + 1 >= plan.schedule.length) return { action: 'stop', reason: 'cap', why: `${unknown} metric(s) still unknown at the cap of ${n} rounds per side` };
  const add = plan.schedule[look + 1] - n;
  return { action: 'add', rounds: add, why: `${unknown} metric(s) unknown at ${n} rounds per side: add ${add} to reach look ${look + 2} of ${plan.schedule.length}` };
}

function fmt(x: number): string {
  return x >= 0.001 ? String(Number(x.toPrecision(3))) : x.toExponential(1);
}

// ---------------------------------------------------------------- a faster exact test for simulation

const nullCache = new Map<string, Float64Array>();

/** Cumulative null distribution of the rank sum of sample 1 (ranks 1..n1+n2, no ties): cum[s] = #subsets with sum <= s. */
function rankSumCdf(n1: number, n2: number): Float64Array {
  const key = `${n1},${n2}`;
  let cum = nullCache.get(key);
  if (cum) return cum;
  const n = n1 + n2;
  const maxSum = (n * (n + 1)) / 2;
  const width = maxSum + 1;
  const dp = new Float64Array((n1 + 1) * width);
  dp[0] = 1;
  let seen = 0;
  for (let r = 1; r <= n; r++) {
    seen += r;
    for (let k = Math.min(n1, r); k >= 1; k--) {
      const row = k * width;
      const prev = (k - 1) * width;
      for (let s = seen; s >= r; s--) dp[row + s] += dp[prev + s - r];
    }
  }
  cum = new Float64Array(width);
  let acc = 0;
  for (let s = 0; s < width; s++) cum[s] = acc += dp[n1 * width + s];
  nullCache.set(key, cum);
  return cum;
}

/**
 * The same two-sided Mann-Whitney p-value as {@link mannWhitney}, with the
 * exact null distribution cached per (n1, n2) when the pooled sample has no
 * ties (continuous simulated data); anything else goes to mannWhitney. The
 * Monte Carlo runs tens of thousands of tests; the unit tests check it equals
 * mannWhitney.
 */
export const fastMannWhitney: TwoSampleTest = (x, y) => {
  const n1 = x.length;
  const n2 = y.length;
  const n = n1 + n2;
  if (n1 === 0 || n2 === 0 || n > 50) return mannWhitney(x, y);
  const pooled = [...x, ...y].sort((a, b) => a - b);
  for (let i = 1; i < n; i++) if (pooled[i] === pooled[i - 1] || !Number.isFinite(pooled[i])) return mannWhitney(x, y);
  if (!Number.isFinite(pooled[0])) return mannWhitney(x, y);
  let u = 0;
  for (const a of x) for (const b of y) if (a > b) u++;
  const w = u + (n1 * (n1 + 1)) / 2;
  const cum = rankSumCdf(n1, n2);
  const total = cum[cum.length - 1];
  const le = cum[w];
  const ge = total - (w > 0 ? cum[w - 1] : 0);
  const mu = (n1 * n2) / 2;
  const direction: MannWhitney['direction'] = u < mu ? 1 : u > mu ? -1 : 0;
  return { p: Math.min(1, (2 * Math.min(le, ge)) / total), method: 'exact', direction };
};

// ---------------------------------------------------------------- one sequential comparison

/** A metric of the family under decision. */
export interface FamilyMetric {
  key: string;
  higherIsBetter: boolean;
  threshold: MetricThreshold;
}

/** Outcome of one sequential comparison. */
export interface SequentialOutcome {
  /** Looks made (1..K). */
  looks: number;
  /** Rounds per side used at the last look. */
  rounds: number;
  stoppedBy: 'worse' | 'decided' | 'cap';
  /** Verdict per metric at the last look. */
  verdicts: Verdict[];
}

/**
 * Run the plan on one pair of round tables (rows = rounds in run order,
 * columns = the family's metrics; NaN = missing). Each side needs at least the
 * plan's cap of rows; look k uses the first schedule[k] rows of each side.
 */
export function sequentialCompare(
  oldRows: readonly (readonly number[])[],
  newRows: readonly (readonly number[])[],
  family: readonly FamilyMetric[],
  plan: SequentialPlan,
  test: TwoSampleTest = fastMannWhitney,
): SequentialOutcome {
  const cap = plan.schedule[plan.schedule.length - 1];
  if (oldRows.length < cap || newRows.length < cap) throw new RangeError(`sequentialCompare needs ${cap} rounds per side (got ${oldRows.length} and ${newRows.length})`);
  const alpha = lookAlpha(plan);
  for (let look = 0; ; look++) {
    const n = plan.schedule[look];
    const inputs = family.map((m, j) => ({ old: oldRows.slice(0, n).map((r) => r[j]), new: newRows.slice(0, n).map((r) => r[j]), higherIsBetter: m.higherIsBetter, threshold: m.threshold }));
    const verdicts = judgeFamily(inputs, { alpha, correction: plan.correction, test }).map((j) => j.verdict);
    const step = nextStep(plan, look, verdicts);
    if (step.action === 'stop') return { looks: look + 1, rounds: n, stoppedBy: step.reason, verdicts };
  }
}

// ---------------------------------------------------------------- error rates by simulation or resampling

/** A seeded uniform generator on [0, 1) (mulberry32): reproducible Monte Carlo. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal deviate from a uniform generator (Box-Muller). */
export function gaussian(rand: () => number): number {
  let u = 0;
  while (u === 0) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** One comparison's data: `cap` rows per side. */
export type DrawPair = (rand: () => number, cap: number) => { old: number[][]; new: number[][] };

/** Rates over many sequential comparisons. */
export interface Rates {
  comparisons: number;
  /** Comparisons with a `worse` verdict on any metric. */
  anyWorse: number;
  /** Comparisons with a `better` or `worse` verdict on any metric (a false alarm when nothing changed). */
  anySignificant: number;
  /** Comparisons with a `worse` verdict on every target metric (a detection when the targets were slowed). */
  targetsWorse: number;
  /** Comparisons that ended at the cap with a metric still unknown. */
  endedUnknown: number;
  /** Mean rounds per side used. */
  meanRounds: number;
  /** Comparisons that stopped after each look (index = look - 1). */
  stoppedAtLook: number[];
}

/**
 * Run `comparisons` sequential comparisons on pairs drawn by `draw` and count
 * the outcomes. `targets` = indexes of the family's metrics that a detection
 * must flag `worse`.
 */
export function estimateRates(draw: DrawPair, family: readonly FamilyMetric[], plan: SequentialPlan, opts: { comparisons: number; seed: number; targets: number[] }): Rates {
  const rand = mulberry32(opts.seed);
  const cap = plan.schedule[plan.schedule.length - 1];
  const r: Rates = { comparisons: opts.comparisons, anyWorse: 0, anySignificant: 0, targetsWorse: 0, endedUnknown: 0, meanRounds: 0, stoppedAtLook: plan.schedule.map(() => 0) };
  let rounds = 0;
  for (let i = 0; i < opts.comparisons; i++) {
    const pair = draw(rand, cap);
    const o = sequentialCompare(pair.old, pair.new, family, plan);
    if (o.verdicts.includes('worse')) r.anyWorse++;
    if (o.verdicts.some((v) => v === 'worse' || v === 'better')) r.anySignificant++;
    if (opts.targets.length && opts.targets.every((t) => o.verdicts[t] === 'worse')) r.targetsWorse++;
    if (o.stoppedBy === 'cap' && o.verdicts.includes('unknown')) r.endedUnknown++;
    r.stoppedAtLook[o.looks - 1]++;
    rounds += o.rounds;
  }
  r.meanRounds = opts.comparisons ? rounds / opts.comparisons : 0;
  return r;
}

/**
 * Simulated metrics: every round of every metric is base x (1 + cv x N(0,1)),
 * independent; the new side's target metrics are multiplied by
 * (1 + shiftPct / 100). Known noise, known shift.
 */
export function simulatedDraw(metrics: number, cv: number, shiftPct: number, targets: readonly number[]): DrawPair {
  const shift = 1 + shiftPct / 100;
  const row = (rand: () => number, shifted: boolean) => Array.from({ length: metrics }, (_, j) => 100 * (1 + cv * gaussian(rand)) * (shifted && targets.includes(j) ? shift : 1));
  return (rand, cap) => ({ old: Array.from({ length: cap }, () => row(rand, false)), new: Array.from({ length: cap }, () => row(rand, true)) });
}

/**
 * Resampling of real per-round data (rows = rounds of a long interleaved run,
 * columns = metrics; whole rounds are drawn so the metrics' correlation within
 * a round is kept). A/A (`pool.b` absent): 2 x cap distinct rounds of `a`
 * are drawn, half per side; the new side's target metrics are multiplied by
 * (1 + shiftPct / 100) (0 = a pure A/A). With `b` (rounds of the slowed build
 * from the same interleaved run) the old side comes from `a` and the new from
 * `b`, unshifted. Without enough rounds (fewer than 2 x cap, or cap per pool)
 * rounds are drawn with replacement, a weaker check: {@link poolDrawsWithReplacement} says so.
 */
export function resampledDraw(pool: { a: readonly (readonly number[])[]; b?: readonly (readonly number[])[] }, shiftPct: number, targets: readonly number[]): DrawPair {
  const shift = 1 + shiftPct / 100;
  const pick = (rand: () => number, rows: readonly (readonly number[])[], k: number, replace: boolean): number[][] => {
    if (replace) return Array.from({ length: k }, () => [...rows[Math.floor(rand() * rows.length)]]);
    const idx = rows.map((_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(rand() * (idx.length - i));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return idx.slice(0, k).map((i) => [...rows[i]]);
  };
  const scale = (rows: number[][]) => rows.map((r) => r.map((v, j) => (targets.includes(j) ? v * shift : v)));
  return (rand, cap) => {
    if (pool.b) {
      return { old: pick(rand, pool.a, cap, pool.a.length < cap), new: scale(pick(rand, pool.b, cap, pool.b.length < cap)) };
    }
    const both = pick(rand, pool.a, 2 * cap, pool.a.length < 2 * cap);
    return { old: both.slice(0, cap), new: scale(both.slice(cap)) };
  };
}

/**
 * The round table of one mode in one or more results: one row per round (in
 * file order, then round order), one column per metric key, NaN where the
 * round has no value. Rounds of several files of the same build are pooled:
 * a long interleaved run may be written in pieces.
 */
export function roundTable(results: readonly BenchResult[], mode: string, keys: readonly string[]): number[][] {
  const rows: number[][] = [];
  for (const r of results) {
    const cols = keys.map((k) => perRoundValues(r, mode, k));
    for (let round = 0; round < r.options.rounds; round++) {
      const row = cols.map((c) => c[round] ?? Number.NaN);
      if (row.some(Number.isFinite)) rows.push(row);
    }
  }
  return rows;
}

/** Whether {@link resampledDraw} must draw with replacement for this pool and cap. */
export function poolDrawsWithReplacement(pool: { a: readonly unknown[]; b?: readonly unknown[] }, cap: number): boolean {
  return pool.b ? pool.a.length < cap || pool.b.length < cap : pool.a.length < 2 * cap;
}
