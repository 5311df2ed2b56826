/**
 * The bench's opt-in variants end to end, as root on this machine, in one short
 * run: `--endpoints pod --underlay-offloads no-tunnel-tso --contention 50` over
 * bare and kernel VXLAN (the cheapest overlay to set up), `--quick` with the
 * trials cut further by VXTAP_BENCH_TEST_PROFILE, names of its own
 * (VXTAP_BENCH_PREFIX=vxbp, so no other bench test's leftover check or clean-up
 * meets them). The result must validate against bench/result.schema.json, carry
 * the new fields, and leave nothing behind. Bad values of the new options are
 * refused with one line and exit status 2 before anything is created.
 * Figures are not asserted: they are the bench's, not the test's.
 */
import { runCliInterruptible } from '../helpers/cli.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { listNetns, deleteNetns } from '../../src/host/netns.js';
import { output } from '../../src/host/exec.js';
import { validateResult } from '../../bench/validate.js';
import type { BenchResult } from '../../bench/result.js';

const PREFIX = 'vxbp';
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const isRoot = process.getuid?.() === 0;
const built = existsSync(main) && existsSync(path.join(repo, 'dist', 'bench', 'pods.js'));
const haveStress = existsSync('/usr/bin/stress-ng');
const skipReason = !isRoot ? 'needs root' : !built ? 'needs a build (npx tsc -p .)' : !haveStress ? 'needs stress-ng (apt-get install stress-ng)' : null;
const out = mkdtempSync(path.join(os.tmpdir(), 'vxbp-bench-it-'));
// Shorter than --quick: no UDP search, short latency runs, no fixed MTU sizes (the bisection stays).
const TEST_PROFILE = JSON.stringify({ udpFrameSizes: [], latencySeconds: 0.2, latencyLoadedSeconds: 0.3, mtuSweepSizes: [] });

function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCliInterruptible(args, timeoutMs, { VXTAP_BENCH_PREFIX: PREFIX, VXTAP_BENCH_TEST_PROFILE: TEST_PROFILE });
}

/** Pids of running stress-ng processes. */
async function stressPids(): Promise<Set<string>> {
  const ps = await output(['ps', '-eo', 'pid=,comm='], { allowFail: true });
  return new Set(
    ps
      .split('\n')
      .filter((l) => /\bstress-ng/.test(l))
      .map((l) => l.trim().split(/\s+/)[0]),
  );
}

/** This file's bench names still on the host (the kernel-VXLAN probe namespace vxbprobe* is another run's). */
async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  for (const ns of await listNetns()) if (ns.startsWith(PREFIX) && !ns.startsWith('vxbprobe')) found.push(`namespace ${ns}`);
  for (const line of (await output(['ip', '-o', 'link', 'show'])).split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m && m[1].startsWith(PREFIX)) found.push(`link ${m[1]}`);
  }
  return found;
}

afterAll(async () => {
  // Only this file's names: never `bench --cleanup`, which sweeps every bench's.
  if (!skipReason) for (const ns of await listNetns()) if (ns.startsWith(PREFIX) && !ns.startsWith('vxbprobe')) await deleteNetns(ns);
  rmSync(out, { recursive: true, force: true });
});

