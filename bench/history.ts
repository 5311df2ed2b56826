/**
 * `vxtap bench history DIR`: change points in a history of bench results, so
 * that a slow drift no pairwise comparison catches is still found.
 *
 * Results are grouped by environment fingerprint (hosts, kernel, CPU model and
 * count, profile, modes, MTU, netem, pinning): figures from different
 * machines or set-ups are never one series. Within a group, each mode x metric
 * is a series of per-run medians over rounds, oldest run first, and its change
 * points are found with E-divisive means:
 *
 *   D. S. Matteson and N. A. James, "A Nonparametric Approach for Multiple
 *   Change Point Analysis of Multivariate Data", JASA 109(505):334-345, 2014;
 *   used for performance tests by D. Daly et al., "The Use of Change Point
 *   Detection to Identify Software Performance Regressions in a Continuous
 *   Integration System", ICPE 2020 (MongoDB), and by M. Fleming et al.,
 *   "Hunter: Using Change Point Detection to Hunt for Performance
 *   Regressions", ICPE 2023 (Hunter, now Apache Otava).
 *
 * Implemented here from the paper's description (alpha = 1): for a segment
 * split at tau into X (left) and Y (right) of sizes m and n, the energy
 * statistic is Q = m n / (m + n) x (2 mean|x - y| - mean|x - x'| - mean|y - y'|)
 * (means over all cross pairs and all distinct within pairs). The split with
 * the largest Q over all current segments is the candidate; a permutation test
 * (values shuffled within each current segment, the largest Q recomputed,
 * p = (#{Q_perm >= Q} + 1) / (R + 1)) accepts it when p <= the significance
 * level, and the search repeats on the new segments until a candidate is
 * rejected. As in Hunter, Y runs to the end of its segment (the paper's
 * extra kappa search is not done). No distributional assumption: the runs'
 * noise on this kind of machine is neither normal nor constant.
 *
 * Pure code except {@link readHistoryDir} (lenient: bad files are listed as
 * skipped) and {@link loadHistoryDir} (strict, for the report: a bad file is
 * an input error); Markdown and JSON are renderers over one {@link History};
 * bench/report/compare.ts draws it (the trend view with change points);
 * {@link trendView} is a slim structure of the same data.
 */
import { readdirSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32 } from './decide.js';
import { loadResult, ResultInputError } from './report/migrate.js';
import { metricDefs, perRoundValues, type BenchResult, type MetricDef } from './result.js';
import { cv as cvOf, median } from './stats.js';
import { validateResult } from './validate.js';

/** Identifier and version of the `--json` output. */
export const HISTORY_SCHEMA = 'vxtap-bench-history';
export const HISTORY_SCHEMA_VERSION = 1;

/** Defaults of the change-point search (one place). */
export const HISTORY_DEFAULTS = {
  /** Permutation-test level per accepted change point. */
  significance: 0.01,
  /** Permutations per test (p resolution 1 / (R + 1)). */
  permutations: 499,
  /** Fewest runs on each side of a change point: a new level is confirmed by 3 runs. */
  minSize: 3,
  seed: 1,
};

/** Options of the change-point search. */
export interface EDivisiveOptions {
  significance: number;
  permutations: number;
  minSize: number;
  seed: number;
}

/** A change point: the index of the first value of the new segment. */
export interface ChangePoint {
  index: number;
  /** Permutation p-value when it was accepted. */
  p: number;
  /** The energy statistic Q of the split. */
  q: number;
}

/**
 * Best split of `v[from..to)`: tau (absolute index of the first value of the
 * right part) and its energy statistic Q, in O(n^2) with running pair sums;
 * null when the segment is shorter than 2 x minSize.
 */
