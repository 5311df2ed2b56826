/**
 * Does `vxtap bench --hosts` measure what the local bench measures? The
 * agreement check runs the same bench N times each way on the same machine,
 * across two SSH-reached namespaces (`--hosts`) and between two local
 * namespaces (no `--hosts`), one round per run, in pairs whose order
 * alternates (hosts-local, local-hosts, ...: ABBA), so a machine that drifts
 * during the check (thermal, a neighbour) moves both sides alike instead of
 * biasing one.
 *
 * The runs of each side are pooled into one result with a round per pair
 * ({@link poolRounds}; a valid result.json, so `vxtap bench compare
 * pooled-local.json pooled-hosts.json` reproduces the verdicts), and the two
 * pooled results are judged by the bench's own comparison (compare.ts:
 * Mann-Whitney over the rounds, Holm over the table, the metric thresholds).
 * Agreement is the verdict `same` on every row. Beside it the table shows
 * each side's median, min-max and CV, and the per-pair ratio hosts / local,
 * which cancels drift between pairs.
 *
 * Pure code: agreement-run.ts runs the benches and reads the files.
 */
import { COMPARE_DEFAULTS, compareResults, minRoundsFor, type CompareRow, type Comparison, type Thresholds } from '../compare.js';
import { derive, metricDefs, perRoundValues, type BenchResult, type ModeEntry, type ModeRoundSample } from '../result.js';
import { roundRatios, summarize, type Summary } from '../stats.js';

/** Identifier and version of agreement.json. */
export const AGREEMENT_SCHEMA = 'vxtap-hosts-agreement';
export const AGREEMENT_SCHEMA_VERSION = 1;

/** Defaults of the agreement check (one place). */
export const AGREEMENT_DEFAULTS = {
  pairs: 3,
  modes: 'bare,kernel-vxlan,vxtap',
  /** The headline figures: TCP 1 and N streams, idle latency p50, 64 B UDP at the 0.5% loss bound. */
  metrics: 'tcp1Gbps,tcpNGbps,latIdleP50,udp64PdrKpps',
  alpha: COMPARE_DEFAULTS.alpha,
  /** Names of the two SSH namespaces (`<prefix>a`, `<prefix>b`); the tests use other prefixes. */
  prefix: 'vxag',
  /** Management and data /24s of the SSH namespaces (198.18.0.0/15; the tests use 237/238). */
  mgmtNet: '198.18.241',
  dataNet: '198.18.242',
  out: 'results',
};

/** The two ways of running the bench. */
export type Side = 'hosts' | 'local';

/** The order within pair `pair` (0-based): hosts first in even pairs, local first in odd ones (ABBA). */
export function pairOrder(pair: number): [Side, Side] {
  return pair % 2 === 0 ? ['hosts', 'local'] : ['local', 'hosts'];
}

/** Every run of a check with `pairs` pairs, in the order they run. */
export function runSchedule(pairs: number): { pair: number; side: Side }[] {
  const out: { pair: number; side: Side }[] = [];
  for (let p = 0; p < pairs; p++) for (const side of pairOrder(p)) out.push({ pair: p, side });
  return out;
}

/**
 * Fewest pairs with which a verdict (`same` or a difference) is reachable at
 * all: the exact two-sided test on n + n rounds cannot go below 2 / C(2n, n),
 * and with Holm over `tests` rows the strictest level is alpha / tests.
 */
export function minPairsForVerdict(tests: number, alpha: number): number {
  return Math.max(COMPARE_DEFAULTS.recommendedRounds, minRoundsFor(alpha / Math.max(1, tests)));
}

/**
 * Pool the results of one side into one result: the runs in order, their
 * rounds renumbered one after the other (run i with R rounds gives rounds
 * offset+1..offset+R); a run that left no result (null) holds one empty
 * round. Modes are the union (first run's entry wins); the status is
 * `complete` only if every run is; reasons are prefixed with the run's
 * position. Context (environment, profile, topology, hosts) comes from the
 * first result; `derived` is recomputed. Throws a RangeError when every
 * entry is null.
 */
