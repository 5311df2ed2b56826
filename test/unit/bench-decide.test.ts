import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultThreshold, mannWhitney } from '../../bench/compare.js';
import {
  estimateRates,
  fastMannWhitney,
  gaussian,
  lookAlpha,
  makePlan,
  mulberry32,
  nextStep,
  parseSchedule,
  poolDrawsWithReplacement,
  resampledDraw,
  roundTable,
  sequentialCompare,
  simulatedDraw,
  type FamilyMetric,
} from '../../bench/decide.js';
import { derive, type BenchResult, type ModeRoundSample } from '../../bench/result.js';
import { ensureBuilt, runVxtap } from '../helpers/cli.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.join(here, '..', '..');

const TH = defaultThreshold('tcp1Gbps'); // min effect 5%, detect 10%, cvMax 0.1
const fam = (k: number): FamilyMetric[] => Array.from({ length: k }, (_, i) => ({ key: `m${i}`, higherIsBetter: true, threshold: TH }));
/** The CI plan: 6, 9, 12 rounds per side, alpha 0.05 over all looks. */
const PLAN = makePlan(6, 3, 12);

describe('the stopping rule', () => {
  it('plans looks in advance and splits alpha over them', () => {
    expect(PLAN.schedule).toEqual([6, 9, 12]);
    expect(lookAlpha(PLAN)).toBeCloseTo(0.05 / 3, 12);
    expect(makePlan(5, 4, 12).schedule).toEqual([5, 9, 12]);
    expect(makePlan(8, 1, 8).schedule).toEqual([8]);
    expect(() => makePlan(1, 1, 5)).toThrow(/initial rounds/);
    expect(() => makePlan(6, 3, 4)).toThrow(/max rounds/);
    expect(parseSchedule('6, 9,12')).toMatchObject({ schedule: [6, 9, 12], alpha: 0.05 });
    expect((parseSchedule('6,6') as Error).message).toMatch(/^--schedule must be strictly increasing/);
  });

  it('stops on worse, stops when decided, adds rounds while unknown, stops at the cap', () => {
    expect(nextStep(PLAN, 0, ['same', 'worse', 'unknown'])).toMatchObject({ action: 'stop', reason: 'worse' });
    expect(nextStep(PLAN, 0, ['same', 'better'])).toMatchObject({ action: 'stop', reason: 'decided' });
    expect(nextStep(PLAN, 0, ['same', 'unknown'])).toEqual({ action: 'add', rounds: 3, why: '1 metric(s) unknown at 6 rounds per side: add 3 to reach look 2 of 3' });
    expect(nextStep(PLAN, 1, ['unknown'])).toMatchObject({ action: 'add', rounds: 3 });
    expect(nextStep(PLAN, 2, ['unknown'])).toMatchObject({ action: 'stop', reason: 'cap' });
    expect(() => nextStep(PLAN, 3, [])).toThrow(RangeError);
  });

  it('sequentialCompare uses the first n rounds of each look', () => {
    // Identical steady sides: decided `same` at the first look.
    const rows = Array.from({ length: 12 }, (_, i) => [100 + (i % 4) * 0.1]);
    expect(sequentialCompare(rows, rows, fam(1), PLAN)).toEqual({ looks: 1, rounds: 6, stoppedBy: 'decided', verdicts: ['same'] });
    // Ten metrics: the per-test level 0.05 / 3 looks / 10 = 0.0017 is out of reach of 6 + 6 rounds (p >= 0.0022):
    // unknown at look 1, decided at look 2 (9 rounds).
    const wide = rows.map((r) => Array.from({ length: 10 }, () => r[0]));
    expect(sequentialCompare(wide, wide, fam(10), PLAN)).toMatchObject({ looks: 2, rounds: 9, stoppedBy: 'decided' });
    // 20% lower: worse at the first look that can reach the level.
    expect(
      sequentialCompare(
        wide,
        wide.map((r) => r.map((v, j) => (j === 0 ? v * 0.8 : v))),
        fam(10),
        PLAN,
      ),
    ).toMatchObject({ looks: 2, stoppedBy: 'worse' });
    expect(() => sequentialCompare(rows.slice(0, 5), rows, fam(1), PLAN)).toThrow(/needs 12 rounds/);
  });
});

describe('fastMannWhitney', () => {
  it('equals mannWhitney on continuous samples (cached exact null) and on tied ones (fallback)', () => {
    const sample = fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 14 });
    const same = (x: number[], y: number[]) => {
      const a = mannWhitney(x, y);
      const b = fastMannWhitney(x, y);
      return Math.abs(a.p - b.p) < 1e-12 && a.direction === b.direction;
    };
    fc.assert(fc.property(sample, sample, same), { numRuns: 300, seed: 11 });
    const ints = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 8 });
    fc.assert(fc.property(ints, ints, same), { numRuns: 100, seed: 12 });
  });
});

