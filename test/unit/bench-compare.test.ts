import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  calibrateThresholds,
  compareResults,
  contextWarnings,
  defaultThreshold,
  formatDelta,
  formatValue,
  holmAdjust,
  judgeFamily,
  mannWhitney,
  midranks,
  minDetectableEffectPct,
  minRoundsFor,
  normalQuantile,
  parseCompareOptions,
  parseThresholds,
  regressions,
  renderCompareMarkdown,
  roundsToDetect,
  sharedMetrics,
  smallestPossibleP,
  thresholdFor,
} from '../../bench/compare.js';
import { derive, type BenchResult, type ModeRoundSample } from '../../bench/result.js';
import { validateResult } from '../../bench/validate.js';
import { ensureBuilt, runVxtap } from '../helpers/cli.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.join(here, '..', '..');
const fixtures = path.join(REPO, 'test', 'fixtures', 'bench');
/** Golden outputs of compare (UPDATE_GOLDEN=1 npx vitest run test/unit/bench-compare.test.ts rewrites them). */
const goldens = path.join(REPO, 'test', 'fixtures', 'compare');
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
  const extra = r.samples.filter((s) => s.round === 1 || s.round === 2).map((s) => ({ ...scaleSample(s, s.round === 1 ? 1.01 : 0.99, s.round === 1 ? 1.01 : 0.99), round: s.round + 3 }));
  r.samples.push(...extra);
  r.order.push(r.order[0], r.order[1]);
  r.options.rounds = 5;
  r.profile.rounds = 5;
  return rederive(r);
}

