/**
 * `vxtap bench ci`, the pure part: options and their validation, the
 * sequential plan with `--rounds` as its cap, the ABAB schedule, the argument
 * vector of one round (a normal `vxtap bench --rounds 1` of that side's own
 * build) and the merge of single-round results into one multi-round result
 * per side.
 *
 * Why one bench invocation per round and not one long run per side: base and
 * head must alternate on the same hosts (base round 1, head round 1, base
 * round 2, ...) so that a drift of the machine between rounds hits both sides
 * alike, and each side must run its own build, bench code included (a base
 * commit's bench may measure differently; the comparison is of builds). A
 * round of an old build is then just `vxtap bench --rounds 1` of that build,
 * which every version of the bench understands; no hook is needed in it.
 * The merged result has the schema of a normal multi-round run, so
 * `compare`, `history`, `report` and the stopping rule read it unchanged.
 */
import { DECIDE_DEFAULTS, makePlan, parseSchedule, type SequentialPlan } from '../decide.js';
import { COMPARE_DEFAULTS } from '../compare.js';
import { derive, type BenchResult, type ModeEntry } from '../result.js';
import { rotate } from '../run.js';
import { parseModeSpec } from '../modes.js';
import { parseMeasureList } from '../claim-measures.js';
import { TEST_SLOWDOWN_ENV, TEST_SLOWDOWN_MAX_PCT } from '../../src/pipeline/slowdown.js';

/** A side of the comparison. */
export type Side = 'base' | 'head';

/** Defaults of `vxtap bench ci` (one place). */
export const CI_DEFAULTS = {
  /** The CI profile's modes: the reference (kernel VXLAN) and the dataplane under change; each more mode costs a minute per ABAB round. */
  modes: 'kernel-vxlan,vxtap',
  /** Cap on rounds per side: the stopping rule's cap (looks at 6, 9, 12). */
  rounds: DECIDE_DEFAULTS.maxRounds,
  /** Metrics that gate: the family decide.ts was validated on. */
  metrics: 'tcp1Gbps,tcpNGbps,latIdleP50',
  alpha: DECIDE_DEFAULTS.alpha,
  /** Exit 1 on a `worse` verdict whose change exceeds this many percent (the verdict already needs the metric's minimum effect). */
  failOnRegressionPct: 0,
  out: 'results',
};

/** Remote hosts and SSH settings passed through to every round (`--hosts A,B` and its companions). */
export interface CiRemote {
  hosts: [string, string];
  sshConfig: string | null;
  sshOptions: string[];
  underlay: string | null;
  overlay: string | null;
  vni: string | null;
  port: string | null;
  dataDev: string | null;
  lease: string | null;
}

/** Validated options. */
export interface CiOptions {
  base: string;
  /** null: the current checkout, working tree as it is. */
  head: string | null;
  profile: 'quick' | 'default' | 'full';
  modes: string[];
  /** Cap on rounds per side (--rounds). */
  cap: number;
  outDir: string;
  metrics: string[];
  alpha: number;
  failOnRegressionPct: number;
  thresholdsFile: string | null;
  /** --history DIR: earlier results whose trend (with this run's head) goes into report.html; null = none. */
  historyDir: string | null;
  remote: CiRemote | null;
  progress: boolean;
  json: boolean;
  /** Test-only (--inject-slowdown): VXTAP_TEST_SLOWDOWN_PCT for the head side's rounds; null: off. */
  injectSlowdownPct: number | null;
  /** --looks: the rounds per side at each look (e.g. 8,16,24); null = decide.ts's 6, 9, ... up to --rounds. */
  looks: number[] | null;
  /** --measure passed to every round (e.g. tcp,latency: only what the gating metrics need); null = the bench's default. Both builds must know the list. */
  measure: string[] | null;
}

/** Option values as commander hands them over (flags or environment mirrors). */
export type RawCiOptions = Record<string, string | boolean | string[] | undefined>;

/** Split a --modes list; "vxtap:workers=2,mtu=1400" keeps its parameters (as `vxtap bench` does). */
export function splitModes(list: string): string[] {
  return list.split(',').reduce<string[]>((acc, part) => {
    if (/^[a-z-]+=/.test(part) && acc.length && acc[acc.length - 1].includes(':')) acc[acc.length - 1] += `,${part}`;
    else if (part.trim()) acc.push(part.trim());
    return acc;
  }, []);
}

const REF_RE = /^[A-Za-z0-9_][A-Za-z0-9_./~^@{}+-]*$/;

