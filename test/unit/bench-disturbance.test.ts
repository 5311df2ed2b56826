import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareResults, renderCompareMarkdown } from '../../bench/compare.js';
import {
  assessTcp,
  DIP_FRACTION,
  disturbanceOf,
  disturbedSamples,
  FOREIGN_CPU_MAX,
  measuredIntervals,
  STEAL_SHARE_MAX,
  tcpSampleOfMetric,
  type Disturbance,
  type TcpSampleFigures,
} from '../../bench/disturbance.js';
import { disturbedBadge } from '../../bench/report/data.js';
import { METRICS, type BenchResult } from '../../bench/result.js';
import { DISTURBED_MARK, renderSummaryMarkdown, renderTerminalSummary } from '../../bench/summary.js';
import { validateResult } from '../../bench/validate.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'bench');
const golden = (): BenchResult => JSON.parse(readFileSync(path.join(fixtures, 'golden-result.json'), 'utf8')) as BenchResult;

/**
 * A 3-second TCP sample on a 2-CPU machine: by default clean (no steal, the
 * dataplane and iperf3 account for all busy time, flat 10 Gbit/s intervals).
 */
function sample(o: { steal?: number; busy?: number; dataplane?: number; hostPct?: number; remotePct?: number; intervals?: number[]; seconds?: number } = {}): TcpSampleFigures {
  const wall = 3;
  const total = 2 * wall;
  const steal = o.steal ?? 0;
  const dataplane = o.dataplane ?? 3;
  const hostPct = o.hostPct ?? 20;
  const remotePct = o.remotePct ?? 20;
  const seconds = o.seconds ?? 3;
  // Busy by default = dataplane + iperf3 exactly: nothing foreign.
  const busy = o.busy ?? dataplane + ((hostPct + remotePct) / 100) * seconds + steal;
  return {
    seconds,
    cpuHostPercent: hostPct,
    cpuRemotePercent: remotePct,
    intervalBps: o.intervals ?? [10e9, 10e9, 10e9],
    cpu: {
      wallSeconds: wall,
      machine: {
        totalSeconds: total,
        userSeconds: busy / 2,
        systemSeconds: busy / 2 - steal,
        softirqSeconds: 0,
        irqSeconds: 0,
        stealSeconds: steal,
        idleSeconds: total - busy,
        busySeconds: busy,
      },
      dataplaneSeconds: dataplane,
    },
  };
}

const none = { omitSeconds: 0 };