export function bestSplit(v: readonly number[], from: number, to: number, minSize: number): { tau: number; q: number } | null {
  const len = to - from;
  if (len < 2 * minSize) return null;
  // rowSum[i] = sum_j |v_i - v_j| over the segment; maintained incrementally as tau moves right.
  let total = 0;
  for (let i = from; i < to; i++) for (let j = i + 1; j < to; j++) total += Math.abs(v[i] - v[j]);
  let wl = 0; // sum over pairs inside [from, tau)
  let wr = total; // sum over pairs inside [tau, to)
  let best: { tau: number; q: number } | null = null;
  for (let tau = from + 1; tau <= to - minSize; tau++) {
    const k = tau - 1; // moves from the right part to the left part
    let toLeft = 0;
    let toRight = 0;
    for (let i = from; i < k; i++) toLeft += Math.abs(v[i] - v[k]);
    for (let j = k + 1; j < to; j++) toRight += Math.abs(v[k] - v[j]);
    wl += toLeft;
    wr -= toRight;
    const m = tau - from;
    const n = to - tau;
    if (m < minSize) continue;
    const between = total - wl - wr;
    const e = (2 * between) / (m * n) - (m > 1 ? wl / ((m * (m - 1)) / 2) : 0) - (n > 1 ? wr / ((n * (n - 1)) / 2) : 0);
    const q = ((m * n) / (m + n)) * e;
    if (!best || q > best.q) best = { tau, q };
  }
  return best;
}

/** The largest Q over all segments given by sorted cut points. */
function bestOverSegments(v: readonly number[], cuts: readonly number[], minSize: number): { tau: number; q: number } | null {
  const bounds = [0, ...cuts, v.length];
  let best: { tau: number; q: number } | null = null;
  for (let s = 0; s + 1 < bounds.length; s++) {
    const b = bestSplit(v, bounds[s], bounds[s + 1], minSize);
    if (b && (!best || b.q > best.q)) best = b;
  }
  return best;
}

/**
 * E-divisive means change points of a univariate series (see the module
 * comment). Non-finite values must be removed by the caller. Returns the
 * accepted change points in index order.
 */
export function eDivisive(values: readonly number[], opts: Partial<EDivisiveOptions> = {}): ChangePoint[] {
  const o = { ...HISTORY_DEFAULTS, ...opts };
  const rand = mulberry32(o.seed);
  const cuts: number[] = [];
  const found: ChangePoint[] = [];
  for (;;) {
    const cand = bestOverSegments(values, cuts, o.minSize);
    if (!cand || !(cand.q > 0)) break;
    const bounds = [0, ...cuts, values.length];
    let atLeast = 0;
    const perm = [...values];
    for (let r = 0; r < o.permutations; r++) {
      for (let s = 0; s + 1 < bounds.length; s++) {
        for (let i = bounds[s + 1] - 1; i > bounds[s]; i--) {
          const j = bounds[s] + Math.floor(rand() * (i - bounds[s] + 1));
          [perm[i], perm[j]] = [perm[j], perm[i]];
        }
      }
      const b = bestOverSegments(perm, cuts, o.minSize);
      if (b && b.q >= cand.q) atLeast++;
    }
    const p = (atLeast + 1) / (o.permutations + 1);
    if (p > o.significance) break;
    cuts.push(cand.tau);
    cuts.sort((a, b) => a - b);
    found.push({ index: cand.tau, p, q: cand.q });
  }
  return found.sort((a, b) => a.index - b.index);
}

// ---------------------------------------------------------------- results into series

/** What must match for runs to be one history. */
export interface Fingerprint {
  hosts: string[];
  kernel: string | null;
  cpuModel: string | null;
  cpuCount: number | null;
  profile: string;
  modes: string[];
  mtu: number;
  netem: BenchResult['options']['netem'];
  pin: string;
  /** Non-default --endpoints / --underlay-offloads / --contention (absent otherwise, so older fingerprints are unchanged). */
  variant?: string;
}

