/**
 * The capacity plan: flag parsing and refusals, the arithmetic on a
 * hand-computed result, no extrapolation beyond the measured range, the
 * cheapest mode and the reasons for the others, and the model checked against
 * the real default-profile run: the plan at a measured rate gives back the
 * measured CPU within the rounds' spread.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBitRate, parsePacketRate, parsePlanFlags, planCapacity, PlanInputError, renderPlanMarkdown, type PlanRequest } from '../../bench/plan.js';
import { loadResult } from '../../bench/report/migrate.js';
import type { BenchResult, ModeRoundSample } from '../../bench/result.js';
import { spreadOf } from '../../bench/report/data.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const golden = path.join(repo, 'test', 'fixtures', 'bench', 'golden-result.json');
const current = path.join(repo, 'test', 'fixtures', 'report', 'v1-current.json');
const main = path.join(repo, 'dist', 'src', 'cli', 'main.js');

const req = (o: Partial<PlanRequest> = {}): PlanRequest => ({ targetBps: 5e9, pps: null, hosts: 1, cores: null, headroomPct: 0, ...o });

describe('plan flags', () => {
  it('parses bit rates in the usual spellings', () => {
    const cases: [string, number][] = [
      ['10gbit', 10e9],
      ['10G', 10e9],
      ['2.5Gbit/s', 2.5e9],
      ['500mbit', 500e6],
      ['10gbps', 10e9],
      ['1e9', 1e9],
      ['100M', 100e6],
      ['1tbit', 1e12],
    ];
    for (const [text, bps] of cases) expect(parseBitRate(text), text).toBeCloseTo(bps, 0);
  });
  it('refuses negative, zero and unparsable rates naming the flag', () => {
    for (const bad of ['-3gbit', '0', '0gbit', 'abc', '10 furlongs', '', 'gbit', '1.2.3g']) {
      expect(() => parseBitRate(bad, '--target'), bad).toThrow(PlanInputError);
      expect(() => parseBitRate(bad, '--target'), bad).toThrow(/--target/);
    }
  });
  it('parses packet rates', () => {
    expect(parsePacketRate('1mpps')).toBe(1e6);
    expect(parsePacketRate('500kpps')).toBe(5e5);
    expect(parsePacketRate('200000')).toBe(2e5);
    expect(() => parsePacketRate('-1mpps')).toThrow(/--pps/);
    expect(() => parsePacketRate('fast')).toThrow(/--pps/);
  });
  it('validates hosts, cores and headroom, and requires a target', () => {
    expect(parsePlanFlags({ target: '10gbit', hosts: '20', cores: '16', headroom: '20%' })).toEqual({ targetBps: 10e9, pps: null, hosts: 20, cores: 16, headroomPct: 20 });
    expect(() => parsePlanFlags({})).toThrow(/--target is required/);
    expect(() => parsePlanFlags({ target: '1g', hosts: '0' })).toThrow(/--hosts/);
    expect(() => parsePlanFlags({ target: '1g', hosts: '2.5' })).toThrow(/--hosts/);
    expect(() => parsePlanFlags({ target: '1g', cores: 'x' })).toThrow(/--cores/);
    expect(() => parsePlanFlags({ target: '1g', headroom: '-5' })).toThrow(/--headroom/);
  });
});

/** A result with bare and kernel-vxlan, two rounds, figures chosen to be computed by hand. */
function handResult(): BenchResult {
  const cpu = (busy: number, dataplane = 0) => ({
    wallSeconds: 2,
    machine: { totalSeconds: 4, userSeconds: busy * 0.25, systemSeconds: busy * 0.5, softirqSeconds: busy * 0.25, irqSeconds: 0, stealSeconds: 0, idleSeconds: 4 - busy, busySeconds: busy },
    dataplaneSeconds: dataplane,
  });
  const tcp = (gbps: number, busy: number, dataplane = 0) => ({
    receivedBps: gbps * 1e9,
    sentBps: gbps * 1e9,
    retransmits: 0,
    seconds: 2,
    streams: 4,
    cpuHostPercent: null,
    cpuRemotePercent: null,
    intervalBps: [],
    cpu: cpu(busy, dataplane),
    cpuSecondsPerGbit: busy / (gbps * 2),
    dataplaneCpuSecondsPerGbit: dataplane / (gbps * 2),
  });
  const lat = (p50: number) => ({
    condition: 'idle' as const,
    load: null,
    percentiles: { count: 100, minUs: 1, p50Us: p50, p90Us: p50, p99Us: p50 * 2, p999Us: p50 * 3, maxUs: p50 * 4, meanUs: p50 },
    transactionsPerSecond: 1,
    histogram: '',
    pinning: 'cross' as const,
    error: null,
  });
  const sample = (mode: string, round: number, gbps: number, busy: number, p50: number, dataplane = 0): ModeRoundSample => ({
    round,
    mode,
    startedAt: '2026-12-01T00:00:00Z',
    setupSeconds: 0,
    durationSeconds: 1,
    error: null,
    innerMtu: mode === 'bare' ? 1500 : 1450,
    tcp1: null,
    tcpN: tcp(gbps, busy, dataplane),
    udp: [],
    latencyIdle: lat(p50),
    latencyLoaded: null,
    mtu: null,
  });
  return {
    schema: 'vxtap-bench-result',
    schemaVersion: 1,
    runId: 'hand',
    status: 'complete',
    incompleteReasons: [],
    startedAt: '2026-12-01T00:00:00Z',
    finishedAt: null,
    durationSeconds: null,
    options: { profile: 'default', rounds: 2, modes: ['bare', 'kernel-vxlan', 'vxtap'], mtu: 1500, netem: { delay: null, loss: null, rate: null }, pin: 'cross', argv: [] },
    profile: {
      name: 'default',
      rounds: 2,
      tcpSeconds: 2,
      tcpOmitSeconds: 0,
      tcpStreams: 4,
      udpFrameSizes: [],
      udpTrialSeconds: 1,
      udpMaxTrials: 1,
      udpPrecision: 0.05,
      udpMaxPps: 1,
      latencySeconds: 1,
      latencyLoadedSeconds: 1,
      mtuSweepSizes: [],
      pingTimeoutSeconds: 1,
    } as unknown as BenchResult['profile'],
    environment: null,
    topology: { kind: 'netns-veth', hosts: [], underlay: { a: '', b: '', prefix: 24, mtu: 1500, netem: null }, overlay: { a: '', b: '', prefix: 16 }, vni: 42, udpPort: 4789 },
    modes: ['bare', 'kernel-vxlan', 'vxtap'].map((id) => ({ id, kind: id as 'bare', params: {}, available: true, unavailableReason: null, info: null })),
    order: [],
    samples: [
      // bare: 20 Gbit in 2 s for 4 CPU-s (0.1 CPU-s/Gbit), then 16 Gbit/s: 4/32 = 0.125
      sample('bare', 1, 20, 4, 50),
      sample('bare', 2, 16, 4, 60),
      // kernel-vxlan: 10 Gbit/s, 4 CPU-s -> 4/20 = 0.2; 8 Gbit/s -> 4/16 = 0.25 (median 0.225, rate median 9)
      sample('kernel-vxlan', 1, 10, 4, 70),
      sample('kernel-vxlan', 2, 8, 4, 90),
      // vxtap: 6 Gbit/s, 3 CPU-s (2 of them its own) -> 0.25 and 1/6; 6 Gbit/s again
      sample('vxtap', 1, 6, 3, 200, 2),
      sample('vxtap', 2, 6, 3, 220, 2),
    ],
    derived: { metrics: [], byMode: {}, claims: [] },
  };
}