/** OLD with `n` rounds: the golden rounds 1-3, then round k = round ((k-1) % 3) + 1 x (1 + 0.004 (k - 6.5)), so every round differs a little. */
function oldN(n: number): BenchResult {
  const r = golden();
  const base = r.samples.filter((s) => s.round <= 3);
  for (let k = 4; k <= n; k++) {
    const f = 1 + 0.004 * (k - 6.5);
    r.samples.push(...base.filter((s) => s.round === ((k - 1) % 3) + 1).map((s) => ({ ...scaleSample(s, f, f), round: k })));
    r.order.push(r.order[(k - 1) % 3]);
  }
  r.options.rounds = n;
  r.profile.rounds = n;
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
  const file = path.join(goldens, name);
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

// ---------------------------------------------------------------- decision helpers

describe('decision helpers', () => {
  it('normal quantiles match scipy.stats.norm.ppf', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 8);
    expect(normalQuantile(0.8)).toBeCloseTo(0.8416212335729143, 8);
    expect(normalQuantile(0.0005)).toBeCloseTo(-3.2905267314918945, 8);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 12);
    expect(() => normalQuantile(1)).toThrow(RangeError);
  });

  it('Holm adjusted p-values: hand-computed, and equal to the step-down rule on random families', () => {
    // sorted 0.01, 0.02, 0.03, 0.5 with m = 4: 0.04, max(0.04, 0.06) = 0.06, max(0.06, 0.06) = 0.06, 0.5
    expect(holmAdjust([0.03, null, 0.01, 0.5, 0.02])).toEqual([0.06, null, 0.04, 0.5, 0.06]);
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 12 }), fc.double({ min: 0.001, max: 0.2, noNaN: true }), (ps, alpha) => {
        // Step-down: reject sorted p(k) while p(k) <= alpha / (m - k).
        const order = ps.map((p, i) => ({ p, i })).sort((a, b) => a.p - b.p || a.i - b.i);
        const rejected = new Set<number>();
        for (const [k, { p, i }] of order.entries()) {
          if (p <= alpha / (ps.length - k)) rejected.add(i);
          else break;
        }
        const adj = holmAdjust(ps);
        for (let i = 0; i < ps.length; i++) expect((adj[i] as number) <= alpha).toBe(rejected.has(i));
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('minimum detectable effect: falls with rounds, rises with noise, matches the closed form', () => {
    const x = [100, 102, 98, 101, 99];
    const y = [100, 101, 99, 102, 98];
    const mde = minDetectableEffectPct(x, y, 100, 0.05) as number;
    // pooled sd = sqrt(20 / 8) = 1.58114; (1.95996 + 0.84162) * 1.58114 * sqrt(2/5) / sqrt(3/pi) = 2.86694
    expect(mde).toBeCloseTo(2.86694, 4);
    expect(minDetectableEffectPct([...x, ...x], [...y, ...y], 100, 0.05)! < mde).toBe(true);
    expect(
      minDetectableEffectPct(
        x.map((v) => 100 + (v - 100) * 3),
        y,
        100,
        0.05,
      )! > mde,
    ).toBe(true);
    expect(minDetectableEffectPct([1], [1], 1, 0.05)).toBeNull();
    expect(minDetectableEffectPct(x, y, 0, 0.05)).toBeNull();
    // CV 5%, detect 10%, alpha 0.05: 2 (2.80 * 0.05)^2 / 0.01 / (3/pi) = 4.1 -> 5 rounds
    expect(roundsToDetect(0.05, 10, 0.05)).toBe(5);
    expect(roundsToDetect(0.05, 5, 0.05)).toBe(17);
    expect(roundsToDetect(0.001, 10, 0.001)).toBe(minRoundsFor(0.001));
  });

  it('judgeFamily: the four verdicts', () => {
    const th = { minEffectPct: 5, detectPct: 10, cvMax: 0.1 };
    const base = [100, 101, 99, 100.5, 99.5, 100.2, 99.8, 100.1];
    const j = judgeFamily(
      [
        { old: base, new: base.map((v) => v * 0.8), higherIsBetter: true, threshold: th }, // -20%: worse
        { old: base, new: base.map((v) => v * 0.97), higherIsBetter: true, threshold: th }, // -3% significant: same (below min effect)
        { old: base, new: [...base].reverse(), higherIsBetter: true, threshold: th }, // no change, low noise: same
        { old: base.map((v, i) => v * (i % 2 ? 1.3 : 0.7)), new: base.map((v, i) => v * (i % 2 ? 0.7 : 1.3)), higherIsBetter: true, threshold: th }, // CV 30%: unknown, noisy
        { old: [], new: base, higherIsBetter: true, threshold: th }, // no data: unknown
      ],
      { alpha: 0.05, correction: 'holm' },
    );
    expect(j.map((x) => x.verdict)).toEqual(['worse', 'same', 'same', 'unknown', 'unknown']);
    expect(j[1].note).toMatch(/below the minimum effect of 5%/);
    expect(j[3]).toMatchObject({ noisy: true });
    expect(j[3].note).toMatch(/would only see a change of the size in column MDE/);
    expect(j[3].mdePct! > 10).toBe(true);
    expect(j[4]).toMatchObject({ note: 'no data in OLD', p: null, pAdjusted: null });
    // Four tests in the family: the adjusted p of the -20% row is 4 x its raw p (it is the smallest).
    expect(j[0].pAdjusted).toBeCloseTo(4 * (j[0].p as number), 12);
  });

  it('thresholds: defaults by metric family, file entries by mode win, bad files name the field', () => {
    expect(defaultThreshold('tcp1Gbps')).toEqual({ minEffectPct: 5, detectPct: 10, cvMax: 0.1 });
    expect(defaultThreshold('udp64PdrKpps').minEffectPct).toBe(5);
    expect(defaultThreshold('latIdleP50').minEffectPct).toBe(10);
    expect(defaultThreshold('latLoadedP99').minEffectPct).toBe(25);
    const t = parseThresholds({
      schema: 'vxtap-bench-thresholds',
      schemaVersion: 1,
      source: 's',
      metrics: { tcp1Gbps: { minEffectPct: 3, detectPct: 6, cvMax: 0.05 } },
      modes: { vxtap: { tcp1Gbps: { minEffectPct: 7, detectPct: 14, cvMax: 0.2 } } },
    });
    if (t instanceof Error) throw t;
    expect(thresholdFor(t, 'vxtap', 'tcp1Gbps').minEffectPct).toBe(7);
    expect(thresholdFor(t, 'bare', 'tcp1Gbps').minEffectPct).toBe(3);
    expect(thresholdFor(t, 'bare', 'latIdleP50').minEffectPct).toBe(10);
    expect((parseThresholds({ schema: 'nope' }) as Error).message).toMatch(/schema must be "vxtap-bench-thresholds"/);
    expect((parseThresholds({ schema: 'vxtap-bench-thresholds', schemaVersion: 1, metrics: { tcp1Gbps: { minEffectPct: -1, detectPct: 1, cvMax: 1 } } }) as Error).message).toBe(
      'thresholds: metrics.tcp1Gbps.minEffectPct must be a number >= 0 (got -1)',
    );
  });
});

