/**
 * The claim measurements' pure parts: redis-benchmark CSV and ping parsing,
 * request sizing, the kill point of the RTT sweep, the transfer stall
 * detector, the MTU-mismatch classification, the --measure list, and the
 * claim rows and summary sections rendered from a result.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultMeasures, measuresRemoteError, MEASURES, measuresPart, parseMeasureList, validateMeasures } from '../../bench/claim-measures.js';
import { classifyTransfer, mtuMismatchClaims, renderMtuMismatchMarkdown, transferFigures, type MismatchTransfer, type MtuMismatchResult, MTU_MISMATCH_PLANS } from '../../bench/mtu-mismatch.js';
import { killPointMs, parsePingRtt, parseRedisCsv, redisClaims, renderRedisMarkdown, requestsFor, REDIS_PLANS, type RedisBenchLine, type RedisResult, type RedisRun } from '../../bench/redis.js';
import type { BenchResult, ModeRoundSample } from '../../bench/result.js';
import { transferState, type TransferOutput } from '../../bench/transfer.js';
import { noEvidence, transferOutput } from '../helpers/mtu-mismatch-fixtures.js';

// Captured from redis-benchmark 7.0.15 (Debian 12) on this machine.
const CSV_7_0 = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","16949.15","0.047","0.032","0.047","0.071","0.103","0.279"
"GET","17006.80","0.047","0.032","0.047","0.071","0.095","1.279"
`;

describe('redis-benchmark --csv', () => {
  it('parses redis 7 output by header names', () => {
    const rows = parseRedisCsv(CSV_7_0);
    expect(rows.map((r) => r.test)).toEqual(['SET', 'GET']);
    expect(rows[1]).toEqual({ test: 'GET', rps: 17006.8, avgMs: 0.047, minMs: 0.032, p50Ms: 0.047, p95Ms: 0.071, p99Ms: 0.095, maxMs: 1.279 });
  });

  it('ignores progress noise before the header and refuses output without one', () => {
    expect(parseRedisCsv(`SET: rps=0.0 (overall: -nan)\r\n${CSV_7_0}`)).toHaveLength(2);
    expect(() => parseRedisCsv('Could not connect to Redis at 198.19.0.2:6390: Connection refused\n')).toThrow(/no header/);
  });

  it('round-trips any rows written in its format, whatever the column order', () => {
    const num = fc.double({ min: 0, max: 1e6, noNaN: true, noDefaultInfinity: true }).map((v) => Math.round(v * 1000) / 1000);
    const row = fc.record({ test: fc.constantFrom('SET', 'GET', 'PING_INLINE', 'INCR'), rps: num, avgMs: num, minMs: num, p50Ms: num, p95Ms: num, p99Ms: num, maxMs: num });
    const cols: [keyof RedisBenchLine, string][] = [
      ['test', 'test'],
      ['rps', 'rps'],
      ['avgMs', 'avg_latency_ms'],
      ['minMs', 'min_latency_ms'],
      ['p50Ms', 'p50_latency_ms'],
      ['p95Ms', 'p95_latency_ms'],
      ['p99Ms', 'p99_latency_ms'],
      ['maxMs', 'max_latency_ms'],
    ];
    fc.assert(
      fc.property(fc.array(row, { maxLength: 6 }), fc.shuffledSubarray(cols, { minLength: cols.length }), (rows, order) => {
        const text = [order.map(([, h]) => `"${h}"`).join(','), ...rows.map((r) => order.map(([k]) => `"${String(r[k])}"`).join(','))].join('\n');
        expect(parseRedisCsv(text)).toEqual(rows);
      }),
    );
  });
});

describe('ping, request sizing and the kill point', () => {
  it('reads min and avg from the ping summary', () => {
    expect(parsePingRtt('10 packets transmitted, 10 received, 0% packet loss, time 181ms\nrtt min/avg/max/mdev = 0.041/0.060/0.102/0.018 ms\n')).toEqual({ minMs: 0.041, avgMs: 0.06 });
    expect(parsePingRtt('10 packets transmitted, 0 received, 100% packet loss')).toEqual({ minMs: null, avgMs: null });
  });

  it('sizes requests to the time bound and clamps them', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.values(REDIS_PLANS)), fc.option(fc.double({ min: 0, max: 1e6, noNaN: true })), fc.double({ min: 0.01, max: 100, noNaN: true }), (plan, rps, fallbackMs) => {
        const n = requestsFor(plan, rps, fallbackMs);
        expect(Number.isInteger(n)).toBe(true);
        expect(n).toBeGreaterThanOrEqual(plan.minRequests);
        expect(n).toBeLessThanOrEqual(plan.maxRequests);
        const rate = rps !== null && rps > 0 ? rps : 1000 / fallbackMs;
        if (n > plan.minRequests && n < plan.maxRequests) expect(Math.abs(n / rate - plan.secondsPerTest)).toBeLessThanOrEqual(1 / rate);
      }),
    );
  });

  const line = (rps: number): RedisBenchLine => ({ test: 'GET', rps, avgMs: 0, minMs: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0 });
  it('finds the smallest added RTT where GET ops/s halves', () => {
    const runs = [
      { condition: 'idle' as const, addedRttMs: 0, get: line(10000) },
      { condition: 'delayed' as const, addedRttMs: 3, get: line(300) },
      { condition: 'delayed' as const, addedRttMs: 1, get: line(5001) },
      { condition: 'delayed' as const, addedRttMs: 2, get: line(5000) },
    ];
    expect(killPointMs(runs)).toBe(2);
    expect(killPointMs(runs.slice(0, 1))).toBeNull();
    expect(killPointMs(runs.slice(1))).toBeNull();
  });
});

describe('transfer stall detector', () => {
  it('is complete once everything is acknowledged, stalled only after stallMs without progress, else bounded by the timeout', () => {
    fc.assert(
      fc.property(
        fc.nat(20_000),
        fc.nat(20_000),
        fc.nat(100),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 50, max: 5000 }),
        fc.integer({ min: 100, max: 20_000 }),
        (now, last, acked, count, stallMs, timeoutMs) => {
          const lastProgressMs = Math.min(last, now);
          const st = transferState({ nowMs: now, lastProgressMs, acked, count, stallMs, timeoutMs });
          if (acked >= count) expect(st).toBe('completed');
          else if (now - lastProgressMs >= stallMs) expect(st).toBe('stalled');
          else if (now >= timeoutMs) expect(st).toBe('timeout');
          else expect(st).toBe('running');
        },
      ),
    );
  });
});

const output = transferOutput;

describe('MTU-mismatch classification', () => {
  const evidence = fc.record({
    fragCreatesA: fc.nat(50),
    fragCreatesB: fc.nat(50),
    fragFailsA: fc.nat(50),
    reassembled: fc.nat(50),
    underlayFragments: fc.option(fc.nat(50)),
    icmpUnreachReceivedA: fc.nat(5),
    icmpUnreachSentB: fc.nat(5),
    retransSegsA: fc.nat(50),
  });
  const out = fc.record({ connected: fc.boolean(), end: fc.constantFrom<TransferOutput['end'][]>('completed', 'stalled', 'timeout', 'error'), acked: fc.nat(100) });

  it('never calls a finished transfer stalled, nor an unconnected one anything but failed', () => {
    fc.assert(
      fc.property(fc.option(out), evidence, (o, e) => {
        const { outcome, fragmentedAt } = classifyTransfer(o, e);
        if (!o || !o.connected) expect(outcome).toBe('fails');
        else if (o.end === 'completed') expect(outcome).toBe(fragmentedAt ? 'fragments' : 'completes');
        else expect(['stalls', 'slow']).toContain(outcome);
        // Fragments on the underlay wire win over the stacks' counters.
        if ((e.underlayFragments ?? 0) > 0) expect(fragmentedAt).toBe('underlay');
        else if (e.fragCreatesA + e.fragCreatesB + e.reassembled > 0) expect(fragmentedAt).toBe('inner');
        else expect(fragmentedAt).toBeNull();
      }),
    );
  });

  it('table: the cases the bench sees', () => {
    expect(classifyTransfer(output({}), noEvidence).outcome).toBe('completes');
    expect(classifyTransfer(output({}), { ...noEvidence, fragCreatesA: 10, underlayFragments: 10 })).toEqual({ outcome: 'fragments', fragmentedAt: 'underlay' });
    expect(classifyTransfer(output({}), { ...noEvidence, fragCreatesA: 4, underlayFragments: null })).toEqual({ outcome: 'fragments', fragmentedAt: 'inner' });
    expect(classifyTransfer(output({ end: 'stalled', acked: 0, deliveredBytes: 0, lastProgressMs: 0 }), { ...noEvidence, retransSegsA: 3 }).outcome).toBe('stalls');
    expect(classifyTransfer(output({ end: 'timeout', acked: 10 }), noEvidence).outcome).toBe('slow');
    expect(classifyTransfer(output({ connected: false, end: 'error', error: 'connect timeout' }), noEvidence).outcome).toBe('fails');
    expect(classifyTransfer(null, noEvidence).outcome).toBe('fails');
  });

  it('goodput only for completed transfers; a stall keeps its time to stall', () => {
    expect(transferFigures(output({ lastProgressMs: 500, deliveredBytes: 1e6 }))).toEqual({ seconds: 0.5, goodputBps: 16e6 });
    expect(transferFigures(output({ end: 'stalled', lastProgressMs: 120 }))).toEqual({ seconds: 0.12, goodputBps: null });
    expect(transferFigures(null)).toEqual({ seconds: null, goodputBps: null });
  });
});

describe('--measure', () => {
  it('parses lists in a fixed order, "all", and refuses unknown or repeated names naming the option', () => {
    expect(parseMeasureList('redis,standard')).toEqual(['standard', 'redis']);
    expect(parseMeasureList('all')).toEqual(['standard', 'mtu-mismatch', 'redis']);
    // The parts of standard alone (what bench ci gates on), but not beside standard itself.
    expect(parseMeasureList('latency,tcp')).toEqual(['tcp', 'latency']);
    expect(MEASURES).toEqual(expect.arrayContaining(['tcp', 'udp', 'latency', 'mtu']));
    expect(() => parseMeasureList('standard,tcp')).toThrow(/standard already includes/);
    expect(measuresPart(['tcp', 'latency'], 'udp')).toBe(false);
    expect(measuresPart(['standard'], 'udp')).toBe(true);
    expect(() => parseMeasureList('redis,foo')).toThrow(/--measure: unknown measurement "foo"/);
    expect(() => parseMeasureList('redis,redis')).toThrow(/--measure lists a measurement twice/);
    expect(() => parseMeasureList('')).toThrow(/--measure must be/);
    expect(() => parseMeasureList('redis,')).toThrow(/--measure must be/);
    expect(validateMeasures(['standard', 'mtu-mismatch'])).toBeNull();
    expect(validateMeasures(['nope'])?.message).toMatch(/--measure/);
  });

  it('defaults to standard; full adds the claim measurements; mtu-mismatch is refused with --hosts', () => {
    expect(defaultMeasures('quick')).toEqual(['standard']);
    expect(defaultMeasures('default')).toEqual(['standard']);
    expect(defaultMeasures('full')).toEqual(['standard', 'mtu-mismatch', 'redis']);
    expect(measuresRemoteError(['standard', 'redis'])).toBeNull();
    expect(measuresRemoteError(['mtu-mismatch'])?.message).toMatch(/--measure mtu-mismatch cannot run with --hosts/);
  });
});

function transfer(pmtud: 'on' | 'off', messages: 'small' | 'large', outcome: MismatchTransfer['outcome']): MismatchTransfer {
  const stalled = outcome === 'stalls';
  const o = output({ end: stalled ? 'stalled' : 'completed', acked: stalled ? 0 : 32, deliveredBytes: stalled ? 0 : 32 * 65536, lastProgressMs: stalled ? 0 : 80 });
  return {
    pmtud,
    messages,
    messageBytes: messages === 'small' ? 100 : 65536,
    count: 32,
    window: messages === 'small' ? 1 : 32,
    output: o,
    evidence: noEvidence,
    outcome,
    fragmentedAt: outcome === 'fragments' ? 'underlay' : null,
    ...transferFigures(o),
    error: null,
  };
}

function mm(outcomes: MismatchTransfer['outcome'][], over: Partial<MtuMismatchResult> = {}): MtuMismatchResult {
  const shapes = [
    ['on', 'small'],
    ['on', 'large'],
    ['off', 'small'],
    ['off', 'large'],
  ] as const;
  return {
    underlayMtu: 1500,
    configuredInnerMtu: 1450,
    forcedMtu: 1500,
    forcedBy: 'device',
    deviceRefused: null,
    plan: MTU_MISMATCH_PLANS.quick,
    captureAvailable: true,
    transfers: outcomes.map((o, i) => transfer(shapes[i][0], shapes[i][1], o)),
    skipped: null,
    ...over,
  };
}

function redis(idleGet: number, delayed: [number, number][] = [], sweepSkipped: string | null = 'no netem on this kernel'): RedisResult {
  const l = (test: string, rps: number): RedisBenchLine => ({ test, rps, avgMs: 0.1, minMs: 0.05, p50Ms: 0.1, p95Ms: 0.2, p99Ms: 0.3, maxMs: 1 });
  const run = (condition: RedisRun['condition'], addedRttMs: number, rps: number): RedisRun => ({
    condition,
    addedRttMs,
    rttMs: 0.06 + addedRttMs,
    rttMinMs: 0.05 + addedRttMs,
    calibrationRps: rps,
    load: condition === 'loaded' ? 'iperf3' : null,
    requests: 1000,
    set: l('SET', rps),
    get: l('GET', rps),
    error: null,
  });
  return {
    serverVersion: '7.0.15',
    benchmarkVersion: '7.0.15',
    argv: [],
    plan: REDIS_PLANS.quick,
    pipeline: 1,
    runs: [run('idle', 0, idleGet), run('loaded', 0, idleGet / 2), ...delayed.map(([ms, rps]) => run('delayed', ms, rps))],
    sweepSkipped,
    skipped: null,
  };
}

function result(samples: Partial<ModeRoundSample>[]): Pick<BenchResult, 'modes' | 'samples' | 'options'> {
  const kinds: Record<string, BenchResult['modes'][number]['kind']> = { bare: 'bare', 'kernel-vxlan': 'kernel-vxlan', 'ovs-gre': 'ovs-gre', vxtap: 'vxtap' };
  return {
    modes: samples.map((s) => ({ id: s.mode!, kind: kinds[s.mode!], params: {}, available: true, unavailableReason: null, info: null })),
    samples: samples.map(
      (s) =>
        ({
          round: 1,
          startedAt: '',
          setupSeconds: 1,
          durationSeconds: 1,
          error: null,
          innerMtu: 1450,
          tcp1: null,
          tcpN: null,
          udp: [],
          latencyIdle: null,
          latencyLoaded: null,
          mtu: null,
          ...s,
        }) as ModeRoundSample,
    ),
    options: { profile: 'quick', rounds: 1, modes: samples.map((s) => s.mode!), mtu: 1500, netem: { delay: null, loss: null, rate: null }, pin: 'cross', argv: [] },
  };
}

describe('claim rows and summary sections', () => {
  it('MTU mismatch: held where a transfer stalls, not held where all complete, none for bare', () => {
    const r = result([
      { mode: 'bare', mtuMismatch: mm(['completes', 'completes', 'completes', 'completes'], { forcedBy: 'none', configuredInnerMtu: 1500 }) },
      { mode: 'ovs-gre', mtuMismatch: mm(['completes', 'stalls', 'completes', 'stalls']) },
      { mode: 'kernel-vxlan', mtuMismatch: mm(['completes', 'fragments', 'completes', 'fragments'], { forcedBy: 'route', deviceRefused: 'RTNETLINK answers: Invalid argument' }) },
      { mode: 'vxtap', mtuMismatch: mm([], { skipped: 'not on --hosts' }) },
    ]);
    const claims = mtuMismatchClaims(r);
    expect(claims.map((c) => [c.id, c.verdict])).toEqual([
      ['mtu-mismatch-drops:ovs-gre', 'held'],
      ['mtu-mismatch-drops:kernel-vxlan', 'not held'],
      ['mtu-mismatch-drops:vxtap', 'n/a'],
    ]);
    expect(claims[0].measured).toMatch(/large \(65536 B x 32\), PMTUD on: stalls, nothing delivered, then nothing for 1\.5 s/);
    expect(claims[1].detail).toMatch(/route MTU/);
    const md = renderMtuMismatchMarkdown(r, (h, rows) => [h.join('|'), ...rows.map((x) => x.join('|'))].join('\n')).join('\n');
    expect(md).toContain('## MTU mismatch');
    expect(md).toContain('ovs-gre|1450 -> 1500 (device)|on|large 65536 B x 32|stalls|0.000|n/a');
  });

  it('redis: n/a without the sweep (figures and the reason kept), held or not with it', () => {
    const none = result([
      { mode: 'bare', redis: redis(10000) },
      { mode: 'vxtap', redis: redis(5000) },
    ]);
    const c0 = redisClaims(none);
    expect(c0.map((c) => c.verdict)).toEqual(['n/a', 'n/a']);
    expect(c0[1].measured).toMatch(/GET 5000 ops\/s .*GET 50% of bare.*no netem on this kernel/);
    const swept = result([
      {
        mode: 'kernel-vxlan',
        redis: redis(
          10000,
          [
            [1, 900],
            [2, 480],
            [3, 320],
            [5, 195],
          ],
          null,
        ),
      },
      {
        mode: 'vxtap',
        redis: redis(
          10000,
          [
            [1, 9000],
            [2, 8000],
            [3, 7000],
            [5, 2000],
          ],
          null,
        ),
      },
    ]);
    expect(redisClaims(swept).map((c) => c.verdict)).toEqual(['held', 'not held']);
    const md = renderRedisMarkdown(swept, (h, rows) => [h.join('|'), ...rows.map((x) => x.join('|'))].join('\n')).join('\n');
    expect(md).toContain('kernel-vxlan|+3 ms RTT|3.050 / 3.060|320|');
    expect(renderRedisMarkdown(result([{ mode: 'bare' }]) as BenchResult, () => '')).toEqual([]);
  });
});