describe('Monte Carlo: simulated metric with known noise and known shift', () => {
  // CV 5% = the target for TCP at the CI profile; 2000 comparisons per rate
  // (Monte Carlo standard error ~0.5 percentage points near 5%).
  const N = 2000;

  it('A/A false alarms <= 5% at CV 5%, family of 3 metrics, over all looks', () => {
    const r = estimateRates(simulatedDraw(3, 0.05, 0, []), fam(3), PLAN, { comparisons: N, seed: 1, targets: [] });
    expect(r.anySignificant / N).toBeLessThanOrEqual(0.05);
    expect(r.stoppedAtLook.reduce((a, b) => a + b, 0)).toBe(N);
  });

  it('a 10% slowdown is detected in >= 90% of comparisons at CV 5%', () => {
    const r = estimateRates(simulatedDraw(1, 0.05, -10, [0]), fam(1), PLAN, { comparisons: N, seed: 2, targets: [0] });
    expect(r.targetsWorse / N).toBeGreaterThanOrEqual(0.9);
    // ... and within a family of 3 metrics where only the first is slowed.
    const r3 = estimateRates(simulatedDraw(3, 0.05, -10, [0]), fam(3), PLAN, { comparisons: N, seed: 3, targets: [0] });
    expect(r3.targetsWorse / N).toBeGreaterThanOrEqual(0.9);
  });

  it('peeking without splitting alpha over the looks inflates false alarms (why the split is there)', () => {
    const draw = simulatedDraw(1, 0.1, 0, []);
    const split = estimateRates(draw, fam(1), PLAN, { comparisons: N, seed: 4, targets: [] });
    const naive = estimateRates(draw, fam(1), { ...PLAN, spending: 'none' }, { comparisons: N, seed: 4, targets: [] });
    expect(split.anySignificant / N).toBeLessThanOrEqual(0.05);
    expect(naive.anySignificant).toBeGreaterThan(split.anySignificant);
  });

  it('seeded generators are reproducible and roughly standard normal', () => {
    const a = mulberry32(9);
    const b = mulberry32(9);
    expect(Array.from({ length: 5 }, a)).toEqual(Array.from({ length: 5 }, b));
    const g = mulberry32(10);
    const xs = Array.from({ length: 20000 }, () => gaussian(g));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sd - 1)).toBeLessThan(0.03);
  });
});

describe('resampling real per-round data', () => {
  /** A long "interleaved run": 60 rounds of 2 metrics with 5% noise, and a slowed build's 60 rounds. */
  const g = mulberry32(5);
  const pool = Array.from({ length: 60 }, () => [100 * (1 + 0.05 * gaussian(g)), 50 * (1 + 0.05 * gaussian(g))]);
  const slowed = Array.from({ length: 60 }, () => [90 * (1 + 0.05 * gaussian(g)), 50 * (1 + 0.05 * gaussian(g))]);

  it('A/A draws are disjoint rounds of the pool; with too few rounds they are drawn with replacement', () => {
    const d = resampledDraw({ a: pool }, 0, [])(mulberry32(1), 12);
    const used = [...d.old, ...d.new].map((r) => r[0]);
    expect(new Set(used).size).toBe(24);
    for (const v of used) expect(pool.some((r) => r[0] === v)).toBe(true);
    expect(poolDrawsWithReplacement({ a: pool }, 12)).toBe(false);
    expect(poolDrawsWithReplacement({ a: pool.slice(0, 20) }, 12)).toBe(true);
    expect(poolDrawsWithReplacement({ a: pool, b: slowed.slice(0, 11) }, 12)).toBe(true);
    const shifted = resampledDraw({ a: pool }, -10, [0])(mulberry32(1), 12);
    expect(shifted.new.map((r) => r[0])).toEqual(d.new.map((r) => r[0] * 0.9));
    expect(shifted.new.map((r) => r[1])).toEqual(d.new.map((r) => r[1]));
  });

  it('rates from the pool: A/A <= 5%, the slowed build detected >= 90%', () => {
    const fam2: FamilyMetric[] = [
      { key: 'tcp1Gbps', higherIsBetter: true, threshold: TH },
      { key: 'tcpNGbps', higherIsBetter: true, threshold: TH },
    ];
    const aa = estimateRates(resampledDraw({ a: pool }, 0, []), fam2, PLAN, { comparisons: 1000, seed: 6, targets: [] });
    expect(aa.anySignificant / 1000).toBeLessThanOrEqual(0.05);
    const ab = estimateRates(resampledDraw({ a: pool, b: slowed }, 0, []), fam2, PLAN, { comparisons: 1000, seed: 7, targets: [0] });
    expect(ab.targetsWorse / 1000).toBeGreaterThanOrEqual(0.9);
  });
});