/** The environment fingerprint of a result. */
export function fingerprint(r: BenchResult): Fingerprint {
  const e = r.environment;
  const hosts = r.topology.kind === 'ssh-hosts' ? (r.hosts?.map((h) => h.hostname || h.ssh) ?? r.topology.hosts.map((h) => h.namespace)) : [e?.hostname ?? 'unknown'];
  const o = r.options;
  // Pod-to-pod, no-tunnel-TSO and contended runs measure other things than the default run: never one series with it.
  const variant = [
    o.endpoints === 'pod' ? 'endpoints pod' : '',
    o.underlayOffloads && o.underlayOffloads !== 'full' ? `underlay-offloads ${o.underlayOffloads}` : '',
    o.contention ? `contention ${o.contention.pct}%` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return {
    hosts,
    kernel: e?.kernel ?? null,
    cpuModel: e?.cpuModel ?? null,
    cpuCount: e?.cpuCount ?? null,
    profile: o.profile,
    modes: [...o.modes].sort(),
    mtu: o.mtu,
    netem: o.netem,
    pin: o.pin,
    ...(variant ? { variant } : {}),
  };
}

/** A short human label of a fingerprint. */
export function fingerprintLabel(f: Fingerprint): string {
  const netem = Object.entries(f.netem)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(' ');
  return `${f.hosts.join(' + ')}, kernel ${f.kernel ?? '?'}, ${f.cpuCount ?? '?'} x ${f.cpuModel ?? '?'}, profile ${f.profile}, modes ${f.modes.join(',')}, MTU ${f.mtu}${netem ? `, ${netem}` : ''}, pin ${f.pin}${f.variant ? `, ${f.variant}` : ''}`;
}

/** One run in a history. */
export interface HistoryRun {
  file: string;
  runId: string;
  startedAt: string;
  commit: string | null;
  status: BenchResult['status'];
}

/** A segment between change points: runs [from, to) and their median. */
export interface Segment {
  from: number;
  to: number;
  median: number;
}

/** A change point of one series, read for people. */
export interface SeriesChange extends ChangePoint {
  runId: string;
  commit: string | null;
  startedAt: string;
  before: number;
  after: number;
  /** (after - before) / |before| x 100 on the segment medians; null when before is 0. */
  changePct: number | null;
  kind: 'regression' | 'progression';
}

/** One mode x metric over the runs of a group. */
export interface Series {
  mode: string;
  metric: string;
  title: string;
  unit: string;
  higherIsBetter: boolean;
  /** Per run (index = position in the group's runs): median over rounds, null when not measured. */
  values: (number | null)[];
  /** Per run: CV over rounds (null when fewer than 2 rounds). */
  cvs: (number | null)[];
  /** Change points, indexes into the group's runs. */
  changes: SeriesChange[];
  segments: Segment[];
  /** Why no search was made (too few runs), or null. */
  note: string | null;
}

/** Runs of one fingerprint, oldest first, and their series. */
export interface HistoryGroup {
  fingerprint: Fingerprint;
  label: string;
  runs: HistoryRun[];
  series: Series[];
}

/** The whole history analysis (the `--json` output). */
export interface History {
  schema: typeof HISTORY_SCHEMA;
  schemaVersion: typeof HISTORY_SCHEMA_VERSION;
  method: string;
  options: EDivisiveOptions;
  groups: HistoryGroup[];
  /** Files skipped (unreadable, not a result, still running) with the reason. */
  skipped: { file: string; reason: string }[];
  counts: { runs: number; groups: number; changes: number; regressions: number };
}

/** Options of {@link analyzeHistory}. */
export interface HistoryOptions extends EDivisiveOptions {
  /** Metric keys to analyse; null = every metric of each group's metric table. */
  metrics: string[] | null;
}

/**
 * Group results by fingerprint (runs sorted by start time) and find change
 * points per mode and metric. `entries` are parsed, schema-valid results.
 */
export function analyzeHistory(entries: readonly { file: string; result: BenchResult }[], options: Partial<HistoryOptions> = {}, skipped: { file: string; reason: string }[] = []): History {
  const o: HistoryOptions = { ...HISTORY_DEFAULTS, metrics: null, ...options };
  const byFp = new Map<string, { file: string; result: BenchResult }[]>();
  for (const e of entries) {
    const key = JSON.stringify(fingerprint(e.result));
    byFp.set(key, [...(byFp.get(key) ?? []), e]);
  }
  const groups: HistoryGroup[] = [];
  for (const list of byFp.values()) {
    list.sort((a, b) => a.result.startedAt.localeCompare(b.result.startedAt) || a.file.localeCompare(b.file));
    const fp = fingerprint(list[0].result);
    const runs: HistoryRun[] = list.map((e) => ({ file: e.file, runId: e.result.runId, startedAt: e.result.startedAt, commit: e.result.environment?.git.commit ?? null, status: e.result.status }));
    const defs: MetricDef[] = [];
    for (const e of list) for (const d of metricDefs(e.result.profile)) if (!defs.some((x) => x.key === d.key)) defs.push(d);
    const modes = [...new Set(list.flatMap((e) => e.result.modes.map((m) => m.id)))];
    const series: Series[] = [];
    for (const mode of modes) {
      for (const def of defs.filter((d) => !o.metrics || o.metrics.includes(d.key))) {
        const perRun = list.map((e) => perRoundValues(e.result, mode, def.key).filter((v): v is number => typeof v === 'number' && Number.isFinite(v)));
        const values = perRun.map((v) => median(v));
        if (values.every((v) => v === null)) continue;
        series.push(
          analyzeSeries(
            mode,
            def,
            values,
            perRun.map((v) => (v.length >= 2 ? cvOf(v) : null)),
            runs,
            o,
          ),
        );
      }
    }
    groups.push({ fingerprint: fp, label: fingerprintLabel(fp), runs, series });
  }
  groups.sort((a, b) => b.runs.length - a.runs.length || a.label.localeCompare(b.label));
  const changes = groups.flatMap((g) => g.series.flatMap((s) => s.changes));
  return {
    schema: HISTORY_SCHEMA,
    schemaVersion: HISTORY_SCHEMA_VERSION,
    method: 'E-divisive means (Matteson & James 2014), alpha = 1, permutation test per change point',
    options: { significance: o.significance, permutations: o.permutations, minSize: o.minSize, seed: o.seed },
    groups,
    skipped,
    counts: { runs: entries.length, groups: groups.length, changes: changes.length, regressions: changes.filter((c) => c.kind === 'regression').length },
  };
}

/** Change points and segments of one series (runs without a value are skipped by the search and keep their index). */
export function analyzeSeries(mode: string, def: MetricDef, values: (number | null)[], cvs: (number | null)[], runs: readonly HistoryRun[], o: EDivisiveOptions): Series {
  const idx = values.map((v, i) => (v === null ? -1 : i)).filter((i) => i >= 0);
  const present = idx.map((i) => values[i] as number);
  const base = { mode, metric: def.key, title: def.title, unit: def.unit, higherIsBetter: def.higherIsBetter, values, cvs };
  if (present.length < 2 * o.minSize) {
    const all = median(present) ?? 0;
    return {
      ...base,
      changes: [],
      segments: present.length ? [{ from: 0, to: values.length, median: all }] : [],
      note: `${present.length} run(s) with a value; a change point needs ${2 * o.minSize} or more (${o.minSize} on each side)`,
    };
  }
  const cps = eDivisive(present, o);
  const bounds = [0, ...cps.map((c) => c.index), present.length];
  const segs = bounds.slice(0, -1).map((from, s) => ({ from, to: bounds[s + 1], median: median(present.slice(from, bounds[s + 1])) as number }));
  // Map indexes among present values back to run indexes.
  const runIndex = (k: number) => (k >= idx.length ? values.length : idx[k]);
  const segments = segs.map((s) => ({ from: runIndex(s.from), to: runIndex(s.to), median: s.median }));
  const changes: SeriesChange[] = cps.map((c, k) => {
    const before = segs[k].median;
    const after = segs[k + 1].median;
    const changePct = before !== 0 ? ((after - before) / Math.abs(before)) * 100 : null;
    const i = runIndex(c.index);
    const up = after > before;
    return { ...c, index: i, runId: runs[i].runId, commit: runs[i].commit, startedAt: runs[i].startedAt, before, after, changePct, kind: up === def.higherIsBetter ? 'progression' : 'regression' };
  });
  return { ...base, changes, segments, note: null };
}

// ---------------------------------------------------------------- I/O

/**
 * Read every `result.json` under `dir` (recursively), parse and schema-check
 * it. Unreadable, invalid and still-running results are returned in
 * `skipped` with the reason, never silently dropped. Throws when `dir` itself
 * cannot be read.
 */
export async function readHistoryDir(dir: string): Promise<{ entries: { file: string; result: BenchResult }[]; skipped: { file: string; reason: string }[] }> {
  const files: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && e.name === 'result.json') files.push(p);
    }
  };
  await walk(dir);
  files.sort();
  const entries: { file: string; result: BenchResult }[] = [];
  const skipped: { file: string; reason: string }[] = [];
  for (const f of files) {
    const rel = path.relative(dir, f);
    let v: unknown;
    try {
      v = JSON.parse(await readFile(f, 'utf8'));
    } catch (err) {
      skipped.push({ file: rel, reason: `unreadable or not JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` });
      continue;
    }
    const errs = validateResult(v);
    if (errs.length) {
      skipped.push({ file: rel, reason: `not a valid bench result: ${errs[0]}${errs.length > 1 ? ` (+${errs.length - 1} more)` : ''}` });
      continue;
    }
    const r = v as BenchResult;
    if (r.status === 'running') {
      skipped.push({ file: rel, reason: 'status "running" (killed or still running)' });
      continue;
    }
    entries.push({ file: rel, result: r });
  }
  return { entries, skipped };
}

