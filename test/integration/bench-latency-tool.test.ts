/**
 * `--latency-tool sockperf,rr` end to end, as root on this machine: one short
 * `--quick --modes bare` run with the trials cut by VXTAP_BENCH_TEST_PROFILE,
 * names of its own (VXTAP_BENCH_PREFIX=vxy) and its own state directory, so no
 * other bench test's leftover check or clean-up meets it. The sockperf server
 * and client run where rr.js would, sockperf's runs fill the latency metrics,
 * rr's the side-by-side samples, and every latency sample says which tool
 * measured. A bad --latency-tool is refused with one line and exit status 2,
 * a missing sockperf with the host and the fix before anything is created.
 * Figures are not asserted: they are the bench's, not the test's.
 */
import { runCliInterruptible } from '../helpers/cli.js';
import { benchLeftovers } from '../helpers/bench-leftovers.js';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteNetns, listNetns } from '../../src/host/netns.js';
import { validateResult } from '../../bench/validate.js';
import type { BenchResult } from '../../bench/result.js';
import type { LatencySample } from '../../bench/measure.js';

const PREFIX = 'vxy';
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const isRoot = process.getuid?.() === 0;
const built = existsSync(main) && existsSync(path.join(repo, 'dist', 'bench', 'sockperf.js'));
const haveSockperf = existsSync('/usr/bin/sockperf');
const skipReason = !isRoot ? 'needs root' : !built ? 'needs a build (npx tsc -p .)' : !haveSockperf ? 'needs sockperf (apt-get install sockperf)' : null;
const out = mkdtempSync(path.join(os.tmpdir(), 'vxy-bench-it-'));
const state = mkdtempSync(path.join(os.tmpdir(), 'vxy-bench-state-'));
// Shorter than --quick: no UDP search, no MTU sweep sizes, the shortest latency runs (sockperf rounds up to 1 s each).
const TEST_PROFILE = JSON.stringify({ tcpSeconds: 1, udpFrameSizes: [], latencySeconds: 0.2, latencyLoadedSeconds: 0.3, mtuSweepSizes: [] });

function runCli(args: string[], timeoutMs: number, extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCliInterruptible(args, timeoutMs, { VXTAP_BENCH_PREFIX: PREFIX, VXTAP_BENCH_STATE_DIR: state, VXTAP_BENCH_TEST_PROFILE: TEST_PROFILE, ...extraEnv });
}

/** This file's namespaces, links and latency servers and clients (those that inherited its prefix: the lead's bench may run beside it) still on the host. */
const leftovers = () => benchLeftovers(PREFIX, /sockperf (server|ping-pong)|dist\/bench\/(rr|sockperf)\.js/);

afterAll(async () => {
  // Only this file's names: never `bench --cleanup`, which sweeps every bench's.
  if (!skipReason) for (const ns of await listNetns()) if (ns.startsWith(PREFIX)) await deleteNetns(ns);
  rmSync(out, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
});

describe.skipIf(skipReason !== null)(`vxtap bench --latency-tool (integration${skipReason ? `: skipped, ${skipReason}` : ''})`, () => {
  it('refuses an unknown tool with one line naming the option and exit status 2', async () => {
    const r = await runCli(['bench', '--quick', '--modes', 'bare', '--out', out, '--latency-tool', 'netperf'], 30_000);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['vxtap bench: --latency-tool must be rr or sockperf, or both as rr,sockperf (got "netperf")']);
  }, 35_000);

  it('refuses to start, naming the host and the fix, when sockperf is not installed', async () => {
    // A PATH with only what the CLI needs before its check: sh and node, no sockperf.
    const bin = mkdtempSync(path.join(os.tmpdir(), 'vxy-bin-'));
    symlinkSync('/bin/sh', path.join(bin, 'sh'));
    symlinkSync(process.execPath, path.join(bin, 'node'));
    try {
      const before = await leftovers();
      const r = await runCli(['bench', '--quick', '--modes', 'bare', '--out', out, '--latency-tool', 'rr,sockperf'], 30_000, { PATH: bin });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual(['vxtap bench: host A/B (this machine): sockperf not installed (apt-get install sockperf)', 'nothing was created']);
      expect(await leftovers()).toEqual(before);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  }, 35_000);

  it('--latency-tool sockperf,rr measures idle and loaded latency with both tools in one run, schema-valid, nothing left', async () => {
    const started = Date.now();
    const r = await runCli(['bench', '--quick', '--modes', 'bare', '--latency-tool', 'sockperf,rr', '--json', '--no-progress', '--out', out], 60_000);
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const result = JSON.parse(r.stdout) as BenchResult;
    expect(validateResult(result)).toEqual([]);
    expect(result.status).toBe('complete');
    expect(result.options.latencyTool).toBe('sockperf');
    expect(result.options.latencyTools).toEqual(['sockperf', 'rr']);
    const s = result.samples.find((x) => x.mode === 'bare');
    expect(s?.error ?? null).toBeNull();
    expect(s!.latencyIdle?.tool).toBe('sockperf');
    expect(s!.latencyLoaded?.tool).toBe('sockperf');
    expect(s!.latencyOthers?.map((l) => [l.tool, l.condition])).toEqual([
      ['rr', 'idle'],
      ['rr', 'loaded'],
    ]);
    // The latency metrics are sockperf's.
    expect(result.derived.byMode.bare.latIdleP50.perRound).toEqual([s!.latencyIdle!.percentiles.p50Us]);
    for (const lat of [s!.latencyIdle, s!.latencyLoaded, ...s!.latencyOthers!]) {
      expect(lat!.percentiles.count).toBeGreaterThan(0);
      expect(lat!.transactionsPerSecond).toBeGreaterThan(0);
      expect(lat!.pinning).toBe('cross');
      expect(lat!.error).toBeNull();
    }
    expect(s!.latencyLoaded!.load).toMatch(/^iperf3 TCP 1 stream/);
    const p50 = (l: LatencySample | null | undefined) => String(l?.percentiles.p50Us);
    console.log(
      `bench --quick --modes bare --latency-tool sockperf,rr: ${seconds.toFixed(0)} s; idle p50 sockperf ${p50(s!.latencyIdle)} us, rr ${p50(s!.latencyOthers![0])} us (one short round, not a measurement)`,
    );
    expect(await leftovers()).toEqual([]);
  }, 65_000);
});