export function poolRounds(results: readonly (BenchResult | null)[], labels: readonly string[] = results.map((_, i) => `run ${i + 1}`)): BenchResult {
  const first = results.find((r): r is BenchResult => r !== null);
  if (!first) throw new RangeError('poolRounds needs at least one result');
  const samples: ModeRoundSample[] = [];
  const modes: ModeEntry[] = [];
  const order: string[][] = [];
  const reasons: string[] = [];
  let offset = 0;
  for (const [i, r] of results.entries()) {
    const label = labels[i] ?? `run ${i + 1}`;
    if (!r) {
      reasons.push(`${label}: no result`);
      order.push([]);
      offset += 1;
      continue;
    }
    for (const m of r.modes) if (!modes.some((x) => x.id === m.id)) modes.push(m);
    for (const s of r.samples) samples.push({ ...s, round: s.round + offset });
    order.push(...r.order);
    if (r.status !== 'complete') reasons.push(`${label} (run ${r.runId}) ${r.status}${r.incompleteReasons.length ? `: ${r.incompleteReasons.join('; ')}` : ''}`);
    offset += r.options.rounds;
  }
  const pooled: BenchResult = {
    ...first,
    runId: `pooled-${results.map((r) => r?.runId ?? 'none').join('+')}`,
    status: reasons.length ? 'incomplete' : 'complete',
    incompleteReasons: reasons,
    startedAt: first.startedAt,
    finishedAt: [...results].reverse().find((r) => r?.finishedAt)?.finishedAt ?? null,
    durationSeconds: results.reduce((t, r) => t + (r?.durationSeconds ?? 0), 0),
    options: { ...first.options, rounds: offset },
    modes,
    order,
    samples,
  };
  return { ...pooled, derived: derive(pooled) };
}

/** One side of a row. */
export interface AgreementSide {
  n: number;
  median: number | null;
  min: number | null;
  max: number | null;
  /** CV over pairs (sample sd / |mean|); null for n < 2. */
  cv: number | null;
  /** Value per pair (index = pair), null where missing. */
  perPair: (number | null)[];
}

/** One mode x metric of the table. */
export interface AgreementRow {
  mode: string;
  metric: string;
  title: string;
  unit: string;
  local: AgreementSide;
  hosts: AgreementSide;
  /** (hosts median - local median) / local median, percent. */
  deltaPct: number | null;
  /** hosts / local within each pair (drift between pairs cancels). */
  pairRatio: Summary;
  /** Whether [min, max] of the two sides overlap. */
  rangesOverlap: boolean | null;
  /** compare.ts's verdict with local as OLD and hosts as NEW: same = agree; better / worse = hosts differ; unknown = cannot say. */
  verdict: CompareRow['verdict'];
  pAdjusted: number | null;
  mdePct: number | null;
  noisy: boolean;
  minEffectPct: number;
  detectPct: number;
  note: string | null;
}

/** One bench run of the check. */
export interface AgreementRun {
  pair: number;
  side: Side;
  runId: string | null;
  status: BenchResult['status'] | 'failed';
  /** result.json, relative to the check's directory; null when the run left none. */
  result: string | null;
  exitCode: number | null;
  durationSeconds: number | null;
  startedAt: string | null;
}

/** agreement.json: the whole check. */
export interface Agreement {
  schema: typeof AGREEMENT_SCHEMA;
  schemaVersion: typeof AGREEMENT_SCHEMA_VERSION;
  pairs: number;
  profile: string;
  modes: string[];
  metrics: string[];
  order: Side[][];
  runs: AgreementRun[];
  alpha: number;
  test: Comparison['test'];
  correction: Comparison['correction'];
  tests: number;
  thresholds: string;
  /** Pairs from which a verdict is reachable with this many tests (fewer: `unknown` whatever the figures). */
  minPairsForVerdict: number;
  warnings: string[];
  rows: AgreementRow[];
  counts: { same: number; differ: number; unknown: number; noisy: number };
  /** agree: every row `same`; differ: some row better or worse; undecided: otherwise. */
  overall: 'agree' | 'differ' | 'undecided';
}

/** A metric's name outside its table: "TCP 1 stream", "Latency idle p50", "UDP 64 B PDR 0.5%". */
export function rowTitle(d: { table: string; title: string }): string {
  if (d.table === 'TCP throughput') return d.title;
  return `${d.table === 'UDP NDR/PDR' ? 'UDP' : d.table} ${d.title}`;
}

function sideOf(values: (number | null)[]): AgreementSide {
  const s = summarize(values);
  return { n: s.n, median: s.median, min: s.min, max: s.max, cv: s.cv, perPair: values };
}