/**
 * Read a history directory for the report (`vxtap report --history DIR`,
 * `vxtap bench ci --history DIR`), strictly: every `result.json` under `dir`
 * (recursively) is read through the report's reader (any schema version,
 * migrated, `derived` recomputed), and anything that makes the history
 * untrustworthy is a {@link ResultInputError} naming the path (exit 2): `dir`
 * missing or not a directory, a subdirectory or file that cannot be read, a
 * file that is not a valid result, and, unless `allowEmpty`, no finished result
 * at all. Results still marked `running` (a killed run) are returned in
 * `skipped`: a history may hold one, and it has no figures to draw.
 * (`vxtap bench history` uses the lenient {@link readHistoryDir}, which lists
 * bad files instead.)
 */
export function loadHistoryDir(dir: string, opts: { allowEmpty?: boolean } = {}): { entries: { file: string; result: BenchResult }[]; skipped: { file: string; reason: string }[] } {
  const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    throw new ResultInputError(`${dir}: cannot read (${code(err)})`);
  }
  if (!isDir) throw new ResultInputError(`${dir}: not a directory (a history is a directory of result.json files)`);
  const files: string[] = [];
  const walk = (d: string) => {
    let list;
    try {
      list = readdirSync(d, { withFileTypes: true });
    } catch (err) {
      throw new ResultInputError(`${d}: cannot read (${code(err)})`);
    }
    for (const e of list) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name === 'result.json') files.push(p);
    }
  };
  walk(dir);
  files.sort();
  const entries: { file: string; result: BenchResult }[] = [];
  const skipped: { file: string; reason: string }[] = [];
  for (const f of files) {
    const r = loadResult(f);
    if (r.status === 'running') skipped.push({ file: path.relative(dir, f), reason: 'status "running" (killed or still running)' });
    else entries.push({ file: path.relative(dir, f), result: r });
  }
  if (!entries.length && !opts.allowEmpty) {
    throw new ResultInputError(`${dir}: no finished result.json under it${skipped.length ? ` (${skipped.length} still marked running)` : ''}; a history is a directory of bench results`);
  }
  return { entries, skipped };
}

