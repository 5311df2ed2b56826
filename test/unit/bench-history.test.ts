import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gaussian, mulberry32 } from '../../bench/decide.js';
import { analyzeHistory, bestSplit, eDivisive, fingerprint, loadHistoryDir, readHistoryDir, renderHistoryMarkdown, trendView } from '../../bench/history.js';
import { derive, type BenchResult } from '../../bench/result.js';
import { ensureBuilt, runVxtap } from '../helpers/cli.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.join(here, '..', '..');
const HISTORY_FIXTURES = path.join(REPO, 'test', 'fixtures', 'history');
const golden = (): BenchResult => JSON.parse(readFileSync(path.join(REPO, 'test', 'fixtures', 'bench', 'golden-result.json'), 'utf8')) as BenchResult;

/** `n` values 100 x (1 + cv N(0,1)) x shape(i), seeded. */
function series(seed: number, n: number, cv: number, shape: (i: number) => number): number[] {
  const g = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => 100 * (1 + cv * gaussian(g)) * shape(i));
}

/** Slow reference: Q(tau) straight from the paper's definition, every pair summed afresh. */
function slowBestSplit(v: number[], minSize: number): { tau: number; q: number } | null {
  let best: { tau: number; q: number } | null = null;
  for (let tau = minSize; tau <= v.length - minSize; tau++) {
    const x = v.slice(0, tau);
    const y = v.slice(tau);
    const m = x.length;
    const n = y.length;
    let between = 0;
    for (const a of x) for (const b of y) between += Math.abs(a - b);
    const within = (w: number[]) => {
      let s = 0;
      for (let i = 0; i < w.length; i++) for (let j = i + 1; j < w.length; j++) s += Math.abs(w[i] - w[j]);
      return w.length > 1 ? s / ((w.length * (w.length - 1)) / 2) : 0;
    };
    const q = ((m * n) / (m + n)) * ((2 * between) / (m * n) - within(x) - within(y));
    if (!best || q > best.q + 1e-9) best = { tau, q };
  }
  return best;
}

describe('E-divisive means on synthetic histories', () => {
  it('the running-sum split search equals the definition on random series', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 2, maxLength: 25 }), fc.integer({ min: 1, max: 4 }), (v, minSize) => {
        const fast = bestSplit(v, 0, v.length, minSize);
        const slow = slowBestSplit(v, minSize);
        if (!slow || v.length < 2 * minSize) return fast === null;
        return fast !== null && Math.abs(fast.q - slow.q) < 1e-6 * Math.max(1, Math.abs(slow.q));
      }),
      { numRuns: 300, seed: 21 },
    );
  });

  it('a 10% step at run 20 of 40 (2% noise) is found at index 20, and only there', () => {
    for (const seed of [1, 2, 3]) {
      const cps = eDivisive(series(seed, 40, 0.02, (i) => (i >= 20 ? 0.9 : 1)));
      expect(cps.map((c) => c.index)).toEqual([20]);
      expect(cps[0].p).toBeLessThanOrEqual(0.01);
    }
  });

  it('a step of 5% at 1% noise near the end (run 33 of 40) is found once 3 runs confirm it... and the index is exact', () => {
    expect(eDivisive(series(4, 36, 0.01, (i) => (i >= 33 ? 0.95 : 1))).map((c) => c.index)).toEqual([33]);
  });

  it('a slow drift (-20% over 40 runs, 0.5% per run, under the 2% noise between consecutive runs) is found', () => {
    const values = series(5, 40, 0.02, (i) => 1 - (0.2 * i) / 39);
    // No pairwise step is larger than the noise...
    const steps = values.slice(1).map((v, i) => Math.abs(v - values[i]) / values[i]);
    expect(Math.min(...steps)).toBeLessThan(0.005);
    // ...but the history has change points, each a step down.
    const cps = eDivisive(values);
    expect(cps.length).toBeGreaterThanOrEqual(1);
  });

  it('pure noise: no change points in 100 series of 30 runs but for about the significance level (<= 3 of 100)', () => {
    let withChange = 0;
    for (let s = 0; s < 100; s++)
      if (
        eDivisive(
          series(100 + s, 30, 0.03, () => 1),
          { seed: s + 1 },
        ).length
      )
        withChange++;
    expect(withChange).toBeLessThanOrEqual(3);
  });

  it('constant and too-short series: nothing to find', () => {
    expect(eDivisive(Array.from({ length: 20 }, () => 5))).toEqual([]);
    expect(eDivisive([1, 2, 3, 4, 5])).toEqual([]);
  });
});