describe('plan arithmetic', () => {
  it('cores, cores left, cluster totals and latency added, by hand', () => {
    const p = planCapacity(handResult(), req({ targetBps: 5e9, hosts: 10, cores: 4 }));
    const kv = p.modes.find((m) => m.mode === 'kernel-vxlan')!;
    expect(kv.bulk?.shown).toBe(true);
    expect(kv.bulk?.measured).toEqual({ n: 2, median: 9, min: 8, max: 10 });
    expect(kv.bulk?.cpuPerUnit.median).toBeCloseTo(0.225, 12);
    expect(kv.coresPerHost?.median).toBeCloseTo(1.125, 12); // 0.225 CPU-s/Gbit x 5 Gbit/s
    expect(kv.coresPerHost?.min).toBeCloseTo(1.0, 12);
    expect(kv.coresPerHost?.max).toBeCloseTo(1.25, 12);
    expect(kv.coresLeft?.median).toBeCloseTo(2.875, 12);
    expect(kv.cluster?.cores?.median).toBeCloseTo(11.25, 12);
    expect(kv.cluster?.aggregateGbps).toBe(50);
    expect(kv.latency.addedIdleP50Us).toBe(80 - 55);
    expect(kv.bulk?.split.system).toBeCloseTo(0.1125, 12); // half the busy time was system
    const tap = p.modes.find((m) => m.mode === 'vxtap')!;
    expect(tap.bulk?.dataplaneCores?.median).toBeCloseTo((2 / 12) * 5, 12);
    expect(tap.bulk?.kernelCores?.median).toBeCloseTo((1 / 12) * 5, 12);
    expect(tap.coresOverBare).toBeCloseTo(1.25 - 0.1125 * 5, 12);
    expect(p.cheapest).toBe('kernel-vxlan');
    expect(tap.reasons.join(' ')).toMatch(/meets the target but costs 0\.125 more cores/);
    expect(p.modes.find((m) => m.mode === 'bare')!.meets).toBe(false); // the reference is never a candidate
  });
  it('headroom plans for target x (1 + PCT/100)', () => {
    const p = planCapacity(handResult(), req({ targetBps: 5e9, headroomPct: 20 }));
    expect(p.modes.find((m) => m.mode === 'kernel-vxlan')!.coresPerHost?.median).toBeCloseTo(0.225 * 6, 12);
  });
  it('never extrapolates: above the median rate a mode carried is "not shown by this run"', () => {
    const p = planCapacity(handResult(), req({ targetBps: 9.5e9 }));
    const kv = p.modes.find((m) => m.mode === 'kernel-vxlan')!;
    expect(kv.bulk?.shown).toBe(false);
    expect(kv.coresPerHost).toBeNull();
    expect(kv.meets).toBe(false);
    expect(kv.reasons.join(' ')).toMatch(/9\.50 Gbit\/s not shown by this run \(TCP 4 streams carried 9\.00 \(8\.00–10\.0\) Gbit\/s\)/);
    expect(p.cheapest).toBeNull();
    expect(p.verdict).toMatch(/No overlay in this run is shown to carry/);
  });
  it('too few cores is a reason', () => {
    const p = planCapacity(handResult(), req({ targetBps: 5e9, cores: 1 }));
    expect(p.modes.find((m) => m.mode === 'kernel-vxlan')!.reasons.join(' ')).toMatch(/more than --cores 1/);
    expect(p.cheapest).toBeNull();
  });
  it('is linear within the measured range and monotonic in what it shows (random targets)', () => {
    const r = handResult();
    fc.assert(
      fc.property(fc.double({ min: 0.1, max: 4.4, noNaN: true }), (gbps) => {
        const a = planCapacity(r, req({ targetBps: gbps * 1e9 })).modes.find((m) => m.mode === 'kernel-vxlan')!;
        const b = planCapacity(r, req({ targetBps: 2 * gbps * 1e9 })).modes.find((m) => m.mode === 'kernel-vxlan')!;
        expect(b.coresPerHost!.median!).toBeCloseTo(2 * a.coresPerHost!.median!, 9);
      }),
    );
    fc.assert(
      fc.property(fc.double({ min: 0.1, max: 30, noNaN: true }), fc.double({ min: 0.1, max: 30, noNaN: true }), (x, y) => {
        const [lo, hi] = x < y ? [x, y] : [y, x];
        const shown = (g: number) => planCapacity(r, req({ targetBps: g * 1e9 })).modes.map((m) => m.bulk?.shown);
        shown(hi).forEach((s, i) => {
          if (s) expect(shown(lo)[i]).toBe(true);
        });
      }),
    );
  });
});