// ---------------------------------------------------------------- renderers

function fmtV(v: number): string {
  if (v === 0) return '0';
  return Math.abs(v) >= 1000 ? v.toFixed(0) : String(Number(v.toPrecision(4)));
}

function fmtPct(d: number | null): string {
  return d === null ? 'n/a' : `${d > 0 ? '+' : ''}${d.toFixed(1)}%`;
}

/** Render the history as Markdown: per group, its runs, the change points, and the series too short to search. */
export function renderHistoryMarkdown(h: History): string {
  const out: string[] = ['# vxtap bench history', ''];
  out.push(`- method: ${h.method}; significance ${h.options.significance}, ${h.options.permutations} permutations, at least ${h.options.minSize} runs on each side of a change`);
  out.push(`- ${h.counts.runs} run(s) in ${h.counts.groups} environment group(s); ${h.counts.changes} change point(s), ${h.counts.regressions} of them regressions`, '');
  if (h.skipped.length) {
    out.push('**Skipped files:**', '');
    for (const s of h.skipped) out.push(`- ${s.file}: ${s.reason}`);
    out.push('');
  }
  for (const [gi, g] of h.groups.entries()) {
    out.push(`## Group ${gi + 1}: ${g.runs.length} run(s)`, '', g.label, '');
    out.push(`Runs ${g.runs[0].startedAt} (${g.runs[0].runId}) to ${g.runs[g.runs.length - 1].startedAt} (${g.runs[g.runs.length - 1].runId}).`, '');
    const changed = g.series.filter((s) => s.changes.length);
    if (changed.length) {
      out.push('| mode | metric | run | commit | before | after | change | p | kind |', '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |');
      for (const s of changed) {
        for (const c of s.changes)
          out.push(
            `| ${s.mode} | ${s.metric} (${s.unit}) | #${c.index + 1} ${c.runId} | ${c.commit ? c.commit.slice(0, 12) : 'unknown'} | ${fmtV(c.before)} | ${fmtV(c.after)} | ${fmtPct(c.changePct)} | ${c.p.toFixed(3)} | ${c.kind} |`,
          );
      }
      out.push('');
    } else out.push('No change points.', '');
    const short = g.series.filter((s) => s.note);
    if (short.length) out.push(`${short.length} series not searched: ${String(short[0].note)}.`, '');
  }
  return out.join('\n');
}

