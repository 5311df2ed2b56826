import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareResults,
  contextWarnings,
  formatDelta,
  formatValue,
  mannWhitney,
  midranks,
  minRoundsFor,
  parseCompareOptions,
  regressions,
  renderCompareMarkdown,
  sharedMetrics,
  smallestPossibleP,
} from '../../bench/compare.js';
import { derive, type BenchResult, type ModeRoundSample } from '../../bench/result.js';
import { validateResult } from '../../bench/validate.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.join(here, '..', '..');
const fixtures = path.join(REPO, 'test', 'fixtures', 'bench');
/** UPDATE_GOLDEN=1 npx vitest run test/unit/bench-compare.test.ts rewrites the compare-* golden files. */
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const golden = (): BenchResult => JSON.parse(readFileSync(path.join(fixtures, 'golden-result.json'), 'utf8')) as BenchResult;

// ---------------------------------------------------------------- fixtures

/** Scale the figures the throughput and latency metrics read from one sample. */
function scaleSample(s: ModeRoundSample, throughput: number, latency: number): ModeRoundSample {
  const c = structuredClone(s);
  for (const t of [c.tcp1, c.tcpN]) if (t) t.receivedBps *= throughput;
  for (const l of [c.latencyIdle, c.latencyLoaded]) {
    if (!l) continue;
    const p = l.percentiles as unknown as Record<string, number>;
    for (const k of ['p50Us', 'p90Us', 'p99Us', 'p999Us', 'maxUs']) p[k] *= latency;
  }
  return c;
}

function rederive(r: BenchResult): BenchResult {
  r.derived = JSON.parse(JSON.stringify(derive(r))) as BenchResult['derived'];
  return r;
}

/**
 * OLD with 5 rounds: the golden 3-round run plus round 4 = round 1 x 1.01 and
 * round 5 = round 2 x 0.99 (throughput and latency), so the rounds differ.
 */
function old5(): BenchResult {
  const r = golden();
  const extra = r.samples
    .filter((s) => s.round === 1 || s.round === 2)
    .map((s) => ({ ...scaleSample(s, s.round === 1 ? 1.01 : 0.99, s.round === 1 ? 1.01 : 0.99), round: s.round + 3 }));
  r.samples.push(...extra);
  r.order.push(r.order[0], r.order[1]);
  r.options.rounds = 5;
  r.profile.rounds = 5;
  return rederive(r);
}

/** NEW from OLD: vxtap TCP throughput x 0.7 in every round (worse), kernel-vxlan latency x 0.7 (better), the rest unchanged. */
function regressed(r0: BenchResult): BenchResult {
  const r = structuredClone(r0);
  r.runId = `${r.runId}-new`;
  r.samples = r.samples.map((s) => (s.mode === 'vxtap' ? scaleSample(s, 0.7, 1) : s.mode === 'kernel-vxlan' ? scaleSample(s, 1, 0.7) : s));
  return rederive(r);
}