// ---------------------------------------------------------------- round tables and the CLI

const golden = (): BenchResult => JSON.parse(readFileSync(path.join(REPO, 'test', 'fixtures', 'bench', 'golden-result.json'), 'utf8')) as BenchResult;

/** The golden run stretched to `n` rounds: round k = golden round ((k-1) % 3) + 1 with TCP x (1 + 0.01 sin k). */
function longRun(n: number): BenchResult {
  const r = golden();
  const base = r.samples.filter((s) => s.round <= 3);
  r.samples = [];
  for (let k = 1; k <= n; k++) {
    for (const s of base.filter((x) => x.round === ((k - 1) % 3) + 1)) {
      const c: ModeRoundSample = structuredClone(s);
      c.round = k;
      for (const t of [c.tcp1, c.tcpN]) if (t) t.receivedBps *= 1 + 0.01 * Math.sin(k);
      r.samples.push(c);
    }
  }
  r.order = Array.from({ length: n }, (_, k) => r.order[k % 3]);
  r.options.rounds = n;
  r.profile.rounds = n;
  r.derived = JSON.parse(JSON.stringify(derive(r))) as BenchResult['derived'];
  return r;
}

describe('roundTable and vxtap bench validate-decision (CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(path.join(tmpdir(), 'vxtap-decide-'));
    writeFileSync(path.join(dir, 'long.json'), JSON.stringify(longRun(30)));
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = (...args: string[]) => runVxtap(['bench', 'validate-decision', ...args], { cwd: dir, timeoutMs: 120_000 });

  it('roundTable: one row per round with data, one column per metric, several files pooled', () => {
    const r = longRun(4);
    const t = roundTable([r, r], 'vxtap', ['tcp1Gbps', 'latIdleP50']);
    expect(t).toHaveLength(8);
    expect(t[0][0]).toBeCloseTo((golden().samples.find((s) => s.mode === 'vxtap' && s.round === 1)!.tcp1!.receivedBps / 1e9) * (1 + 0.01 * Math.sin(1)), 9);
    expect(roundTable([r], 'nope', ['tcp1Gbps'])).toEqual([]);
  });

  it('--simulate-cv prints the rates as JSON', async () => {
    const r = await run('--simulate-cv', '0.05', '--comparisons', '300', '--metrics', 'tcp1Gbps');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o).toMatchObject({ schema: 'vxtap-bench-decision-validation', source: { kind: 'simulated', cv: 0.05 }, plan: { schedule: [6, 9, 12] }, shifted: { shiftPct: -10, targets: ['tcp1Gbps'] } });
    expect(o.aa.falseAlarmRate).toBeLessThanOrEqual(0.05);
    expect(o.shifted.detectionRate).toBeGreaterThanOrEqual(0.85);
  });

  it('resamples the rounds of a result file', async () => {
    const r = await run('long.json', '--mode', 'bare', '--metrics', 'tcp1Gbps,latIdleP50', '--comparisons', '200');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o.source).toMatchObject({ kind: 'resampled', mode: 'bare', rounds: 30, withReplacement: { aa: false, shifted: false } });
    expect(o.aa.comparisons).toBe(200);
    expect(o.family.map((f: { key: string }) => f.key)).toEqual(['tcp1Gbps', 'latIdleP50']);
    expect(r.stderr).toBe('');
    // 30 rounds cannot give two disjoint sides of 20: drawn with replacement, and said so.
    const thin = await run('long.json', '--mode', 'bare', '--metrics', 'tcp1Gbps', '--comparisons', '20', '--schedule', '10,20');
    expect(JSON.parse(thin.stdout).source.withReplacement.aa).toBe(true);
    expect(thin.stderr).toMatch(/30 round\(s\) of bare are fewer than the plan needs without replacement \(40\)/);
  });

  it('bad input exits 2 naming the option', async () => {
    expect((await run()).stderr).toMatch(/--simulate-cv/);
    expect((await run('--simulate-cv', '0.05', '--schedule', '9,6')).stderr).toMatch(/--schedule must be strictly increasing/);
    expect((await run('--simulate-cv', '0.05', '--metrics', 'bogus')).stderr).toMatch(/unknown metric "bogus"/);
    expect((await run('--simulate-cv', '0.05', '--targets', 'latIdleP99')).stderr).toMatch(/--targets must be among --metrics/);
    const few = await run('long.json', '--mode', 'nope');
    expect(few.code).toBe(2);
    expect(few.stderr).toMatch(/mode nope: 0 round\(s\)/);
  });
});