/** Parse, then validate: an Error naming the flag, or the options. `outDir` is resolved by the caller. */
export function parseCiOptions(o: RawCiOptions, sshOptionsEnv: string[] = []): CiOptions | Error {
  const str = (v: unknown): string | null => (typeof v === 'string' ? (v === '' ? null : v) : typeof v === 'number' ? String(v) : null);
  const base = str(o.base);
  if (base === null) return new TypeError('--base is required: the commit to compare against, e.g. --base origin/main');
  if (!REF_RE.test(base)) return new TypeError(`--base must be a git ref or commit (got "${base}")`);
  const head = str(o.head);
  if (head !== null && !REF_RE.test(head)) return new TypeError(`--head must be a git ref or commit (got "${head}")`);
  if (o.quick && o.full) return new TypeError('--quick and --full exclude each other');
  const modes = splitModes(str(o.modes) ?? CI_DEFAULTS.modes);
  if (modes.length === 0) return new TypeError('--modes must name at least one mode');
  try {
    const ids = modes.map((m) => parseModeSpec(m).id);
    if (new Set(ids).size !== ids.length) return new TypeError('--modes lists a mode twice');
  } catch (e) {
    return new TypeError(`--modes: ${(e as Error).message}`);
  }
  const capText = str(o.rounds) ?? String(CI_DEFAULTS.rounds);
  const cap = Number(capText);
  if (!/^\d+$/.test(capText) || cap < 1 || cap > 100) return new TypeError(`--rounds (the cap on rounds per side) must be an integer between 1 and 100 (got "${capText}")`);
  const metrics = (str(o.metrics) ?? CI_DEFAULTS.metrics)
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (metrics.length === 0) return new TypeError('--metrics must list at least one metric key, e.g. tcp1Gbps,latIdleP50');
  const alphaText = str(o.alpha) ?? String(CI_DEFAULTS.alpha);
  const alpha = Number(alphaText);
  if (!(alpha > 0 && alpha < 1)) return new TypeError(`--alpha must be a number between 0 and 1 exclusive (got "${alphaText}")`);
  const failText = str(o.failOnRegression) ?? String(CI_DEFAULTS.failOnRegressionPct);
  const failOnRegressionPct = Number(failText.replace(/%$/, ''));
  if (!Number.isFinite(failOnRegressionPct) || failOnRegressionPct < 0) return new TypeError(`--fail-on-regression must be a percentage >= 0 (got "${failText}")`);
  let remote: CiRemote | null = null;
  const hosts = str(o.hosts);
  const remoteOnly = ['sshConfig', 'underlay', 'dataDev'].find((k) => str(o[k]) !== null) ?? ((o.sshOption as string[] | undefined)?.length ? 'sshOption' : null);
  if (hosts !== null) {
    const list = hosts.split(',').map((h) => h.trim());
    if (list.length !== 2 || list.some((h) => !h)) return new TypeError(`--hosts must be two SSH destinations A,B (got "${hosts}")`);
    const pair = (name: string, v: string | null) =>
      v !== null &&
      v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean).length !== 2
        ? new TypeError(`--${name} must be two values A,B (got "${v}")`)
        : null;
    const bad = pair('underlay', str(o.underlay)) ?? pair('data-dev', str(o.dataDev));
    if (bad) return bad;
    remote = {
      hosts: list as [string, string],
      sshConfig: str(o.sshConfig),
      sshOptions: [...((o.sshOption as string[] | undefined) ?? []), ...sshOptionsEnv.filter(Boolean)],
      underlay: str(o.underlay),
      overlay: str(o.overlay),
      vni: str(o.vni),
      port: str(o.port),
      dataDev: str(o.dataDev),
      lease: str(o.lease),
    };
  } else if (remoteOnly) {
    return new TypeError(`--${remoteOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --hosts`);
  }
  let looks: number[] | null = null;
  const looksText = str(o.looks);
  if (looksText !== null) {
    const parsed = parseSchedule(looksText);
    if (parsed instanceof Error) return new TypeError(parsed.message.replace('--schedule', '--looks'));
    if (parsed.schedule[parsed.schedule.length - 1] > 100) return new TypeError(`--looks: at most 100 rounds per side (got "${looksText}")`);
    looks = parsed.schedule;
  }
  let measure: string[] | null = null;
  const measureText = str(o.measure);
  if (measureText !== null) {
    try {
      measure = parseMeasureList(measureText);
    } catch (e) {
      return e as TypeError;
    }
  }
  const injectText = str(o.injectSlowdown);
  let injectSlowdownPct: number | null = null;
  if (injectText !== null) {
    injectSlowdownPct = Number(injectText);
    if (!/^\d+$/.test(injectText) || injectSlowdownPct < 1 || injectSlowdownPct > TEST_SLOWDOWN_MAX_PCT)
      return new TypeError(`--inject-slowdown (test-only) must be an integer percent 1..${TEST_SLOWDOWN_MAX_PCT} (got "${injectText}")`);
  }
  return {
    base,
    head,
    profile: o.quick ? 'quick' : o.full ? 'full' : 'default',
    modes,
    cap: looks ? looks[looks.length - 1] : cap,
    looks,
    outDir: str(o.out) ?? CI_DEFAULTS.out,
    metrics,
    alpha,
    failOnRegressionPct,
    thresholdsFile: str(o.thresholds),
    historyDir: str(o.history),
    remote,
    progress: o.progress !== false,
    json: o.json === true || o.json === 'true' || o.json === '1',
    injectSlowdownPct,
    measure,
  };
}