// ---------------------------------------------------------------- comparison

describe('compareResults', () => {
  let o5: BenchResult;
  let n5: BenchResult;
  let o10: BenchResult;
  let n10: BenchResult;
  beforeAll(() => {
    o5 = old5();
    n5 = regressed(o5);
    o10 = oldN(10);
    n10 = regressed(o10);
  });

  it('derived fixtures are valid results', () => {
    expect(validateResult(o5)).toEqual([]);
    expect(validateResult(n5)).toEqual([]);
    expect(validateResult(o10)).toEqual([]);
  });

  it('5 vs 5 without correction: vxtap TCP -30% worse, kernel-vxlan latency better, unchanged rows same', () => {
    const c = compareResults({ label: 'old.json', result: o5 }, { label: 'new.json', result: n5 }, { correction: 'none' });
    const row = (mode: string, metric: string) => c.rows.find((r) => r.mode === mode && r.metric === metric)!;
    expect(row('vxtap', 'tcp1Gbps')).toMatchObject({ verdict: 'worse', note: null, method: 'exact' });
    expect(row('vxtap', 'tcp1Gbps').p).toBeCloseTo(2 / 252, 12);
    expect(row('vxtap', 'tcp1Gbps').pAdjusted).toBe(row('vxtap', 'tcp1Gbps').p);
    expect(row('vxtap', 'tcp1Gbps').deltaPct).toBeCloseTo(-30, 6);
    expect(row('vxtap', 'tcpNGbps').verdict).toBe('worse');
    expect(row('kernel-vxlan', 'latIdleP50')).toMatchObject({ verdict: 'better' });
    expect(row('kernel-vxlan', 'latIdleP50').deltaPct).toBeCloseTo(-30, 6);
    expect(row('bare', 'tcp1Gbps')).toMatchObject({ verdict: 'same', p: 1, deltaPct: 0 });
    expect(c.warnings).toEqual([]);
    expect(c.counts.worse).toBe(2);
    expect(regressions(c, 10).map((r) => `${r.mode}/${r.metric}`)).toEqual(['vxtap/tcp1Gbps', 'vxtap/tcpNGbps']);
    expect(regressions(c, 40)).toEqual([]);
  });

  it('5 vs 5 with Holm over all rows: the same -30% is unknown (5 rounds cannot reach alpha / tests), and says how many rounds would', () => {
    const c = compareResults({ label: 'old.json', result: o5 }, { label: 'new.json', result: n5 });
    expect(c.correction).toBe('holm');
    expect(c.tests).toBe(c.rows.length);
    const r = c.rows.find((x) => x.mode === 'vxtap' && x.metric === 'tcp1Gbps')!;
    expect(r.verdict).toBe('unknown');
    expect(r.note).toMatch(new RegExp(`can never reach p <= .* \\(alpha 0.05 / ${c.tests} tests, Holm\\) \\(smallest possible p = 0.008\\); run both with --rounds 8 or more`));
    expect(c.counts.worse + c.counts.better).toBe(0);
  });

  it('10 vs 10 with Holm: the -30% rows are worse/better, unchanged low-noise rows same', () => {
    const c = compareResults({ label: 'old.json', result: o10 }, { label: 'new.json', result: n10 });
    const row = (mode: string, metric: string) => c.rows.find((r) => r.mode === mode && r.metric === metric)!;
    expect(row('vxtap', 'tcp1Gbps').verdict).toBe('worse');
    expect(row('vxtap', 'tcp1Gbps').pAdjusted! <= 0.05).toBe(true);
    expect(row('vxtap', 'tcp1Gbps').pAdjusted! > row('vxtap', 'tcp1Gbps').p!).toBe(true);
    expect(row('kernel-vxlan', 'latIdleP50').verdict).toBe('better');
    expect(row('bare', 'tcp1Gbps').verdict).toBe('same');
    expect(regressions(c, 0).map((x) => `${x.mode}/${x.metric}`)).toEqual(['vxtap/tcp1Gbps', 'vxtap/tcpNGbps']);
  });

  it('a significant change below the minimum effect is same; noisy figures are flagged', () => {
    // vxtap TCP 1 stream made steady (6 Gbit/s + 0.2% per round), then 3% lower in NEW: fully separated, p ~ 1e-5.
    const o = structuredClone(o10);
    for (const s of o.samples) if (s.mode === 'vxtap' && s.tcp1) s.tcp1.receivedBps = 6e9 * (1 + 0.002 * s.round);
    const n = structuredClone(o);
    n.samples = n.samples.map((s) => (s.mode === 'vxtap' ? scaleSample(s, 0.97, 1) : s));
    const c = compareResults({ label: 'a', result: rederive(o) }, { label: 'b', result: rederive(n) }, { metrics: ['tcp1Gbps'] });
    const r = c.rows.find((x) => x.mode === 'vxtap')!;
    expect(r.pAdjusted! < 0.001).toBe(true);
    expect(r).toMatchObject({ verdict: 'same', note: 'significant, but |delta| is below the minimum effect of 5%' });
    // cvMax 0 in a thresholds file: every row with any spread is noisy.
    const t = parseThresholds({ schema: 'vxtap-bench-thresholds', schemaVersion: 1, metrics: { tcp1Gbps: { minEffectPct: 5, detectPct: 10, cvMax: 0 } } });
    const c2 = compareResults({ label: 'a', result: o10 }, { label: 'b', result: n10 }, { metrics: ['tcp1Gbps'], thresholds: t as never });
    expect(c2.rows.every((x) => x.noisy)).toBe(true);
    expect(c2.counts.noisy).toBe(c2.rows.length);
    expect(renderCompareMarkdown(c2)).toContain('worse, **noisy**');
  });

  it('3 vs 3: never significant, unknown, and says why', () => {
    const c = compareResults({ label: 'old.json', result: golden() }, { label: 'new.json', result: regressed(golden()) }, { correction: 'none' });
    expect(c.rows.every((r) => r.verdict === 'unknown' || r.verdict === 'same')).toBe(true);
    const r = c.rows.find((x) => x.mode === 'vxtap' && x.metric === 'tcp1Gbps')!;
    expect(r.p).toBeCloseTo(0.1, 12);
    expect(r.verdict).toBe('unknown');
    expect(r.note).toBe('n=3+3 rounds can never reach p <= 0.05 (smallest possible p = 0.100); run both with --rounds 5 or more');
    expect(renderCompareMarkdown(c)).toContain('can never reach p <= 0.05');
  });

  it('--alpha 0.1 without correction lets 3 vs 3 fully separated rounds through (p = 0.1 <= alpha)', () => {
    const c = compareResults({ label: 'o', result: golden() }, { label: 'n', result: regressed(golden()) }, { alpha: 0.1, correction: 'none' });
    expect(c.rows.find((x) => x.mode === 'vxtap' && x.metric === 'tcp1Gbps')).toMatchObject({ verdict: 'worse', note: null });
    expect(c.rows.find((x) => x.mode === 'kernel-vxlan' && x.metric === 'latIdleP50')?.verdict).toBe('better');
  });

  it('identical inputs: no better or worse, p = 1 everywhere, no warnings', () => {
    const c = compareResults({ label: 'a', result: o10 }, { label: 'b', result: o10 });
    expect(c.counts).toMatchObject({ better: 0, worse: 0 });
    expect(c.rows.every((r) => r.p === 1 && r.deltaPct === 0)).toBe(true);
    // bare TCP (CV 4%) could have shown a 10% change: same; vxtap TCP (CV 13%) could not at alpha / tests: unknown.
    expect(c.rows.find((r) => r.mode === 'bare' && r.metric === 'tcp1Gbps')?.verdict).toBe('same');
    expect(c.rows.find((r) => r.mode === 'vxtap' && r.metric === 'tcp1Gbps')).toMatchObject({ verdict: 'unknown', noisy: true });
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
    expect(c.rows.find((r) => r.mode === 'vxtap' && r.metric === 'tcp1Gbps')).toMatchObject({ verdict: 'unknown', p: null, note: 'no data in NEW' });
    expect(c.tests).toBe(c.rows.filter((r) => r.p !== null).length);
  });

  it('calibration from an A/A pair: the largest median shift is the minimum effect, detect twice that', () => {
    const a2 = structuredClone(o10);
    a2.runId = 'aa-2';
    a2.samples = a2.samples.map((s) => (s.mode === 'vxtap' ? scaleSample(s, 1.034, 1.12) : scaleSample(s, 1.004, 1)));
    const t = calibrateThresholds([
      { label: 'A1.json', result: o10 },
      { label: 'A2.json', result: rederive(a2) },
    ]);
    expect(t.modes.vxtap.tcp1Gbps.minEffectPct).toBe(3.4);
    expect(t.modes.vxtap.tcp1Gbps.detectPct).toBe(6.8);
    expect(t.modes.vxtap.latIdleP50.minEffectPct).toBe(12);
    expect(t.modes.bare.tcp1Gbps.minEffectPct).toBe(1); // 0.4% shift, floored at 1%
    expect(t.metrics.tcp1Gbps.minEffectPct).toBe(3.4); // largest over modes
    expect(t.modes.vxtap.tcp1Gbps.cvMax).toBeGreaterThan(o10.derived.byMode.vxtap.tcp1Gbps.summary.cv! * 1.49);
    expect(parseThresholds(JSON.parse(JSON.stringify(t)))).toEqual(t);
    expect(() => calibrateThresholds([{ label: 'A1.json', result: o10 }])).toThrow(/two or more/);
    checkGolden('thresholds-aa.json', `${JSON.stringify(t, null, 2)}\n`);
  });

  it('renders Markdown and JSON exactly as the golden files', () => {
    checkGolden('compare-5v5-holm.md', renderCompareMarkdown(compareResults({ label: 'old.json', result: o5 }, { label: 'new.json', result: n5 })));
    checkGolden('compare-5v5-none.md', renderCompareMarkdown(compareResults({ label: 'old.json', result: o5 }, { label: 'new.json', result: n5 }, { correction: 'none' })));
    const j = compareResults({ label: 'old10.json', result: o10 }, { label: 'new10.json', result: n10 }, { metrics: ['tcp1Gbps', 'latIdleP50', 'udp64NdrKpps'] });
    checkGolden('compare-10v10.json', `${JSON.stringify(j, null, 2)}\n`);
    checkGolden('compare-10v10.md', renderCompareMarkdown(compareResults({ label: 'old10.json', result: o10 }, { label: 'new10.json', result: n10 })));
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
    expect(parseCompareOptions({})).toEqual({ alpha: 0.05, metrics: null, correction: 'holm', failOnRegressionPct: null, json: false });
    expect(parseCompareOptions({ failOnRegression: '5%', metrics: 'a, b', correction: 'none' })).toMatchObject({ failOnRegressionPct: 5, metrics: ['a', 'b'], correction: 'none' });
    expect((parseCompareOptions({ alpha: '1.5' }) as Error).message).toMatch(/^--alpha must be/);
    expect((parseCompareOptions({ failOnRegression: '-1' }) as Error).message).toMatch(/^--fail-on-regression must be/);
    expect((parseCompareOptions({ correction: 'bh' }) as Error).message).toBe('--correction must be "holm" or "none" (got "bh")');
  });
});

