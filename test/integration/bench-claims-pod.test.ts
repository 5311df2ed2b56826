/**
 * The MTU-mismatch claim with pod endpoints, end to end as root: `vxtap bench
 * --quick --endpoints pod --modes bare,kernel-vxlan,vxtap --measure
 * mtu-mismatch`. The pods' eth0, veth host ends and bridges are forced to the
 * underlay MTU while the hosts' overlay devices keep the inner MTU, and the
 * transfers run pod to pod: the hosts' routed hop must refuse DF packets with
 * an ICMP "fragmentation needed" into the pod (PMTUD on) and fragment the
 * inner packets without DF (PMTUD off). bare (routed pods, no tunnel) is the
 * baseline and completes whole. The result is checked against the schema.
 *
 * Names of its own (VXTAP_BENCH_PREFIX=vxp) and its own state directory, so
 * no other bench test's leftover check or clean-up meets it; it never runs
 * `--cleanup` and checks that the run removed everything it made.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteNetns, listNetns } from '../../src/host/netns.js';
import { validateResult } from '../../bench/validate.js';
import type { BenchResult } from '../../bench/result.js';
import { CLI, ensureBuilt, runBenchIsolated } from '../helpers/cli.js';
import { benchLeftovers } from '../helpers/bench-leftovers.js';

const PREFIX = 'vxp';
const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot ? 'needs root' : !existsSync('/usr/bin/tcpdump') && !existsSync('/usr/sbin/tcpdump') ? 'needs tcpdump' : null;
const out = mkdtempSync(path.join(os.tmpdir(), 'vxp-bench-claims-'));
const state = mkdtempSync(path.join(os.tmpdir(), 'vxp-bench-state-'));

const bench = (args: string[], timeoutMs: number) => runBenchIsolated(args, timeoutMs, { VXTAP_BENCH_PREFIX: PREFIX, VXTAP_BENCH_STATE_DIR: state });
/** This file's namespaces, links and transfer processes (those that inherited its prefix) still on the host. */
const leftovers = () => benchLeftovers(PREFIX, /dist\/bench\/transfer\.js|tcpdump/);

beforeAll(async () => {
  if (!skipReason) await ensureBuilt();
}, 300_000);

afterAll(async () => {
  // Only this file's names: never `bench --cleanup`, which sweeps every bench's.
  if (!skipReason) for (const ns of await listNetns()) if (ns.startsWith(PREFIX)) await deleteNetns(ns);
  rmSync(out, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
});

describe.skipIf(skipReason !== null)(`vxtap bench --endpoints pod --measure mtu-mismatch (integration${skipReason ? `: skipped, ${skipReason}` : ''})`, () => {
  it('pods at 1500 over overlays at the inner MTU: the host answers PMTUD and fragments without DF; bare completes; schema-valid; nothing left', async () => {
    expect(existsSync(CLI)).toBe(true);
    const started = Date.now();
    const r = await bench(['--quick', '--endpoints', 'pod', '--modes', 'bare,kernel-vxlan,vxtap', '--measure', 'mtu-mismatch', '--json', '--no-progress', '--out', out], 150_000);
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const result = JSON.parse(r.stdout) as BenchResult;
    expect(validateResult(result)).toEqual([]);
    expect(result.options.endpoints).toBe('pod');
    const lines: string[] = [];
    for (const m of result.modes) {
      if (!m.available) {
        expect(m.unavailableReason).toMatch(/\S/);
        continue;
      }
      const s = result.samples.find((x) => x.mode === m.id)!;
      expect(s.error, `${m.id}: ${String(s.error)}`).toBeNull();
      expect(s.pods?.hosts.map((h) => h.address)).toEqual(['198.18.220.2', '198.18.221.2']);
      const mm = s.mtuMismatch!;
      expect(mm.skipped).toBeNull();
      expect(mm.endpoints).toBe('pod');
      expect(mm.forcedMtu).toBe(1500);
      expect(mm.forcedBy).toBe(m.kind === 'bare' ? 'none' : 'pod');
      expect(mm.transfers.map((t) => `${t.pmtud}/${t.messages}`)).toEqual(['on/small', 'on/large', 'off/small', 'off/large']);
      for (const t of mm.transfers) {
        const what = `${m.id} ${t.pmtud}/${t.messages}`;
        expect(t.output?.connected, `${what}: ${String(t.error)}`).toBe(true);
        // Counters of the host namespaces behind the pods are kept beside the pods'.
        expect(t.evidence.hosts, what).toBeDefined();
        if (t.messages === 'small' || m.kind === 'bare') expect(['completes', 'fragments'], what).toContain(t.outcome);
      }
      if (m.kind === 'bare') {
        // Routed pods without a tunnel: nothing is mismatched.
        expect(mm.transfers.map((t) => t.outcome)).toEqual(['completes', 'completes', 'completes', 'completes']);
      } else {
        const [, onLarge, , offLarge] = mm.transfers;
        // PMTUD on: host A refuses the DF segments and tells pod A, which shrinks them; no fragment anywhere.
        expect(onLarge.outcome, `${m.id} on/large`).toBe('completes');
        expect(onLarge.evidence.hosts!.fragFailsA, `${m.id} on/large`).toBeGreaterThan(0);
        expect(onLarge.evidence.icmpUnreachReceivedA, `${m.id} on/large`).toBeGreaterThan(0);
        // PMTUD off: host A fragments the inner packets before they enter the overlay.
        expect(offLarge.outcome, `${m.id} off/large`).toBe('fragments');
        expect(offLarge.fragmentedAt).toBe('inner');
        expect(offLarge.evidence.hosts!.fragCreatesA, `${m.id} off/large`).toBeGreaterThan(0);
      }
      lines.push(`${m.id}: ${mm.transfers.map((t) => `${t.pmtud}/${t.messages} ${t.outcome}`).join(', ')}`);
    }
    const ids = result.derived.claims.map((c) => c.id);
    for (const m of result.modes.filter((x) => x.available && x.kind !== 'bare')) expect(ids).toContain(`mtu-mismatch-drops:${m.id}`);
    const summary = readFileSync(path.join(out, result.runId, 'summary.md'), 'utf8');
    expect(summary).toContain('## MTU mismatch');
    expect(summary).toContain('With pods (forced by pods)');
    console.log(`bench --quick --endpoints pod --measure mtu-mismatch, bare + kernel-vxlan + vxtap: ${seconds.toFixed(0)} s\n${lines.join('\n')}`);
    expect(await leftovers()).toEqual([]);
  }, 170_000);
});