describe('plan against the real default-profile run', () => {
  const r = loadResult(golden);
  it("at a measured rate, the plan gives back the measured CPU within the rounds' spread", () => {
    for (const m of r.modes.filter((x) => x.available)) {
      const samples = r.samples.filter((s) => s.mode === m.id && s.tcpN);
      const measuredCores = spreadOf(samples.map((s) => s.tcpN!.cpu.machine.busySeconds / s.tcpN!.cpu.wallSeconds));
      const rate = spreadOf(samples.map((s) => s.tcpN!.receivedBps)).median!;
      const plan = planCapacity(r, req({ targetBps: rate })).modes.find((x) => x.mode === m.id)!;
      expect(plan.bulk?.shown, m.id).toBe(true);
      const planned = plan.coresPerHost!.median!;
      // the noise: the rounds' min-max of measured cores, plus 2% for the CPU window (wall) being a little longer than iperf3's seconds
      expect(planned, `${m.id}: planned ${planned} vs measured ${JSON.stringify(measuredCores)}`).toBeGreaterThanOrEqual(measuredCores.min! * 0.98);
      expect(planned, `${m.id}: planned ${planned} vs measured ${JSON.stringify(measuredCores)}`).toBeLessThanOrEqual(measuredCores.max! * 1.02);
    }
  });
  it('10 Gbit/s, 20 hosts, 16 cores: kernel-vxlan is the cheapest, the rest not shown', () => {
    const p = planCapacity(r, parsePlanFlags({ target: '10gbit', hosts: '20', cores: '16' }));
    expect(p.cheapest).toBe('kernel-vxlan');
    for (const id of ['ovs-gre', 'ovs-vxlan', 'vxtap']) expect(p.modes.find((m) => m.mode === id)!.reasons.join(' '), id).toMatch(/not shown by this run/);
    const md = renderPlanMarkdown(p);
    expect(md).toMatch(/^# Capacity plan: 10\.0 Gbit\/s per host, 20 hosts, 16 cores per host/);
    expect(md).toContain('## Assumptions');
    expect(md).toContain('## Cluster of 20 hosts');
    expect(md).toMatch(/above 1450 B: DF set: refused-locally; DF unset: inner-fragmented/);
  });
  it('small packets: the UDP sender limit makes a high rate "not shown", never a guess', () => {
    const p = planCapacity(r, parsePlanFlags({ target: '1gbit', pps: '1mpps' }));
    expect(p.cheapest).toBeNull();
    for (const m of p.modes.filter((x) => x.available)) expect(m.smallPackets?.shown, m.mode).toBe(false);
  });
});

describe.skipIf(!existsSync(main))('vxtap plan (CLI)', () => {
  // Asynchronous: synchronous CLI runs block the worker, and on a loaded CI machine past vitest's 60 s RPC timeout.
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [main, 'plan', ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
  it('prints Markdown, or JSON with --json', async () => {
    expect((await run([current, '--target', '10gbit'])).stdout).toMatch(/^# Capacity plan/);
    const j = JSON.parse((await run([current, '--target', '10gbit', '--hosts', '20', '--json'])).stdout);
    expect(j.cheapest).toBe('kernel-vxlan');
    expect(j.request.hosts).toBe(20);
  });
  it('bad input: one clear line and exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [[current, '--target', '-3gbit'], /--target must be greater than 0/],
      [[current, '--target', 'lots'], /--target must be a bit rate/],
      [[current], /--target is required/],
      [[path.join(repo, 'package.json'), '--target', '1g'], /not a vxtap bench result/],
      [['/nonexistent/result.json', '--target', '1g'], /cannot read \(ENOENT\)/],
    ];
    for (const [args, re] of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });
});