/**
 * The stopping rule's plan with `--rounds` as its cap: decide.ts's looks
 * (first look at its minimum rounds, then every step) up to the cap. A cap
 * below the first look gives a single look at the cap (a smoke run: with 1
 * round per side every verdict is `unknown`, which is reported, not failed).
 */
export function ciPlan(cap: number, alpha: number = DECIDE_DEFAULTS.alpha, looks: number[] | null = null): SequentialPlan {
  if (looks) return { schedule: [...looks], alpha, correction: COMPARE_DEFAULTS.correction };
  if (cap >= DECIDE_DEFAULTS.initialRounds) return makePlan(DECIDE_DEFAULTS.initialRounds, DECIDE_DEFAULTS.stepRounds, cap, alpha);
  return { schedule: [cap], alpha, correction: COMPARE_DEFAULTS.correction };
}

/** One bench invocation of the ABAB schedule. */
export interface ScheduledRound {
  side: Side;
  /** 1-based round of that side. */
  round: number;
}

/** Rounds `from`..`to` (1-based, inclusive) of both sides, interleaved: base 1, head 1, base 2, head 2, ... */
export function abSchedule(from: number, to: number): ScheduledRound[] {
  const out: ScheduledRound[] = [];
  for (let round = from; round <= to; round++) out.push({ side: 'base', round }, { side: 'head', round });
  return out;
}

/**
 * The argument vector of one round: `bench --rounds 1` of that side's build,
 * the modes rotated by the round (as `vxtap bench` rotates them between its
 * own rounds, so no mode always runs first), the remote flags passed through
 * with `--deploy` (each round copies its own build to the hosts when the other
 * side's is there; a host runs whatever was deployed last).
 */
export function roundArgv(o: Pick<CiOptions, 'profile' | 'modes' | 'remote'> & { measure?: string[] | null }, round: number, outDir: string): string[] {
  const argv = ['bench', '--rounds', '1', '--modes', rotate(o.modes, round - 1).join(','), '--out', outDir, '--no-progress'];
  if (o.measure) argv.push('--measure', o.measure.join(','));
  if (o.profile !== 'default') argv.push(`--${o.profile}`);
  const r = o.remote;
  if (r) {
    argv.push('--hosts', r.hosts.join(','), '--deploy');
    if (r.sshConfig) argv.push('--ssh-config', r.sshConfig);
    for (const s of r.sshOptions) argv.push('--ssh-option', s);
    for (const [flag, v] of [
      ['--underlay', r.underlay],
      ['--overlay', r.overlay],
      ['--vni', r.vni],
      ['--port', r.port],
      ['--data-dev', r.dataDev],
      ['--lease', r.lease],
    ] as const)
      if (v !== null) argv.push(flag, v);
  }
  return argv;
}

/**
 * The environment of a round's bench: ours without the VXTAP_BENCH_* mirrors
 * (the round's flags say everything; a stray VXTAP_BENCH_CLEANUP or _ROUNDS
 * must not reach it) except where the bench keeps its state and how it names
 * what it creates.
 */
export function roundEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  // the test-only slowdown reaches a round only through sideEnv (--inject-slowdown), never by inheritance
  return Object.fromEntries(Object.entries(env).filter(([k]) => k !== TEST_SLOWDOWN_ENV && (!k.startsWith('VXTAP_BENCH_') || k === 'VXTAP_BENCH_STATE_DIR' || k === 'VXTAP_BENCH_PREFIX')));
}

/**
 * What one side's rounds add to {@link roundEnv}: with --inject-slowdown P
 * (test-only), VXTAP_TEST_SLOWDOWN_PCT=P for the head side, which its bench
 * passes to every `vxtap up` (bench/modes.ts vxtapModeEnv, --hosts included).
 */
