/**
 * `vxtap bench compare OLD NEW`: regression tracking between two bench results,
 * in the manner of benchstat. For every mode present in both results and every
 * metric of the metric table (bench/result.ts), the per-round values of each
 * side are compared: medians, the change in percent, a two-sided Mann-Whitney U
 * test on the rounds and a verdict. A difference is only called `better` or
 * `worse` when p <= alpha; otherwise it is `~`. With few rounds the test cannot
 * reach alpha at all (3 vs 3 rounds: the smallest possible two-sided p is
 * 2 / C(6,3) = 0.1), and the output says so instead of pretending.
 *
 * Pure code: the CLI (src/cli/bench-compare.ts) reads and validates the files
 * and passes parsed results in; everything here is a function of its arguments.
 * Markdown and JSON are renderers over one {@link Comparison} object.
 */
import { metricDefs, perRoundValues, type BenchResult, type MetricDef } from './result.js';
import { median } from './stats.js';

/** Identifier and version of the `--json` output. */
export const COMPARE_SCHEMA = 'vxtap-bench-compare';
export const COMPARE_SCHEMA_VERSION = 1;

/** Defaults of the comparison (one place). */
export const COMPARE_DEFAULTS = {
  /** Significance level of the two-sided Mann-Whitney test. */
  alpha: 0.05,
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
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

/** Midranks (1-based, ties get the mean of their ranks) of `values`, and the tie group sizes. */
export function midranks(values: readonly number[]): { ranks: number[]; tieSizes: number[] } {
  const idx = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const ranks = new Array<number>(values.length);
  const tieSizes: number[] = [];
  for (let i = 0; i < idx.length; ) {
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

/** One side of a row: the per-round values that were present, and their median. */
export interface CompareSide {
  n: number;
  median: number | null;
  values: number[];
}

/** Verdict of one row. */
export type Verdict = '~' | 'better' | 'worse';

/** One mode x metric comparison. */
export interface CompareRow {
  mode: string;
  metric: string;
  table: string;
  title: string;
  unit: string;
  higherIsBetter: boolean;
  old: CompareSide;
  new: CompareSide;
  /** (new median - old median) / |old median| * 100; null when a median is missing or the old median is 0 and the new is not. */
  deltaPct: number | null;
  /** Two-sided Mann-Whitney p-value; null when a side has no values. */
  p: number | null;
  method: MannWhitney['method'] | null;
  verdict: Verdict;
  /** Why the verdict is `~` regardless of p (too few rounds, no data on one side, all samples equal); null otherwise. */
  note: string | null;
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
  old: RunRef;
  new: RunRef;
  /** Differences in environment or options that make the comparison doubtful, results not complete, modes not comparable. */
  warnings: string[];
  rows: CompareRow[];
  counts: { better: number; worse: number; same: number };
}

/** Options of {@link compareResults}. */
export interface CompareOptions {
  /** Significance level, 0 < alpha < 1 (default {@link COMPARE_DEFAULTS}.alpha). */
  alpha: number;
  /** Metric keys to compare; null = all of the metric table. */
  metrics: string[] | null;
}

/** Raw option values as the CLI receives them (strings from flags or environment). */
export interface RawCompareOptions {
  alpha?: string;
  metrics?: string;
  failOnRegression?: string;
  json?: boolean | string;
}

/** Validated CLI options. */
export interface CompareCliOptions extends CompareOptions {
  /** Exit 1 when a significant `worse` change exceeds this many percent; null = never. */
  failOnRegressionPct: number | null;
  json: boolean;
}

/** Parse and validate the CLI options; returns an Error naming the option when one is bad. */
export function parseCompareOptions(raw: RawCompareOptions): CompareCliOptions | Error {
  const alpha = raw.alpha === undefined ? COMPARE_DEFAULTS.alpha : Number(raw.alpha);
  if (!Number.isFinite(alpha) || alpha <= 0 || alpha >= 1) return new TypeError(`--alpha must be a number between 0 and 1 exclusive (got "${raw.alpha}")`);
  let failOnRegressionPct: number | null = null;
  if (raw.failOnRegression !== undefined) {
    failOnRegressionPct = Number(String(raw.failOnRegression).replace(/%$/, ''));
    if (String(raw.failOnRegression).trim() === '' || !Number.isFinite(failOnRegressionPct) || failOnRegressionPct < 0) {
      return new TypeError(`--fail-on-regression must be a percentage >= 0, e.g. 5 or 5% (got "${raw.failOnRegression}")`);
    }
  }
  let metrics: string[] | null = null;
  if (raw.metrics !== undefined) {
    metrics = String(raw.metrics).split(',').map((m) => m.trim()).filter(Boolean);
    if (metrics.length === 0) return new TypeError('--metrics must list at least one metric key, e.g. tcp1Gbps,latIdleP50');
  }
  const json = raw.json === true || raw.json === 'true' || raw.json === '1';
  return { alpha, metrics, failOnRegressionPct, json };
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
  for (const [label, r] of [[oldLabel, oldR], [newLabel, newR]] as const) {
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
  const newIds = new Set(newR.modes.map((m) => m.id));
  const oldIds = new Set(oldR.modes.map((m) => m.id));
  for (const m of oldR.modes) if (!newIds.has(m.id)) w.push(`mode ${m.id} only in ${oldLabel} (not compared)`);
  for (const m of newR.modes) if (!oldIds.has(m.id)) w.push(`mode ${m.id} only in ${newLabel} (not compared)`);
  for (const [label, r] of [[oldLabel, oldR], [newLabel, newR]] as const) {
    for (const m of r.modes) if (!m.available && oldIds.has(m.id) && newIds.has(m.id)) w.push(`mode ${m.id} unavailable in ${label}: ${m.unavailableReason ?? 'no reason recorded'}`);
  }
  return w;
}

function side(r: BenchResult, mode: string, key: string): CompareSide {
  const values = perRoundValues(r, mode, key).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return { n: values.length, median: median(values), values };
}

function fmtP(p: number): string {
  return p.toFixed(3);
}

/**
 * Compare two validated results. Rows: every mode present in both (old's
 * order) x every shared metric (or `options.metrics`); a mode-metric without
 * values on either side is left out. Throws a TypeError for an unknown metric
 * key (check with {@link sharedMetrics} first to get it as a value).
 */
export function compareResults(oldIn: { label: string; result: BenchResult }, newIn: { label: string; result: BenchResult }, options: Partial<CompareOptions> = {}): Comparison {
  const alpha = options.alpha ?? COMPARE_DEFAULTS.alpha;
  const oldR = oldIn.result;
  const newR = newIn.result;
  const defs = sharedMetrics(oldR, newR, options.metrics ?? null);
  if (defs instanceof Error) throw defs;
  const newModes = new Set(newR.modes.map((m) => m.id));
  const rows: CompareRow[] = [];
  for (const mode of oldR.modes.map((m) => m.id).filter((id) => newModes.has(id))) {
    for (const def of defs) {
      const o = side(oldR, mode, def.key);
      const n = side(newR, mode, def.key);
      if (o.n === 0 && n.n === 0) continue;
      let deltaPct: number | null = null;
      if (o.median !== null && n.median !== null) {
        if (o.median !== 0) deltaPct = ((n.median - o.median) / Math.abs(o.median)) * 100;
        else if (n.median === 0) deltaPct = 0;
      }
      let p: number | null = null;
      let method: CompareRow['method'] = null;
      let verdict: Verdict = '~';
      let note: string | null = null;
      if (o.n === 0 || n.n === 0) {
        note = `no data in ${o.n === 0 ? 'OLD' : 'NEW'}`;
      } else {
        const t = mannWhitney(o.values, n.values);
        p = t.p;
        method = t.method;
        const minP = smallestPossibleP(o.n, n.n);
        const all = [...o.values, ...n.values];
        if (minP > alpha) {
          note = `n=${o.n}+${n.n} rounds can never reach p <= ${alpha} (smallest possible p = ${fmtP(minP)}); run both with --rounds ${Math.max(COMPARE_DEFAULTS.recommendedRounds, minRoundsFor(alpha))} or more`;
        } else if (all.every((v) => v === all[0])) {
          note = 'all samples are equal';
        } else if (t.p <= alpha && t.direction !== 0) {
          const up = t.direction > 0;
          verdict = up === def.higherIsBetter ? 'better' : 'worse';
        }
      }
      rows.push({ mode, metric: def.key, table: def.table, title: def.title, unit: def.unit, higherIsBetter: def.higherIsBetter, old: o, new: n, deltaPct, p, method, verdict, note });
    }
  }
  const ref = (label: string, r: BenchResult): RunRef => ({ label, runId: r.runId, status: r.status, rounds: r.options.rounds, commit: r.environment?.git.commit ?? null });
  return {
    schema: COMPARE_SCHEMA,
    schemaVersion: COMPARE_SCHEMA_VERSION,
    alpha,
    test: 'Mann-Whitney U, two-sided',
    old: ref(oldIn.label, oldR),
    new: ref(newIn.label, newR),
    warnings: contextWarnings(oldR, newR),
    rows,
    counts: {
      better: rows.filter((r) => r.verdict === 'better').length,
      worse: rows.filter((r) => r.verdict === 'worse').length,
      same: rows.filter((r) => r.verdict === '~').length,
    },
  };
}

/**
 * Rows that fail `--fail-on-regression PCT`: verdict `worse` (significant) and a
 * change larger than `pct` percent in the bad direction. A significant rise
 * from an old median of 0 (delta undefined) counts as exceeding any PCT.
 */
export function regressions(c: Comparison, pct: number): CompareRow[] {
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

/** Render the comparison as Markdown: header, warnings, the table, footnotes for `~` reasons. */
export function renderCompareMarkdown(c: Comparison): string {
  const out: string[] = [];
  out.push('# vxtap bench compare', '');
  for (const [name, r] of [['old', c.old], ['new', c.new]] as const) {
    out.push(`- ${name}: \`${r.label}\` (run ${r.runId}, commit ${short(r.commit)}, ${r.rounds} round${r.rounds === 1 ? '' : 's'}, ${r.status})`);
  }
  out.push(`- test: ${c.test} over the per-round values, alpha = ${c.alpha}; \`~\` = no significant difference`, '');
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
  out.push('| mode | metric | old | new | delta | p | verdict |', '| --- | --- | ---: | ---: | ---: | ---: | --- |');
  for (const r of c.rows) {
    const p = r.p === null ? 'n/a' : `${fmtP(r.p)} (n=${r.old.n}+${r.new.n})`;
    out.push(`| ${r.mode} | ${r.metric} (${r.unit}) | ${formatValue(r.old.median)} | ${formatValue(r.new.median)} | ${formatDelta(r.deltaPct)} | ${p} | ${r.verdict}${noteRef(r.note)} |`);
  }
  out.push('');
  for (const [i, n] of notes.entries()) out.push(`[${i + 1}] ${n}`);
  if (notes.length) out.push('');
  out.push(`${c.counts.better} better, ${c.counts.worse} worse, ${c.counts.same} ~ (old and new are medians over rounds; metric keys as in result.json derived.metrics)`, '');
  return out.join('\n');
}