/** One series as the report's trend view draws it. */
export interface TrendSeries {
  mode: string;
  metric: string;
  title: string;
  unit: string;
  higherIsBetter: boolean;
  /** [run index (0-based, oldest first), median over rounds]; runs without a value are left out. */
  points: [number, number][];
  /** Horizontal levels between change points: runs [from, to) at `median`. */
  segments: Segment[];
  changes: { index: number; changePct: number | null; kind: 'regression' | 'progression'; p: number }[];
}

/** The trend view of one environment group. */
export interface TrendGroup {
  label: string;
  runs: { runId: string; startedAt: string; commit: string | null }[];
  series: TrendSeries[];
}

/**
 * The data the HTML report's trend view needs (bench/report draws it; this
 * module renders no HTML): per group, the runs and per series the points,
 * the levels between change points and the change points. `metrics` limits
 * the series (e.g. the report's headline keys).
 */
export function trendView(h: History, metrics: readonly string[] | null = null): TrendGroup[] {
  return h.groups.map((g) => ({
    label: g.label,
    runs: g.runs.map((r) => ({ runId: r.runId, startedAt: r.startedAt, commit: r.commit })),
    series: g.series
      .filter((s) => !metrics || metrics.includes(s.metric))
      .map((s) => ({
        mode: s.mode,
        metric: s.metric,
        title: s.title,
        unit: s.unit,
        higherIsBetter: s.higherIsBetter,
        points: s.values.flatMap((v, i): [number, number][] => (v === null ? [] : [[i, v]])),
        segments: s.segments,
        changes: s.changes.map((c) => ({ index: c.index, changePct: c.changePct, kind: c.kind, p: c.p })),
      })),
  }));
}