/**
 * Judge the pooled local and hosts results (one round per pair, pair order)
 * on `metrics` for every mode both have. `runs` and `order` are recorded as
 * they are. Throws a TypeError for a metric key that is not in both results.
 */
export function judgeAgreement(local: BenchResult, hosts: BenchResult, o: { metrics: string[]; alpha?: number; thresholds?: Thresholds | null; runs?: AgreementRun[]; order?: Side[][] }): Agreement {
  const alpha = o.alpha ?? AGREEMENT_DEFAULTS.alpha;
  const c = compareResults({ label: 'local', result: local }, { label: 'hosts', result: hosts }, { metrics: o.metrics, alpha, thresholds: o.thresholds ?? null, correction: 'holm' });
  const defs = new Map(metricDefs(local.profile).map((d) => [d.key, d]));
  const need = minPairsForVerdict(c.tests, alpha);
  const rows: AgreementRow[] = c.rows.map((r) => {
    const l = perRoundValues(local, r.mode, r.metric);
    const h = perRoundValues(hosts, r.mode, r.metric);
    const ls = sideOf(l);
    const hs = sideOf(h);
    const overlap = ls.min !== null && ls.max !== null && hs.min !== null && hs.max !== null ? ls.min <= hs.max && hs.min <= ls.max : null;
    // compare.ts speaks of rounds; here a round is a pair.
    const note = r.note
      ? r.note
          .replace(/run both with --rounds (\d+) or more/, `use --pairs ${need} or more`)
          .replace(/\bOLD\b/, 'local')
          .replace(/\bNEW\b/, 'hosts')
      : null;
    return {
      mode: r.mode,
      metric: r.metric,
      title: rowTitle(defs.get(r.metric) ?? { table: r.table, title: r.title }),
      unit: r.unit,
      local: ls,
      hosts: hs,
      deltaPct: r.deltaPct,
      pairRatio: summarize(roundRatios(h, l)),
      rangesOverlap: overlap,
      verdict: r.verdict,
      pAdjusted: r.pAdjusted,
      mdePct: r.mdePct,
      noisy: r.noisy,
      minEffectPct: r.threshold.minEffectPct,
      detectPct: r.threshold.detectPct,
      note,
    };
  });
  const count = (f: (r: AgreementRow) => boolean) => rows.filter(f).length;
  const differ = count((r) => r.verdict === 'better' || r.verdict === 'worse');
  const same = count((r) => r.verdict === 'same');
  return {
    schema: AGREEMENT_SCHEMA,
    schemaVersion: AGREEMENT_SCHEMA_VERSION,
    pairs: Math.max(local.options.rounds, hosts.options.rounds),
    profile: local.options.profile,
    modes: [...new Set(rows.map((r) => r.mode))],
    metrics: o.metrics,
    order: o.order ?? [],
    runs: o.runs ?? [],
    alpha,
    test: c.test,
    correction: c.correction,
    tests: c.tests,
    thresholds: c.thresholds,
    minPairsForVerdict: need,
    warnings: c.warnings,
    rows,
    counts: { same, differ, unknown: count((r) => r.verdict === 'unknown'), noisy: count((r) => r.noisy) },
    overall: differ > 0 ? 'differ' : rows.length > 0 && same === rows.length ? 'agree' : 'undecided',
  };
}

/** A value with about 4 significant digits. */
function fv(v: number | null): string {
  if (v === null) return 'n/a';
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return String(Number(v.toPrecision(4)));
}

function fpct(d: number | null): string {
  if (d === null) return 'n/a';
  const s = d.toFixed(1);
  return Number(s) === 0 ? '0.0%' : `${d > 0 ? '+' : ''}${s}%`;
}

function fspread(s: AgreementSide): string {
  if (s.n === 0) return 'n/a';
  return `${fv(s.min)}-${fv(s.max)}${s.cv === null ? '' : ` (${(s.cv * 100).toFixed(1)}%)`}`;
}

function fverdict(v: AgreementRow['verdict']): string {
  return v === 'same' ? 'same' : v === 'unknown' ? 'unknown' : `differs (hosts ${v})`;
}