export function sideEnv(o: Pick<CiOptions, 'injectSlowdownPct'>, side: Side): Record<string, string> {
  return side === 'head' && o.injectSlowdownPct !== null ? { [TEST_SLOWDOWN_ENV]: String(o.injectSlowdownPct) } : {};
}

/** Where a merged result came from (stored as options.ci; the schema leaves options open). */
export interface CiProvenance {
  side: Side;
  ref: string;
  commit: string;
  dirty: boolean | null;
  /** runId of each round's own result, in round order. */
  rounds: string[];
}

/**
 * Merge results of one build (each usually a single round) into one result
 * with rounds 1..N in the order given: samples renumbered, `order` appended,
 * options.rounds and profile.rounds = N, each mode available when it ran in
 * any part (its last setup facts kept), status complete only when every part
 * is, incomplete reasons prefixed with the round they came from, derived
 * recomputed. Throws a RangeError when the parts cannot form one run
 * (none, or another schema, profile or MTU).
 */
export function mergeRounds(parts: readonly BenchResult[], meta: { runId: string; argv: string[]; modes?: readonly string[]; ci?: CiProvenance }): BenchResult {
  if (parts.length === 0) throw new RangeError('mergeRounds needs at least one result');
  const first = parts[0];
  for (const p of parts) {
    // Results read from disk: the types promise one schema, the files may not keep it.
    if (JSON.stringify([p.schema, p.schemaVersion]) !== JSON.stringify([first.schema, first.schemaVersion]))
      throw new RangeError(`run ${p.runId}: schema ${p.schema} ${p.schemaVersion}, not ${first.schema} ${first.schemaVersion}`);
    if (p.options.profile !== first.options.profile) throw new RangeError(`run ${p.runId}: profile ${p.options.profile}, not ${first.options.profile}`);
    if (p.options.mtu !== first.options.mtu) throw new RangeError(`run ${p.runId}: MTU ${p.options.mtu}, not ${first.options.mtu}`);
  }
  const order = meta.modes ? [...meta.modes] : [...first.options.modes];
  for (const p of parts) for (const m of p.modes) if (!order.includes(m.id)) order.push(m.id);
  const modes: ModeEntry[] = [];
  for (const id of order) {
    const entries = parts.map((p) => p.modes.find((m) => m.id === id)).filter((m): m is ModeEntry => !!m);
    if (!entries.length) continue;
    const ran = entries.filter((m) => m.available);
    const last = ran[ran.length - 1] ?? entries[0];
    modes.push({ ...structuredClone(last), available: ran.length > 0, unavailableReason: ran.length ? null : entries[0].unavailableReason, info: last.info ? structuredClone(last.info) : null });
  }
  const samples: BenchResult['samples'] = [];
  const orders: string[][] = [];
  const reasons: string[] = [];
  let offset = 0;
  for (const [i, p] of parts.entries()) {
    for (const s of p.samples) samples.push({ ...structuredClone(s), round: s.round + offset });
    for (const o of p.order) orders.push([...o]);
    for (let k = p.order.length; k < p.options.rounds; k++) orders.push([]);
    for (const r of p.incompleteReasons) reasons.push(`part ${i + 1} (run ${p.runId}, rounds ${offset + 1}-${offset + p.options.rounds}): ${r}`);
    if (p.status === 'running') reasons.push(`part ${i + 1} (run ${p.runId}): still marked running (killed)`);
    offset += p.options.rounds;
  }
  const starts = parts.map((p) => Date.parse(p.startedAt));
  const ends = parts.map((p) => (p.finishedAt ? Date.parse(p.finishedAt) : Number.NaN));
  const end = ends.every(Number.isFinite) ? Math.max(...ends) : null;
  const merged: BenchResult = {
    ...structuredClone(first),
    runId: meta.runId,
    status: reasons.length ? 'incomplete' : 'complete',
    incompleteReasons: reasons,
    startedAt: new Date(Math.min(...starts)).toISOString(),
    finishedAt: end === null ? null : new Date(end).toISOString(),
    durationSeconds: end === null ? null : (end - Math.min(...starts)) / 1000,
    options: { ...structuredClone(first.options), rounds: offset, modes: order, argv: [...meta.argv] },
    profile: { ...structuredClone(first.profile), rounds: offset },
    modes,
    order: orders,
    samples,
    derived: { metrics: [], byMode: {}, claims: [] },
  };
  if (first.topology.hosts.length === 0) {
    const withHosts = parts.find((p) => p.topology.hosts.length > 0);
    if (withHosts) merged.topology = structuredClone(withHosts.topology);
  }
  if (meta.ci) Object.assign(merged.options, { ci: meta.ci });
  merged.derived = derive(merged);
  return merged;
}