// ---------------------------------------------------------------- CLI

describe('vxtap bench compare (CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    // Build so dist matches the sources (errors elsewhere in the tree do not stop emit). Asynchronous:
    // a synchronous child blocks the test worker, and vitest's RPC times out on a loaded machine.
    await ensureBuilt();
    dir = mkdtempSync(path.join(tmpdir(), 'vxtap-compare-'));
    const o = old5();
    writeFileSync(path.join(dir, 'old.json'), JSON.stringify(o));
    writeFileSync(path.join(dir, 'new.json'), JSON.stringify(regressed(o)));
    const o10 = oldN(10);
    writeFileSync(path.join(dir, 'old10.json'), JSON.stringify(o10));
    writeFileSync(path.join(dir, 'new10.json'), JSON.stringify(regressed(o10)));
    writeFileSync(path.join(dir, 'old3.json'), JSON.stringify(golden()));
    writeFileSync(path.join(dir, 'new3.json'), JSON.stringify(regressed(golden())));
    writeFileSync(path.join(dir, 'broken.json'), '{"schema": ');
    const bad = golden() as unknown as { samples: { round: number }[] };
    bad.samples[0].round = 0;
    writeFileSync(path.join(dir, 'bad-schema.json'), JSON.stringify(bad));
    writeFileSync(path.join(dir, 'bad-thresholds.json'), JSON.stringify({ schema: 'vxtap-bench-thresholds', schemaVersion: 1, metrics: { tcp1Gbps: { minEffectPct: 5, detectPct: 'x', cvMax: 1 } } }));
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = (...args: string[]) => runVxtap(['bench', 'compare', ...args], { cwd: dir, timeoutMs: 60_000 });

  it('prints the golden Markdown and exits 0 without --fail-on-regression', async () => {
    const r = await run('old10.json', 'new10.json');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(path.join(goldens, 'compare-10v10.md'), 'utf8'));
  });

  it('--json prints the golden JSON', async () => {
    const r = await run('old10.json', 'new10.json', '--json', '--metrics', 'tcp1Gbps,latIdleP50,udp64NdrKpps');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(path.join(goldens, 'compare-10v10.json'), 'utf8'));
  });

  it('--fail-on-regression: exit 1 beyond the threshold, 0 within it; unknown never fails', async () => {
    const bad = await run('old10.json', 'new10.json', '--fail-on-regression', '10');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/regression: vxtap tcp1Gbps -30\.0% \(adjusted p = [0-9.e-]+\) beyond 10%/);
    expect((await run('old10.json', 'new10.json', '--fail-on-regression', '40')).code).toBe(0);
    // 5 vs 5 with Holm over all rows: unknown, not a failure; without correction it is worse.
    expect((await run('old.json', 'new.json', '--fail-on-regression', '1')).code).toBe(0);
    expect((await run('old.json', 'new.json', '--fail-on-regression', '1', '--correction', 'none')).code).toBe(1);
    // 3 vs 3 rounds: the same -30% is not significant.
    const three = await run('old3.json', 'new3.json', '--fail-on-regression', '1');
    expect(three.code).toBe(0);
    expect(three.stdout).toContain('can never reach p <=');
  });

  it('--calibrate prints thresholds that --thresholds reads', async () => {
    const cal = await run('--calibrate', 'old10.json', 'old.json', 'old3.json');
    expect(cal.code).toBe(0);
    const t = JSON.parse(cal.stdout);
    expect(t).toMatchObject({ schema: 'vxtap-bench-thresholds', schemaVersion: 1 });
    expect(t.source).toMatch(/3 results \(3 pairs\)/);
    writeFileSync(path.join(dir, 't.json'), cal.stdout);
    const r = await run('old10.json', 'new10.json', '--thresholds', 't.json', '--json', '--metrics', 'tcp1Gbps');
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.thresholds).toBe(t.source);
    expect(c.rows.find((x: { mode: string }) => x.mode === 'vxtap').threshold).toEqual(t.modes.vxtap.tcp1Gbps);
    expect((await run('--calibrate', 'old.json')).code).toBe(2);
  });

  it('bad input exits 2 naming the file and the field', async () => {
    const missing = await run('old.json', 'nope.json');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/NEW nope\.json: cannot read \(ENOENT\)/);
    const broken = await run('broken.json', 'new.json');
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/OLD broken\.json: not JSON/);
    const schema = await run('old.json', 'bad-schema.json');
    expect(schema.code).toBe(2);
    expect(schema.stderr).toMatch(/NEW bad-schema\.json: not a valid bench result[\s\S]*\$\.samples\[0\]\.round: 0 < minimum 1/);
    expect((await run('old.json', 'new.json', '--alpha', '2')).stderr).toMatch(/--alpha must be/);
    expect((await run('old.json', 'new.json', '--alpha', '2')).code).toBe(2);
    const metric = await run('old.json', 'new.json', '--metrics', 'tcp1Gbps,bogus');
    expect(metric.code).toBe(2);
    expect(metric.stderr).toMatch(/unknown metric "bogus"/);
    const th = await run('old.json', 'new.json', '--thresholds', 'bad-thresholds.json');
    expect(th.code).toBe(2);
    expect(th.stderr).toMatch(/--thresholds bad-thresholds\.json: thresholds: metrics\.tcp1Gbps\.detectPct must be a number >= 0/);
    expect((await run('old.json', 'new.json', '--thresholds', 'none.json')).stderr).toMatch(/--thresholds none\.json: ENOENT/);
    expect((await run('old.json', 'new.json', '--correction', 'bh')).code).toBe(2);
    expect((await run('old.json')).code).toBe(2);
    expect((await run('old.json')).stderr).toMatch(/needs exactly two files/);
  });

  it('--help documents the flags', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    for (const s of ['--json', '--alpha', '--fail-on-regression', '--metrics', '--correction', '--thresholds', '--calibrate', 'Exit status']) expect(r.stdout).toContain(s);
  });
});