/** Render the check as Markdown: what ran, the table, the notes, the overall line. */
export function renderAgreementMarkdown(a: Agreement): string {
  const out: string[] = ['# vxtap bench --hosts vs local: agreement', ''];
  out.push(
    `- ${a.pairs} pair${a.pairs === 1 ? '' : 's'} of one-round runs, profile ${a.profile}, modes ${a.modes.join(', ') || 'none'}; order ${a.order.map((p) => p.join('-')).join(', ') || 'n/a'} (alternated so drift cancels)`,
  );
  for (const r of a.runs) {
    out.push(`  - pair ${r.pair + 1} ${r.side}: run ${r.runId ?? 'none'}, ${r.status}${r.durationSeconds !== null ? `, ${r.durationSeconds.toFixed(0)} s` : ''}${r.result ? ` (${r.result})` : ''}`);
  }
  out.push(
    `- verdict: vxtap bench compare with local as OLD and hosts as NEW over the per-pair values (Mann-Whitney U, two-sided, alpha ${a.alpha}, Holm over ${a.tests} tests); same = agree within noise; differs = significant and at least the metric's minimum effect; unknown = too few pairs or too noisy to say${a.pairs < a.minPairsForVerdict ? ` (with ${a.tests} tests a verdict needs --pairs ${a.minPairsForVerdict} or more)` : ''}`,
  );
  out.push(`- thresholds: ${a.thresholds}`, '- spread: min-max over pairs (CV); hosts / local per pair: median (min-max) of the ratio within each pair', '');
  if (a.warnings.length) {
    out.push('**Warnings**:', '');
    for (const w of a.warnings) out.push(`- ${w}`);
    out.push('');
  }
  if (a.rows.length === 0) {
    out.push('No mode and metric measured on both sides.', '');
    return out.join('\n');
  }
  const notes: string[] = [];
  const ref = (n: string | null) => {
    if (!n) return '';
    let i = notes.indexOf(n);
    if (i < 0) i = notes.push(n) - 1;
    return ` [${i + 1}]`;
  };
  out.push(
    '| mode | metric | local median | hosts median | difference | local min-max (CV) | hosts min-max (CV) | hosts / local per pair | verdict |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const r of a.rows) {
    const ratio = r.pairRatio.n ? `${fv(r.pairRatio.median)} (${fv(r.pairRatio.min)}-${fv(r.pairRatio.max)})` : 'n/a';
    out.push(
      `| ${r.mode} | ${r.title} (${r.unit}) | ${fv(r.local.median)} | ${fv(r.hosts.median)} | ${fpct(r.deltaPct)} | ${fspread(r.local)} | ${fspread(r.hosts)} | ${ratio} | ${fverdict(r.verdict)}${r.noisy ? ', noisy' : ''}${ref(r.note)} |`,
    );
  }
  out.push('');
  for (const [i, n] of notes.entries()) out.push(`[${i + 1}] ${n}`);
  if (notes.length) out.push('');
  const overall = a.overall === 'agree' ? 'agree within noise' : a.overall === 'differ' ? 'DIFFER on some rows' : 'undecided (no row differs; not every row could be judged same)';
  out.push(`${a.counts.same} same, ${a.counts.differ} differ, ${a.counts.unknown} unknown; ${a.counts.noisy} noisy. Overall: ${overall}.`, '');
  return out.join('\n');
}

/** Options of the check (validated). */
export interface AgreementOptions {
  pairs: number;
  modes: string[];
  metrics: string[];
  quick: boolean;
  alpha: number;
  out: string;
  prefix: string;
  json: boolean;
  progress: boolean;
  /** A thresholds file for the verdicts (as `vxtap bench compare --thresholds`); null = compare's defaults. */
  thresholds: string | null;
  /** Re-judge the runs of an earlier check in this directory instead of running. */
  from: string | null;
  /** Remove what a killed check left (its SSH namespaces) and exit. */
  cleanup: boolean;
  /** More `vxtap bench` flags, given to both sides alike. */
  benchArgs: string[];
}

/** Raw option values as the CLI receives them (strings from flags or environment). */
export interface RawAgreementOptions {
  pairs?: string;
  modes?: string;
  metrics?: string;
  quick?: boolean | string;
  alpha?: string;
  out?: string;
  prefix?: string;
  json?: boolean | string;
  progress?: boolean;
  thresholds?: string;
  from?: string;
  cleanup?: boolean | string;
  benchArgs?: string[];
}

/** Flags the check sets itself on each bench run (a pass-through would make the sides differ or break the pooling). --measure passes (both sides alike; the bench refuses mtu-mismatch with --hosts). */
const OWN_BENCH_FLAGS = ['--hosts', '--ssh-config', '--underlay', '--rounds', '--modes', '--quick', '--full', '--out', '--json', '--cleanup', '--deploy', '--data-dev', '--contention'];

