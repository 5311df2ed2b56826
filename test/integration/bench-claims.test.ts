/**
 * The claim measurements end to end, as root: `vxtap bench --quick --measure
 * mtu-mismatch,redis` over kernel VXLAN and vxtap (the standard set left out
 * to keep this file short), the result checked against the schema, and bad
 * --measure values refused with exit status 2 before anything is created.
 * The run uses its own name prefix (VXTAP_BENCH_PREFIX=vxm), so the other
 * bench tests' leftover checks and `--cleanup` never meet its namespaces, and
 * this file never runs `--cleanup` itself: it checks that the run removed
 * everything it made.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateResult } from '../../bench/validate.js';
import { REDIS_PORT } from '../../bench/redis.js';
import type { BenchResult } from '../../bench/result.js';
import { ensureBuilt, runBenchIsolated } from '../helpers/cli.js';
import { benchLeftovers } from '../helpers/bench-leftovers.js';

const PREFIX = 'vxm';
const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot ? 'needs root' : !existsSync('/usr/bin/redis-server') ? 'needs redis-server (apt-get install redis-server redis-tools)' : null;
const out = mkdtempSync(path.join(os.tmpdir(), 'vxm-bench-claims-'));

const bench = (args: string[], timeoutMs: number) => runBenchIsolated(args, timeoutMs, { VXTAP_BENCH_PREFIX: PREFIX });
/** What of this file's runs is still on the host (redis-server by its address: it rewrites its environment). */
const leftovers = () => benchLeftovers(PREFIX, new RegExp(`redis-server 198\\.19\\.0\\.2:${REDIS_PORT}|dist/bench/transfer\\.js`), 'any');

beforeAll(async () => {
  if (!skipReason) await ensureBuilt();
}, 300_000);

afterAll(() => {
  rmSync(out, { recursive: true, force: true });
});

describe.skipIf(skipReason !== null)(`vxtap bench --measure (integration${skipReason ? `: skipped, ${skipReason}` : ''})`, () => {
  it('refuses bad --measure values with one message and exit 2, creating nothing', async () => {
    const before = await leftovers();
    const cases = [
      [['--measure', 'foo'], /^vxtap bench: --measure: unknown measurement "foo"/],
      [['--measure', 'redis,redis'], /^vxtap bench: --measure lists a measurement twice/],
      [['--measure', 'mtu-mismatch', '--hosts', 'a.invalid,b.invalid'], /^vxtap bench: --measure mtu-mismatch cannot run with --hosts/],
    ] as const;
    // Refused before anything starts, so the three can run side by side.
    const runs = await Promise.all(cases.map(([args]) => bench([...args, '--quick', '--out', out], 30_000)));
    runs.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(cases[i][1]);
    });
    expect(await leftovers()).toEqual(before);
  }, 60_000);

  it('--quick --measure mtu-mismatch,redis over kernel-vxlan and vxtap: every transfer classified, redis figures, schema-valid, nothing left', async () => {
    const started = Date.now();
    const r = await bench(['--quick', '--modes', 'kernel-vxlan,vxtap', '--measure', 'mtu-mismatch,redis', '--json', '--no-progress', '--out', out], 120_000);
    const seconds = (Date.now() - started) / 1000;
    const result = JSON.parse(r.stdout) as BenchResult;
    expect(validateResult(result)).toEqual([]);
    expect(result.options.measure).toEqual(['mtu-mismatch', 'redis']);
    for (const m of result.modes) {
      if (!m.available) {
        expect(m.unavailableReason).toMatch(/\S/);
        continue;
      }
      const s = result.samples.find((x) => x.mode === m.id)!;
      expect(s.error, `${m.id}: ${String(s.error)}`).toBeNull();
      // The standard set was left out.
      expect(s.tcp1).toBeNull();
      const mm = s.mtuMismatch!;
      expect(mm.skipped).toBeNull();
      expect(mm.forcedMtu).toBe(1500);
      // Kernel VXLAN refuses a device MTU above 1450 on a 1500 underlay: the route MTU forces it.
      expect(mm.forcedBy).toBe(m.kind === 'kernel-vxlan' ? 'route' : 'device');
      expect(mm.transfers.map((t) => `${t.pmtud}/${t.messages}`)).toEqual(['on/small', 'on/large', 'off/small', 'off/large']);
      for (const t of mm.transfers) {
        expect(t.output?.connected, `${m.id} ${t.pmtud}/${t.messages}: ${String(t.error)}`).toBe(true);
        // Small messages fit any MTU: they always get through.
        if (t.messages === 'small') expect(['completes', 'fragments']).toContain(t.outcome);
      }
      const rd = s.redis!;
      expect(rd.skipped).toBeNull();
      expect(rd.runs.map((x) => x.condition).slice(0, 2)).toEqual(['idle', 'loaded']);
      for (const run of rd.runs) {
        expect(run.error, `${m.id} ${run.condition}`).toBeNull();
        expect(run.get!.rps).toBeGreaterThan(0);
        expect(run.set!.rps).toBeGreaterThan(0);
        expect(run.get!.p99Ms).toBeGreaterThanOrEqual(run.get!.p50Ms);
      }
      // This kernel has no netem: the sweep is skipped with the reason, never silently.
      if (!rd.runs.some((x) => x.condition === 'delayed')) expect(rd.sweepSkipped).toMatch(/netem|--hosts|--delay/);
    }
    const ids = result.derived.claims.map((c) => c.id);
    for (const m of result.modes.filter((x) => x.available)) {
      expect(ids).toContain(`mtu-mismatch-drops:${m.id}`);
      expect(ids).toContain(`redis-few-ms:${m.id}`);
    }
    const summary = readFileSync(path.join(out, result.runId, 'summary.md'), 'utf8');
    expect(summary).toContain('## MTU mismatch');
    expect(summary).toContain('## Redis over the overlay');
    console.log(`bench --quick --measure mtu-mismatch,redis, kernel-vxlan + vxtap: ${seconds.toFixed(0)} s`);
    expect(await leftovers()).toEqual([]);
  }, 150_000);
});