function checkGolden(name: string, actual: string): void {
  const file = path.join(fixtures, name);
  if (UPDATE || !existsSync(file)) writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

// ---------------------------------------------------------------- Mann-Whitney

/** Slow reference: every assignment of the pooled midranks to sample 1. */
function bruteForceP(x: number[], y: number[]): number {
  const { ranks } = midranks([...x, ...y]);
  const n1 = x.length;
  const observed = ranks.slice(0, n1).reduce((s, r) => s + r, 0);
  let le = 0;
  let ge = 0;
  let total = 0;
  const eps = 1e-9;
  const walk = (start: number, left: number, sum: number) => {
    if (left === 0) {
      total++;
      if (sum <= observed + eps) le++;
      if (sum >= observed - eps) ge++;
      return;
    }
    for (let i = start; i <= ranks.length - left; i++) walk(i + 1, left - 1, sum + ranks[i]);
  };
  walk(0, n1, 0);
  return Math.min(1, (2 * Math.min(le, ge)) / total);
}

describe('Mann-Whitney U test', () => {
  it('3 vs 3 fully separated: p = 2/20 = 0.1 (cannot reach 0.05)', () => {
    const t = mannWhitney([1, 2, 3], [4, 5, 6]);
    expect(t).toMatchObject({ n1: 3, n2: 3, u: 0, method: 'exact', ties: false, direction: 1 });
    expect(t.p).toBeCloseTo(0.1, 12);
    expect(mannWhitney([4, 5, 6], [1, 2, 3]).direction).toBe(-1);
    expect(smallestPossibleP(3, 3)).toBeCloseTo(0.1, 12);
  });

  it('5 vs 5 fully separated: p = 2/252 ~ 0.0079', () => {
    expect(mannWhitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p).toBeCloseTo(2 / 252, 12);
    expect(mannWhitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p).toBeCloseTo(0.0079, 4);
  });

  it('exact p-values match scipy.stats.mannwhitneyu(method="exact")', () => {
    // Reference values from scipy 1.17.1.
    const a = mannWhitney([1.1, 2.5, 3.3, 4.8, 6.2], [3.9, 5.1, 7.7, 8.4, 9.0, 10.2]);
    expect(a.u).toBe(3);
    expect(a.p).toBeCloseTo(0.030303030303030304, 12);
    const b = mannWhitney([12, 15, 9, 20, 17, 11, 14], [18, 22, 16, 25, 19, 23, 21, 13]);
    expect(b.u).toBe(8);
    expect(b.p).toBeCloseTo(0.020512820512820513, 12);
  });

  it('normal approximation (n1 + n2 > 50) with ties matches scipy (method="asymptotic", continuity)', () => {
    const x = Array.from({ length: 30 }, (_, i) => (i * 7) % 13);
    const y = Array.from({ length: 31 }, (_, i) => ((i * 5) % 11) + 3);
    const t = mannWhitney(x, y);
    expect(t.method).toBe('normal');
    expect(t.ties).toBe(true);
    expect(t.u).toBe(304);
    expect(t.p).toBeCloseTo(0.02021846085172623, 6);
    const x2 = Array.from({ length: 40 }, (_, i) => i * 1.5);
    const y2 = Array.from({ length: 35 }, (_, i) => i * 1.5 + 7.25);
    const t2 = mannWhitney(x2, y2);
    expect(t2.ties).toBe(false);
    expect(t2.p).toBeCloseTo(0.46046462166701707, 6);
  });

  it('ties: exact p conditional on the tie pattern (hand-computed)', () => {
    // Pooled [1,2,2 | 2,3,4]: midranks 1,3,3 | 3,5,6; x rank sum 7. Of the 20
    // size-3 subsets of {1,3,3,3,5,6}, sums <= 7: {1,3,3} x3 = 3 -> p = 2 * 3/20 = 0.3.
    const t = mannWhitney([1, 2, 2], [2, 3, 4]);
    expect(t.ties).toBe(true);
    expect(t.u).toBe(1);
    expect(t.p).toBeCloseTo(0.3, 12);
    expect(midranks([5, 1, 5, 5]).ranks).toEqual([3, 1, 3, 3]);
    expect(midranks([5, 1, 5, 5]).tieSizes).toEqual([3]);
  });

  it('identical samples: p = 1, no direction', () => {
    expect(mannWhitney([7, 7, 7], [7, 7, 7])).toMatchObject({ p: 1, direction: 0, ties: true });
    expect(mannWhitney([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]).p).toBe(1);
    const big = Array.from({ length: 40 }, () => 3);
    expect(mannWhitney(big, big)).toMatchObject({ p: 1, method: 'normal' });
  });

  it('ignores non-finite values and refuses empty samples', () => {
    expect(mannWhitney([1, Number.NaN, 2, 3], [4, 5, 6]).p).toBeCloseTo(0.1, 12);
    expect(() => mannWhitney([], [1])).toThrow(/n1=0/);
  });

  it('exact DP agrees with brute-force enumeration on random small samples with ties', () => {
    const sample = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 7 });
    fc.assert(
      fc.property(sample, sample, (x, y) => {
        expect(mannWhitney(x, y).p).toBeCloseTo(bruteForceP(x, y), 10);
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  it('smallest possible p and the rounds it takes', () => {
    expect(smallestPossibleP(4, 4)).toBeCloseTo(2 / 70, 12);
    expect(smallestPossibleP(1, 1)).toBe(1);
    expect(minRoundsFor(0.05)).toBe(4);
    expect(minRoundsFor(0.01)).toBe(5);
  });
});

// ---------------------------------------------------------------- comparison

describe('compareResults', () => {
  let o5: BenchResult;
  let n5: BenchResult;
  beforeAll(() => {
    o5 = old5();
    n5 = regressed(o5);
  });

  it('derived fixtures are valid results', () => {
    expect(validateResult(o5)).toEqual([]);
    expect(validateResult(n5)).toEqual([]);
  });

  it('5 vs 5: vxtap TCP -30% worse, kernel-vxlan latency better, the rest ~', () => {
    const c = compareResults({ label: 'old.json', result: o5 }, { label: 'new.json', result: n5 });
    const row = (mode: string, metric: string) => c.rows.find((r) => r.mode === mode && r.metric === metric)!;
    expect(row('vxtap', 'tcp1Gbps')).toMatchObject({ verdict: 'worse', note: null, method: 'exact' });
    expect(row('vxtap', 'tcp1Gbps').p).toBeCloseTo(2 / 252, 12);
    expect(row('vxtap', 'tcp1Gbps').deltaPct).toBeCloseTo(-30, 6);
    expect(row('vxtap', 'tcpNGbps').verdict).toBe('worse');
    expect(row('kernel-vxlan', 'latIdleP50')).toMatchObject({ verdict: 'better' });
    expect(row('kernel-vxlan', 'latIdleP50').deltaPct).toBeCloseTo(-30, 6);
    expect(row('bare', 'tcp1Gbps')).toMatchObject({ verdict: '~', p: 1, deltaPct: 0 });
    expect(c.warnings).toEqual([]);
    expect(c.counts.worse).toBe(2);
    expect(regressions(c, 10).map((r) => `${r.mode}/${r.metric}`)).toEqual(['vxtap/tcp1Gbps', 'vxtap/tcpNGbps']);
    expect(regressions(c, 40)).toEqual([]);
  });

  it('3 vs 3: never significant, and says why', () => {
    const c = compareResults({ label: 'old.json', result: golden() }, { label: 'new.json', result: regressed(golden()) });
    expect(c.rows.every((r) => r.verdict === '~')).toBe(true);
    const r = c.rows.find((x) => x.mode === 'vxtap' && x.metric === 'tcp1Gbps')!;
    expect(r.p).toBeCloseTo(0.1, 12);
    expect(r.note).toBe('n=3+3 rounds can never reach p <= 0.05 (smallest possible p = 0.100); run both with --rounds 5 or more');
    expect(renderCompareMarkdown(c)).toContain('can never reach p <= 0.05');
  });

  it('--alpha 0.1 lets 3 vs 3 fully separated rounds through (p = 0.1 <= alpha)', () => {
    const c = compareResults({ label: 'o', result: golden() }, { label: 'n', result: regressed(golden()) }, { alpha: 0.1 });
    expect(c.rows.find((x) => x.mode === 'vxtap' && x.metric === 'tcp1Gbps')).toMatchObject({ verdict: 'worse', note: null });
    expect(c.rows.find((x) => x.mode === 'kernel-vxlan' && x.metric === 'latIdleP50')?.verdict).toBe('better');
  });

  it('identical inputs: every row ~, no warnings', () => {
    const c = compareResults({ label: 'a', result: o5 }, { label: 'b', result: o5 });
    expect(c.counts).toMatchObject({ better: 0, worse: 0 });
    expect(c.rows.every((r) => r.p === 1 && r.deltaPct === 0)).toBe(true);
    expect(c.warnings).toEqual([]);
  });

  it('--metrics filters and names unknown keys', () => {
    const c = compareResults({ label: 'a', result: o5 }, { label: 'b', result: n5 }, { metrics: ['tcp1Gbps'] });
    expect(new Set(c.rows.map((r) => r.metric))).toEqual(new Set(['tcp1Gbps']));
    const err = sharedMetrics(o5, n5, ['tcp1Gbps', 'nope']);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/unknown metric "nope"/);
  });

  it('warns about environment and option differences, not about the commit or hostname', () => {
    const n = structuredClone(o5);
    n.environment!.kernel = '6.1.0-30-amd64';
    n.environment!.cpuModel = 'Intel Xeon';
    n.environment!.git.commit = 'f'.repeat(40);
    n.environment!.hostname = 'runner-2';
    n.environment!.tools.iperf3 = 'iperf 3.16';
    n.options.mtu = 9000;
    n.options.profile = 'quick';
    n.status = 'incomplete';
    n.incompleteReasons = ['vxtap round 2: setup failed'];
    const w = contextWarnings(o5, n);
    expect(w).toContain('environment.kernel differs: OLD "6.18.44-fc-v669", NEW "6.1.0-30-amd64"');
    expect(w).toContain('environment.cpuModel differs: OLD "AMD EPYC", NEW "Intel Xeon"');
    expect(w).toContain('environment.tools.iperf3 differs: OLD "iperf 3.12 (cJSON 1.7.15)", NEW "iperf 3.16"');
    expect(w).toContain('options.mtu differs: OLD 1500, NEW 9000');
    expect(w).toContain('options.profile differs: OLD "default", NEW "quick"');
    expect(w).toContain('NEW status is "incomplete": vxtap round 2: setup failed');
    expect(w.some((x) => /commit|hostname/.test(x))).toBe(false);
  });

  it('a mode missing on one side or without data is reported, not compared', () => {
    const n = structuredClone(o5);
    n.modes = n.modes.filter((m) => m.id !== 'ovs-gre');
    n.samples = n.samples.filter((s) => s.mode !== 'ovs-gre').map((s) => (s.mode === 'vxtap' ? { ...s, tcp1: null } : s));
    const c = compareResults({ label: 'a', result: o5 }, { label: 'b', result: rederive(n) });
    expect(c.warnings).toContain('mode ovs-gre only in OLD (not compared)');
    expect(c.rows.some((r) => r.mode === 'ovs-gre')).toBe(false);
    expect(c.rows.find((r) => r.mode === 'vxtap' && r.metric === 'tcp1Gbps')).toMatchObject({ verdict: '~', p: null, note: 'no data in NEW' });
  });

  it('renders Markdown and JSON exactly as the golden files', () => {
    const c = compareResults({ label: 'old.json', result: o5 }, { label: 'new.json', result: n5 });
    checkGolden('compare-5v5.md', renderCompareMarkdown(c));
    const j = compareResults({ label: 'old.json', result: o5 }, { label: 'new.json', result: n5 }, { metrics: ['tcp1Gbps', 'latIdleP50', 'udp64NdrKpps'] });
    checkGolden('compare-5v5.json', `${JSON.stringify(j, null, 2)}\n`);
    const c3 = compareResults({ label: 'old.json', result: golden() }, { label: 'new.json', result: regressed(golden()) });
    checkGolden('compare-3v3.md', renderCompareMarkdown(c3));
  });

  it('formats values, deltas and options', () => {
    expect(formatValue(17.578376)).toBe('17.58');
    expect(formatValue(1234.5)).toBe('1235');
    expect(formatValue(0.0123456)).toBe('0.01235');
    expect(formatValue(null)).toBe('n/a');
    expect(formatDelta(-30)).toBe('-30.0%');
    expect(formatDelta(0.01)).toBe('0.0%');
    expect(formatDelta(4.26)).toBe('+4.3%');
    expect(parseCompareOptions({})).toEqual({ alpha: 0.05, metrics: null, failOnRegressionPct: null, json: false });
    expect(parseCompareOptions({ failOnRegression: '5%', metrics: 'a, b' })).toMatchObject({ failOnRegressionPct: 5, metrics: ['a', 'b'] });
    expect((parseCompareOptions({ alpha: '1.5' }) as Error).message).toMatch(/^--alpha must be/);
    expect((parseCompareOptions({ failOnRegression: '-1' }) as Error).message).toMatch(/^--fail-on-regression must be/);
  });
});

// ---------------------------------------------------------------- CLI

describe('vxtap bench compare (CLI)', () => {
  const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
  let dir: string;
  beforeAll(() => {
    // Build so dist matches the sources (errors elsewhere in the tree do not stop emit).
    spawnSync(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', REPO], { stdio: 'ignore', timeout: 120_000 });
    dir = mkdtempSync(path.join(tmpdir(), 'vxtap-compare-'));
    const o = old5();
    writeFileSync(path.join(dir, 'old.json'), JSON.stringify(o));
    writeFileSync(path.join(dir, 'new.json'), JSON.stringify(regressed(o)));
    writeFileSync(path.join(dir, 'old3.json'), JSON.stringify(golden()));
    writeFileSync(path.join(dir, 'new3.json'), JSON.stringify(regressed(golden())));
    writeFileSync(path.join(dir, 'broken.json'), '{"schema": ');
    const bad = golden() as unknown as { samples: { round: number }[] };
    bad.samples[0].round = 0;
    writeFileSync(path.join(dir, 'bad-schema.json'), JSON.stringify(bad));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = (...args: string[]) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VXTAP_BENCH')));
    const r = spawnSync(process.execPath, [CLI, 'bench', 'compare', ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000, env });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('prints the golden Markdown and exits 0 without --fail-on-regression', () => {
    const r = run('old.json', 'new.json');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(path.join(fixtures, 'compare-5v5.md'), 'utf8'));
  });

  it('--json prints the golden JSON', () => {
    const r = run('old.json', 'new.json', '--json', '--metrics', 'tcp1Gbps,latIdleP50,udp64NdrKpps');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(path.join(fixtures, 'compare-5v5.json'), 'utf8'));
  });

  it('--fail-on-regression: exit 1 beyond the threshold, 0 within it', () => {
    const bad = run('old.json', 'new.json', '--fail-on-regression', '10');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/regression: vxtap tcp1Gbps -30\.0% \(p = 0\.008\) beyond 10%/);
    expect(run('old.json', 'new.json', '--fail-on-regression', '40').code).toBe(0);
    // 3 vs 3 rounds: the same -30% is not significant.
    const three = run('old3.json', 'new3.json', '--fail-on-regression', '1');
    expect(three.code).toBe(0);
    expect(three.stdout).toContain('can never reach p <= 0.05');
  });

  it('bad input exits 2 naming the file and the field', () => {
    const missing = run('old.json', 'nope.json');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/NEW nope\.json: cannot read \(ENOENT\)/);
    const broken = run('broken.json', 'new.json');
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/OLD broken\.json: not JSON/);
    const schema = run('old.json', 'bad-schema.json');
    expect(schema.code).toBe(2);
    expect(schema.stderr).toMatch(/NEW bad-schema\.json: not a valid bench result[\s\S]*\$\.samples\[0\]\.round: 0 < minimum 1/);
    expect(run('old.json', 'new.json', '--alpha', '2').stderr).toMatch(/--alpha must be/);
    expect(run('old.json', 'new.json', '--alpha', '2').code).toBe(2);
    const metric = run('old.json', 'new.json', '--metrics', 'tcp1Gbps,bogus');
    expect(metric.code).toBe(2);
    expect(metric.stderr).toMatch(/unknown metric "bogus"/);
    expect(run('old.json').code).toBe(2);
  });

  it('--help documents the flags and recommends --rounds 5', () => {
    const r = run('--help');
    expect(r.code).toBe(0);
    for (const s of ['--json', '--alpha', '--fail-on-regression', '--metrics', '--rounds 5', 'Exit status']) expect(r.stdout).toContain(s);
  });
});