describe.skipIf(skipReason !== null)(`vxtap bench --endpoints / --contention / --underlay-offloads (integration${skipReason ? `: skipped, ${skipReason}` : ''})`, () => {
  it('refuses bad values with one line naming the option and exit status 2, creating nothing', async () => {
    const before = await leftovers();
    const cases: [string[], RegExp][] = [
      [['--contention', '150'], /^vxtap bench: --contention must be/],
      [['--contention', 'abc'], /^vxtap bench: --contention must be/],
      [['--endpoints', 'foo'], /^vxtap bench: --endpoints must be host or pod/],
      [['--underlay-offloads', 'x'], /^vxtap bench: --underlay-offloads must be full or no-tunnel-tso/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(['bench', '--quick', '--out', out, ...args], 30_000)));
    runs.forEach((r, i) => {
      expect(r.code, cases[i][0].join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(cases[i][1]);
    });
    expect(await leftovers()).toEqual(before);
  }, 40_000);

  it('pods, CPU contention and no tunnel TSO in one --quick run: schema-valid fields, claims rows, nothing left', async () => {
    const stressBefore = await stressPids();
    const started = Date.now();
    const r = await runCli(
      ['bench', '--quick', '--modes', 'bare,kernel-vxlan', '--endpoints', 'pod', '--underlay-offloads', 'no-tunnel-tso', '--contention', '50', '--json', '--no-progress', '--out', out],
      120_000,
    );
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const result = JSON.parse(r.stdout) as BenchResult;
    expect(validateResult(result)).toEqual([]);
    expect(result.status).toBe('complete');
    expect(result.options.endpoints).toBe('pod');
    expect(result.options.contention).toEqual({ pct: 50, method: expect.stringMatching(/^stress-ng/) });
    expect(result.options.underlayOffloads).toBe('no-tunnel-tso');
    // Each mode plain and under the hog, interleaved in the round.
    expect(result.modes.map((m) => m.id)).toEqual(['bare', 'kernel-vxlan', 'bare@cpu50', 'kernel-vxlan@cpu50']);
    expect([...result.order[0]].sort()).toEqual(['bare', 'bare@cpu50', 'kernel-vxlan', 'kernel-vxlan@cpu50']);
    for (const s of result.samples) {
      expect(s.error, s.mode).toBeNull();
      expect(s.tcp1?.receivedBps ?? 0, `${s.mode} tcp1`).toBeGreaterThan(0);
      expect(s.latencyIdle?.percentiles.count ?? 0, `${s.mode} latency`).toBeGreaterThan(0);
      // The load ran pod to pod: each pod routes the other's subnet over the mode's device.
      expect(s.pods?.hosts.map((h) => h.address)).toEqual(['198.18.220.2', '198.18.221.2']);
      const via = s.mode.startsWith('bare') ? /^198\.18\.221\.0\/24 via 198\.18\.0\.2 dev vxbp/ : /^198\.18\.221\.0\/24 via 198\.19\.0\.2 dev /;
      expect(s.pods!.hosts[0].routeToPeer, s.mode).toMatch(via);
      if (s.mode.endsWith('@cpu50')) {
        expect(s.contention?.workers).toBe(os.cpus().length);
        expect(s.contention!.hogCpuSeconds).toBeGreaterThan(0);
        expect(s.mtu).toBeNull(); // the MTU sweep runs once, without the hog
      } else expect(s.contention).toBeUndefined();
    }
    // The veth ends ran without tunnel TSO, with USO.
    const offl = result.environment?.underlayOffloads;
    expect(offl?.variant).toBe('no-tunnel-tso');
    expect(offl?.hosts.map((h) => [h.features['tx-udp_tnl-segmentation'], h.features['tx-udp_tnl-csum-segmentation'], h.features['tx-udp-segmentation']])).toEqual([
      ['off', 'off', 'on'],
      ['off', 'off', 'on'],
    ]);
    const claims = result.derived.claims.map((c) => c.id);
    expect(claims).toContain('contention-overhead-grows:kernel-vxlan');
    expect(claims).toContain('no-tunnel-tso-vxtap-ahead');
    const summary = readFileSync(path.join(out, result.runId, 'summary.md'), 'utf8');
    expect(summary).toMatch(/Endpoints: pod to pod/);
    expect(summary).toMatch(/kernel-vxlan@cpu50/);
    console.log(`bench --quick, bare + kernel-vxlan, pods, contention, no tunnel TSO: ${seconds.toFixed(0)} s`);
    expect(await leftovers()).toEqual([]);
    const extra = [...(await stressPids())].filter((p) => !stressBefore.has(p));
    expect(extra, 'stress-ng left running').toEqual([]);
  }, 130_000);
});