// ---------------------------------------------------------------- histories of results

/** A copy of the golden run started `day` days later, with vxtap's TCP throughput x `factor` (and 1% per-run jitter). */
function run(day: number, factor: number): BenchResult {
  const r = golden();
  const t = new Date(Date.parse(r.startedAt) + day * 86_400_000).toISOString();
  r.startedAt = t;
  r.runId = `run-${String(day).padStart(2, '0')}`;
  r.environment!.git.commit = `${day.toString(16).padStart(2, '0')}${'c'.repeat(38)}`;
  const jitter = 1 + 0.01 * Math.sin(day * 1.7);
  for (const s of r.samples) {
    for (const x of [s.tcp1, s.tcpN]) if (x) x.receivedBps *= jitter * (s.mode === 'vxtap' ? factor : 1);
  }
  r.derived = JSON.parse(JSON.stringify(derive(r))) as BenchResult['derived'];
  return r;
}

describe('analyzeHistory over result files', () => {
  it('groups by fingerprint, orders by start time, finds the vxtap step at the right run', () => {
    const entries = Array.from({ length: 12 }, (_, d) => ({ file: `d${d}/result.json`, result: run(d, d >= 7 ? 0.85 : 1) })).reverse();
    const other = golden();
    other.environment!.kernel = '6.1.0';
    entries.push({ file: 'other/result.json', result: other });
    const h = analyzeHistory(entries, { metrics: ['tcp1Gbps', 'latIdleP50'] });
    expect(h.counts).toMatchObject({ runs: 13, groups: 2 });
    const g = h.groups[0];
    expect(g.runs.map((r) => r.runId)).toEqual(Array.from({ length: 12 }, (_, d) => `run-${String(d).padStart(2, '0')}`));
    const vx = g.series.find((s) => s.mode === 'vxtap' && s.metric === 'tcp1Gbps')!;
    expect(vx.changes.map((c) => c.index)).toEqual([7]);
    expect(vx.changes[0]).toMatchObject({ runId: 'run-07', kind: 'regression' });
    expect(vx.changes[0].changePct!).toBeCloseTo(-15, 0);
    expect(vx.segments.map((s) => [s.from, s.to])).toEqual([
      [0, 7],
      [7, 12],
    ]);
    // Nothing changed elsewhere.
    expect(g.series.filter((s) => s !== vx).every((s) => s.changes.length === 0)).toBe(true);
    expect(h.groups[1].series.every((s) => s.note?.startsWith('1 run(s) with a value'))).toBe(true);
    expect(fingerprint(other).kernel).toBe('6.1.0');
    const md = renderHistoryMarkdown(h);
    expect(md).toContain('| vxtap | tcp1Gbps (Gbit/s) | #8 run-07 | 07cccccccccc |');
    expect(md).toContain('regression');
    // The report's trend view: points, levels and change points per series.
    const tv = trendView(h, ['tcp1Gbps']);
    const tvx = tv[0].series.find((s) => s.mode === 'vxtap')!;
    expect(tvx.points).toHaveLength(12);
    expect(tvx.changes).toEqual([{ index: 7, changePct: vx.changes[0].changePct, kind: 'regression', p: vx.changes[0].p }]);
    expect(tv[0].series.every((s) => s.metric === 'tcp1Gbps')).toBe(true);
  });

  it('reads a real result (test/fixtures/history) and lists bad files as skipped', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vxtap-history-'));
    try {
      cpSync(HISTORY_FIXTURES, path.join(dir, 'real'), { recursive: true });
      mkdirSync(path.join(dir, 'broken'));
      writeFileSync(path.join(dir, 'broken', 'result.json'), '{');
      mkdirSync(path.join(dir, 'running'));
      writeFileSync(path.join(dir, 'running', 'result.json'), JSON.stringify({ ...golden(), status: 'running' }));
      const { entries, skipped } = await readHistoryDir(dir);
      expect(entries.map((e) => e.file)).toEqual([path.join('real', '20261203T155453Z-vm', 'result.json')]);
      expect(skipped.map((s) => s.file).sort()).toEqual([path.join('broken', 'result.json'), path.join('running', 'result.json')]);
      const h = analyzeHistory(entries, {}, skipped);
      expect(h.groups[0].fingerprint).toMatchObject({ profile: 'quick', cpuCount: 2, modes: ['bare', 'vxtap', 'vxtap:offload=off'] });
      expect(h.counts.changes).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loadHistoryDir (the report reads a history strictly)', () => {
  it('reads the fixtures through the result reader; a bad file or directory is an error naming it; running results are skipped', () => {
    const { entries, skipped } = loadHistoryDir(HISTORY_FIXTURES);
    expect(entries.map((e) => e.file)).toEqual([path.join('20261203T155453Z-vm', 'result.json')]);
    expect(entries[0].result.samples[0].tcp1?.intervalBps).toBeDefined();
    expect(skipped).toEqual([]);
    const dir = mkdtempSync(path.join(tmpdir(), 'vxtap-history-strict-'));
    try {
      expect(() => loadHistoryDir(path.join(dir, 'missing'))).toThrow(/missing: cannot read \(ENOENT\)/);
      expect(() => loadHistoryDir(dir)).toThrow(/no finished result\.json under it/);
      expect(loadHistoryDir(dir, { allowEmpty: true }).entries).toEqual([]);
      mkdirSync(path.join(dir, 'running'));
      writeFileSync(path.join(dir, 'running', 'result.json'), JSON.stringify({ ...golden(), status: 'running' }));
      expect(() => loadHistoryDir(dir)).toThrow(/no finished result\.json under it \(1 still marked running\)/);
      cpSync(HISTORY_FIXTURES, path.join(dir, 'real'), { recursive: true });
      expect(loadHistoryDir(dir).skipped.map((s) => s.file)).toEqual([path.join('running', 'result.json')]);
      mkdirSync(path.join(dir, 'broken'));
      writeFileSync(path.join(dir, 'broken', 'result.json'), JSON.stringify({ schema: 'vxtap-bench-result', schemaVersion: 1 }));
      expect(() => loadHistoryDir(dir)).toThrow(/broken\/result\.json: does not match result\.schema\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('vxtap bench history (CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(path.join(tmpdir(), 'vxtap-history-cli-'));
    // 12 runs, vxtap 20% slower from run 9 on (4 runs on the new level: a permutation test of 8 + 4 can reach
    // p = 2 / C(12, 4) = 0.004; 6 + 3 could not reach 0.01).
    for (let d = 0; d < 12; d++) {
      mkdirSync(path.join(dir, 'h', `d${d}`), { recursive: true });
      writeFileSync(path.join(dir, 'h', `d${d}`, 'result.json'), JSON.stringify(run(d, d >= 8 ? 0.8 : 1)));
    }
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const cli = (...args: string[]) => runVxtap(['bench', 'history', ...args], { cwd: dir, timeoutMs: 120_000 });

  it('Markdown, --json, and --fail-on-regression when the newest level is a regression', async () => {
    const md = await cli('h', '--metrics', 'tcp1Gbps');
    expect(md.code).toBe(0);
    expect(md.stdout).toContain('| vxtap | tcp1Gbps (Gbit/s) | #9 run-08 |');
    const js = await cli('h', '--json', '--metrics', 'tcp1Gbps');
    expect(JSON.parse(js.stdout)).toMatchObject({ schema: 'vxtap-bench-history', counts: { runs: 12, groups: 1, changes: 1, regressions: 1 } });
    const fail = await cli('h', '--metrics', 'tcp1Gbps', '--fail-on-regression');
    expect(fail.code).toBe(1);
    expect(fail.stderr).toMatch(/regression: vxtap tcp1Gbps -(19|20)\.\d% at run-08/);
    expect((await cli('h', '--metrics', 'latIdleP50', '--fail-on-regression')).code).toBe(0);
  });

  it('bad input exits 2 naming the option or the directory', async () => {
    expect((await cli('nope')).code).toBe(2);
    expect((await cli('nope')).stderr).toMatch(/nope: cannot read \(ENOENT\)/);
    expect((await cli('h', '--significance', '2')).stderr).toMatch(/--significance must be/);
    expect((await cli('h', '--min-size', '0')).code).toBe(2);
  });
});