function flag(v: boolean | string | undefined): boolean {
  return v === true || v === 'true' || v === '1';
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

/** Parse and validate; returns an Error naming the option when one is bad. */
export function parseAgreementOptions(raw: RawAgreementOptions): AgreementOptions | Error {
  const pairsText = raw.pairs ?? String(AGREEMENT_DEFAULTS.pairs);
  const pairs = Number(pairsText);
  if (!/^\d+$/.test(pairsText.trim()) || !Number.isInteger(pairs) || pairs < 1 || pairs > 50) return new TypeError(`--pairs must be an integer from 1 to 50 (got "${pairsText}")`);
  const modes = list(raw.modes ?? AGREEMENT_DEFAULTS.modes);
  if (modes.length === 0) return new TypeError('--modes must name at least one mode, e.g. bare,kernel-vxlan,vxtap');
  const metrics = list(raw.metrics ?? AGREEMENT_DEFAULTS.metrics);
  if (metrics.length === 0) return new TypeError('--metrics must list at least one metric key, e.g. tcp1Gbps,latIdleP50');
  const alpha = raw.alpha === undefined ? AGREEMENT_DEFAULTS.alpha : Number(raw.alpha);
  if (!Number.isFinite(alpha) || alpha <= 0 || alpha >= 1) return new TypeError(`--alpha must be a number between 0 and 1 exclusive (got "${String(raw.alpha)}")`);
  const prefix = raw.prefix ?? AGREEMENT_DEFAULTS.prefix;
  if (!/^[a-z][a-z0-9]{1,4}$/.test(prefix) || prefix.startsWith('vxb'))
    return new TypeError(`--prefix must be 2 to 5 lowercase letters or digits, starting with a letter and not with "vxb" (got "${prefix}")`);
  const out = raw.out ?? AGREEMENT_DEFAULTS.out;
  if (out.trim() === '') return new TypeError('--out must be a directory');
  const benchArgs = raw.benchArgs ?? [];
  const own = benchArgs.find((a) => OWN_BENCH_FLAGS.includes(a.split('=')[0]));
  if (own) return new TypeError(`bench flag ${own.split('=')[0]} after -- is set by the check itself (use the check's own --pairs, --modes, --quick, --out)`);
  return {
    pairs,
    modes,
    metrics,
    quick: flag(raw.quick),
    alpha,
    out,
    prefix,
    json: flag(raw.json),
    progress: raw.progress !== false,
    thresholds: raw.thresholds ?? null,
    from: raw.from ?? null,
    cleanup: flag(raw.cleanup),
    benchArgs,
  };
}

/** The `vxtap bench` arguments of one run of the check (after `bench`). */
export function benchArgv(
  o: Pick<AgreementOptions, 'modes' | 'quick' | 'benchArgs'>,
  side: Side,
  outDir: string,
  hosts: { a: string; b: string; sshConfig: string; underlay: [string, string]; dataDev: [string, string] } | null,
): string[] {
  const argv = ['--modes', o.modes.join(','), '--rounds', '1', ...(o.quick ? ['--quick'] : []), '--out', outDir];
  if (side === 'hosts') {
    if (!hosts) throw new TypeError('a hosts run needs the SSH hosts');
    argv.push('--hosts', `${hosts.a},${hosts.b}`, '--ssh-config', hosts.sshConfig, '--underlay', hosts.underlay.join(','));
    // The OVS recipe takes the underlay device over: hand it the data veths (the SSH session runs on mgmt0).
    if (o.modes.some((m) => m.startsWith('ovs-'))) argv.push('--data-dev', hosts.dataDev.join(','));
  }
  return [...argv, ...o.benchArgs];
}

/**
 * Rough wall time of the check in seconds: two runs per pair, each ~6 s to
 * start (SSH, preflight, agents, the report) plus, per mode, its mode-round
 * (profile.ts's estimate, MTU sweep included: every run is a round 1) and ~2 s
 * of setup. The quick smoke with one mode took 39 s against 42 estimated.
 */
export function estimateCheckSeconds(pairs: number, modeCount: number, modeRoundSeconds: number): number {
  return pairs * 2 * (6 + modeCount * (modeRoundSeconds + 2));
}