describe('assessTcp', () => {
  it('a clean sample is not flagged', () => {
    const d = assessTcp(sample(), none);
    expect(d).toEqual({ flagged: false, reasons: [], stealShare: 0, foreignCpu: 0, dips: [] });
  });

  it('steal of 10% of the CPU time is flagged as steal', () => {
    const d = assessTcp(sample({ steal: 0.6 }), none);
    expect(d.stealShare).toBeCloseTo(0.1, 10);
    expect(d.flagged).toBe(true);
    expect(d.reasons).toEqual([`steal 10.0% of CPU time (limit ${(STEAL_SHARE_MAX * 100).toFixed(1)}%)`]);
  });

  it('a foreign busy process is flagged with the CPUs it took', () => {
    // 1.5 CPU-s more than the dataplane (3) and iperf3 (40% x 3 s = 1.2) over 3 s: 0.5 CPU.
    const d = assessTcp(sample({ busy: 5.7 }), none);
    expect(d.foreignCpu).toBeCloseTo(0.5, 10);
    expect(d.reasons).toEqual([`another process 0.50 CPU (limit ${FOREIGN_CPU_MAX})`]);
    // iperf3's figures cover its measured seconds; it also ran through the omitted one.
    expect(assessTcp(sample({ busy: 5.7 }), { omitSeconds: 1 }).foreignCpu).toBeCloseTo((5.7 - 3 - 0.4 * 4) / 3, 10);
  });

  it('without iperf3 CPU figures the foreign share is unknown, not zero', () => {
    const d = assessTcp({ ...sample({ busy: 5.9 }), cpuHostPercent: null }, none);
    expect(d.foreignCpu).toBeNull();
    expect(d.flagged).toBe(false);
  });

  it('accounting jitter below zero is no foreign CPU', () => {
    expect(assessTcp(sample({ busy: 4 }), none).foreignCpu).toBe(0);
  });

  it('one interval at 40% of the median is a dip', () => {
    const d = assessTcp(sample({ intervals: [10e9, 10e9, 4e9, 10e9, 10e9], seconds: 5 }), none);
    expect(d.dips).toEqual([{ second: 3, fraction: 0.4 }]);
    expect(d.reasons).toEqual([`dip: second 3 at 40% of the median (limit ${DIP_FRACTION * 100}%)`]);
  });

  it('the omitted intervals (-O) are skipped; without -O the first (slow start) only dips below half', () => {
    expect(assessTcp(sample({ intervals: [2e9, 10e9, 10e9, 10e9] }), { omitSeconds: 1 }).dips).toEqual([]);
    expect(assessTcp(sample({ intervals: [6e9, 10e9, 10e9] }), none).dips).toEqual([]);
    expect(assessTcp(sample({ intervals: [4e9, 10e9, 10e9] }), none).dips).toEqual([{ second: 1, fraction: 0.4 }]);
    // With -O the first measured second is steady state: 0.6 is a dip.
    expect(assessTcp(sample({ intervals: [2e9, 6e9, 10e9, 10e9] }), { omitSeconds: 1 }).dips).toEqual([{ second: 1, fraction: 0.6 }]);
  });

  it("a short trailing interval beyond the measured seconds is left out, and one interval can't dip", () => {
    expect(measuredIntervals([1, 2, 3, 4, 5], 3.04, 1)).toEqual([2, 3, 4]);
    expect(assessTcp(sample({ intervals: [10e9, 10e9, 10e9, 1e9] }), none).dips).toEqual([]);
    expect(assessTcp(sample({ intervals: [1e9], seconds: 1 }), none).dips).toEqual([]);
    expect(assessTcp({ ...sample(), intervalBps: undefined }, none).dips).toEqual([]);
  });

  it('all three signs at once give three reasons', () => {
    const d = assessTcp(sample({ steal: 0.6, busy: 6, intervals: [10e9, 3e9, 10e9] }), none);
    expect(d.reasons.map((r) => r.split(' ')[0])).toEqual(['steal', 'another', 'dip:']);
  });

  it('property: a clean, flat series never flags', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e8, max: 4e10, noNaN: true }),
        fc.array(fc.double({ min: 0.9, max: 1.1, noNaN: true }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 2 }),
        fc.double({ min: 0, max: STEAL_SHARE_MAX * 0.99, noNaN: true }),
        fc.double({ min: 0, max: FOREIGN_CPU_MAX * 0.99, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (level, shape, omit, stealShare, foreign, pct) => {
          const intervals = shape.map((k) => k * level);
          const seconds = Math.max(1, intervals.length - omit);
          const steal = stealShare * 6;
          const figures = sample({ intervals, seconds, steal, dataplane: 1, hostPct: pct, remotePct: pct });
          // Add the foreign CPU-seconds on top of what the bench used.
          const busy = 1 + ((2 * pct) / 100) * (seconds + omit) + steal + foreign * 3;
          figures.cpu.machine.busySeconds = busy;
          const d = assessTcp(figures, { omitSeconds: omit });
          return !d.flagged && d.reasons.length === 0 && d.dips.length === 0;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('recording and rendering', () => {
  it('every TCP metric maps to the sample it is read from; others to none', () => {
    for (const m of METRICS) {
      const which = tcpSampleOfMetric(m.key);
      if (m.key.startsWith('tcp')) expect(which, m.key).not.toBeNull();
      else expect(which, m.key).toBeNull();
    }
    expect(tcpSampleOfMetric('tcpNGbps')).toBe('tcpN');
    expect(tcpSampleOfMetric('tcp1Gbps')).toBe('tcp1');
    expect(tcpSampleOfMetric('udp64PdrKpps')).toBeNull();
  });

  const steal: Disturbance = { flagged: true, reasons: ['steal 10.0% of CPU time (limit 2.0%)'], stealShare: 0.1, foreignCpu: 0, dips: [] };
  const clean: Disturbance = { flagged: false, reasons: [], stealShare: 0, foreignCpu: 0, dips: [] };

  /** The golden result with every TCP sample's assessment recorded clean, except vxtap round 2 TCP 1 stream (steal). */
  function recorded(): BenchResult {
    const r = golden();
    for (const s of r.samples) for (const t of [s.tcp1, s.tcpN]) if (t) t.disturbance = clean;
    const s = r.samples.find((x) => x.mode === 'vxtap' && x.round === 2)!;
    s.tcp1!.disturbance = steal;
    return r;
  }

  it('the recorded assessment validates against the schema and wins over recomputing', () => {
    const r = recorded();
    expect(validateResult(r)).toEqual([]);
    expect(disturbedSamples(r)).toEqual([{ mode: 'vxtap', round: 2, sample: 'tcp1', reasons: steal.reasons }]);
    const bad = recorded() as unknown as { samples: { tcp1: { disturbance: { stealShare: number } } }[] };
    bad.samples[0].tcp1.disturbance.stealShare = 2;
    expect(validateResult(bad).some((e) => e.includes('disturbance.stealShare'))).toBe(true);
  });

  it('results written before the field are assessed from their raw figures', () => {
    const r = golden();
    const t = r.samples.find((x) => x.mode === 'ovs-gre' && x.round === 3)!.tcpN!;
    expect(t.disturbance).toBeUndefined();
    const d = disturbanceOf(t, r.profile);
    expect(d.flagged).toBe(true);
    expect(d.foreignCpu).toBeGreaterThan(1);
  });

  it('summary.md marks the figures of the disturbed round, names round and reason, and flags noisy figures', () => {
    const md = renderSummaryMarkdown(recorded());
    const tcpSection = md.slice(md.indexOf('## TCP throughput'), md.indexOf('## CPU'));
    const tcpRow = tcpSection.split('\n').find((l) => l.startsWith('| vxtap | '))!;
    const cells = tcpRow.split(' | ');
    expect(cells[1]).toContain(DISTURBED_MARK); // TCP 1 stream
    expect(cells[2]).not.toContain(DISTURBED_MARK); // TCP N streams: its samples were clean
    expect(md).toContain(`${DISTURBED_MARK} Disturbed samples, flagged and kept in the figures: vxtap TCP 1 stream: round 2 (steal 10.0% of CPU time (limit 2.0%)).`);
    // vxtap TCP 1 stream CV 13.4% > 10% (compare's cvMax for throughput): noisy; bare 4.0%: not.
    expect(cells[1]).toMatch(/CV 13\.4%, noisy\)/);
    expect(md).toMatch(/\| bare \| 17\.6 \(16\.5–17\.9, CV 4\.0%\) \|/);
    expect(renderTerminalSummary(recorded(), 'D')).toContain('disturbed (flagged, kept): vxtap round 2 tcp1');
  });

  it('a clean result renders no marks', () => {
    const r = recorded();
    r.samples.find((x) => x.mode === 'vxtap' && x.round === 2)!.tcp1!.disturbance = clean;
    const md = renderSummaryMarkdown(r);
    expect(md.split('\n').filter((l) => l.startsWith('|') && l.includes(DISTURBED_MARK))).toEqual([]);
    expect(md).not.toContain('Disturbed samples');
  });

  it('compare lists the disturbed rounds per side and marks the rows they feed', () => {
    const c = compareResults({ label: 'old.json', result: golden() }, { label: 'new.json', result: recorded() });
    expect(c.disturbed.new).toEqual([{ mode: 'vxtap', round: 2, sample: 'tcp1', reasons: steal.reasons }]);
    expect(c.disturbed.old.length).toBeGreaterThan(0); // the golden run itself had a busy neighbour
    const row = (mode: string, metric: string) => c.rows.find((x) => x.mode === mode && x.metric === metric)!;
    expect(row('vxtap', 'tcp1Gbps').disturbedRounds).toEqual({ old: [], new: [2] });
    expect(row('vxtap', 'tcpNGbps').disturbedRounds).toEqual({ old: [], new: [] });
    expect(row('vxtap', 'latIdleP50').disturbedRounds).toEqual({ old: [], new: [] });
    const md = renderCompareMarkdown(c);
    expect(md).toMatch(/\| vxtap \| tcp1Gbps \(Gbit\/s\) \|.*disturbed †/);
    expect(md).not.toMatch(/\| vxtap \| tcpNGbps \(Gbit\/s\) \|.*disturbed/);
    expect(md).toContain('- new:\n  - vxtap TCP 1 stream: round 2 (steal 10.0% of CPU time (limit 2.0%))');
    expect(md).toContain('- old:\n  - bare TCP N streams: round 1 (another process 0.45 CPU (limit 0.25)), round 2 (another process 0.75 CPU (limit 0.25))');
  });

  it('the report badge names the rounds and carries the reasons', () => {
    const r = recorded();
    expect(disturbedBadge(r, 'vxtap', 'tcp1Gbps')).toEqual({ text: '† disturbed: round 2', title: 'vxtap TCP 1 stream: round 2 (steal 10.0% of CPU time (limit 2.0%))' });
    expect(disturbedBadge(r, 'vxtap', 'tcpNGbps')).toBeNull();
  });
});
