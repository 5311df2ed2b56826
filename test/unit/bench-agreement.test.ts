/**
 * The agreement check's logic (bench/remote/agreement.ts): the ABBA order,
 * pooling one-round results into one result, the table judged by compare.ts,
 * its Markdown, the options. Pure: results are built from the golden fixture.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AGREEMENT_DEFAULTS,
  benchArgv,
  estimateCheckSeconds,
  judgeAgreement,
  minPairsForVerdict,
  pairOrder,
  parseAgreementOptions,
  poolRounds,
  renderAgreementMarkdown,
  rowTitle,
  runSchedule,
} from '../../bench/remote/agreement.js';
import { derive, metricDefs, perRoundValues, type BenchResult, type ModeRoundSample } from '../../bench/result.js';
import { validateResult } from '../../bench/validate.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const golden = (): BenchResult => JSON.parse(readFileSync(path.join(here, '..', 'fixtures', 'bench', 'golden-result.json'), 'utf8')) as BenchResult;
const HEADLINE = AGREEMENT_DEFAULTS.metrics.split(',');

/** Scale what the throughput, UDP and latency metrics read from one sample. */
function scaleSample(s: ModeRoundSample, throughput: number, latency: number): ModeRoundSample {
  const c = structuredClone(s);
  for (const t of [c.tcp1, c.tcpN]) if (t) t.receivedBps *= throughput;
  for (const u of c.udp) {
    if (!u.search) continue;
    for (const b of [u.search.ndr, u.search.pdr]) if (b.ratePps !== null) b.ratePps *= throughput;
  }
  for (const l of [c.latencyIdle, c.latencyLoaded]) {
    if (!l) continue;
    const p = l.percentiles as unknown as Record<string, number>;
    for (const k of ['p50Us', 'p90Us', 'p99Us', 'p999Us', 'maxUs']) p[k] *= latency;
  }
  return c;
}

/** Round `round` of the golden run as a one-round result of its own (as one bench run of the check writes it). */
function oneRound(round: number, factor = 1, modes?: Record<string, { throughput: number; latency: number }>): BenchResult {
  const g = golden();
  const r: BenchResult = {
    ...g,
    runId: `run-r${round}-x${factor}`,
    options: { ...g.options, rounds: 1 },
    order: [g.order[round - 1]],
    samples: g.samples
      .filter((s) => s.round === round)
      .map((s) => {
        const m = modes?.[s.mode] ?? { throughput: 1, latency: 1 };
        return { ...scaleSample(s, factor * m.throughput, factor * m.latency), round: 1 };
      }),
  };
  return { ...r, derived: JSON.parse(JSON.stringify(derive(r))) as BenchResult['derived'] };
}

/** `n` one-round results: golden round 1 scaled by 1 + 0.004 (k - (n+1)/2) in pair k, so pairs differ a little (CV ~0.8% at n = 6). */
function side(n: number, factor = 1, modes?: Record<string, { throughput: number; latency: number }>): BenchResult[] {
  return Array.from({ length: n }, (_, k) => oneRound(1, factor * (1 + 0.004 * (k + 1 - (n + 1) / 2)), modes));
}

describe('ABBA order', () => {
  it('alternates which side runs first, and every pair runs both', () => {
    expect(pairOrder(0)).toEqual(['hosts', 'local']);
    expect(pairOrder(1)).toEqual(['local', 'hosts']);
    expect(runSchedule(3).map((r) => `${r.pair + 1}${r.side[0]}`)).toEqual(['1h', '1l', '2l', '2h', '3h', '3l']);
  });

  it('cancels a linear drift exactly for an even number of pairs, and to within one run slot for an odd one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), (pairs) => {
        const s = runSchedule(pairs);
        expect(s).toHaveLength(2 * pairs);
        const slots = (side: string) => s.reduce((t, r, i) => t + (r.side === side ? i : 0), 0);
        // Under drift d per run slot, side X gains d x (sum of its slots): the sides' sums differ by (pairs mod 2).
        expect(Math.abs(slots('hosts') - slots('local'))).toBe(pairs % 2);
        for (let p = 0; p < pairs; p++)
          expect(
            s
              .filter((r) => r.pair === p)
              .map((r) => r.side)
              .sort(),
          ).toEqual(['hosts', 'local']);
      }),
    );
  });
});

describe('poolRounds', () => {
  it('pools one-round results into the multi-round result they were cut from, which validates', () => {
    const g = golden();
    const pooled = poolRounds([oneRound(1), oneRound(2), oneRound(3)]);
    expect(validateResult(pooled)).toEqual([]);
    expect(pooled.status).toBe('complete');
    expect(pooled.options.rounds).toBe(3);
    expect(pooled.order).toEqual(g.order);
    for (const mode of g.modes.map((m) => m.id)) {
      for (const d of metricDefs(g.profile)) expect(perRoundValues(pooled, mode, d.key), `${mode} ${d.key}`).toEqual(perRoundValues(g, mode, d.key));
    }
    expect(pooled.derived.byMode.vxtap.tcp1Gbps.summary).toEqual(g.derived.byMode.vxtap.tcp1Gbps.summary);
  });

  it('a run without a result holds an empty round and makes the pool incomplete, naming it', () => {
    const pooled = poolRounds([oneRound(1), null, oneRound(3)], ['pair 1', 'pair 2', 'pair 3']);
    expect(pooled.options.rounds).toBe(3);
    expect(perRoundValues(pooled, 'bare', 'tcp1Gbps')[1]).toBeNull();
    expect(perRoundValues(pooled, 'bare', 'tcp1Gbps')[2]).toBe(perRoundValues(golden(), 'bare', 'tcp1Gbps')[2]);
    expect(pooled.status).toBe('incomplete');
    expect(pooled.incompleteReasons).toEqual(['pair 2: no result']);
    expect(validateResult(pooled)).toEqual([]);
    expect(() => poolRounds([null, null])).toThrow(RangeError);
  });

  it('numbers the rounds of multi-round runs one after the other', () => {
    const pooled = poolRounds([golden(), oneRound(2)]);
    expect(pooled.options.rounds).toBe(4);
    expect([...new Set(pooled.samples.map((s) => s.round))].sort()).toEqual([1, 2, 3, 4]);
  });
});

describe('judgeAgreement', () => {
  const modes = ['bare', 'kernel-vxlan', 'vxtap'];
  const keep = (rs: BenchResult[]) => rs.map((r) => ({ ...r, modes: r.modes.filter((m) => modes.includes(m.id)), samples: r.samples.filter((s) => modes.includes(s.mode)) }));

  it('with 6 pairs and the same figures on both sides (within 0.2%): every row same, overall agree', () => {
    const a = judgeAgreement(poolRounds(keep(side(6))), poolRounds(keep(side(6, 1.002))), { metrics: HEADLINE });
    expect(a.rows).toHaveLength(12);
    expect(a.tests).toBe(12);
    expect(a.minPairsForVerdict).toBe(6);
    for (const r of a.rows) expect(r.verdict, `${r.mode} ${r.metric}: ${String(r.note)}`).toBe('same');
    expect(a.overall).toBe('agree');
    const tcp = a.rows.find((r) => r.mode === 'vxtap' && r.metric === 'tcp1Gbps')!;
    expect(tcp.deltaPct).toBeCloseTo(0.2, 5);
    expect(tcp.pairRatio.median).toBeCloseTo(1.002, 9);
    expect(tcp.pairRatio.min).toBeCloseTo(1.002, 9);
    expect(tcp.local.n).toBe(6);
    expect(tcp.rangesOverlap).toBe(true);
  });

  it('with 6 pairs and vxtap 30% slower across SSH: that row differs (hosts worse), the others same, overall differ', () => {
    const a = judgeAgreement(poolRounds(keep(side(6))), poolRounds(keep(side(6, 1, { vxtap: { throughput: 0.7, latency: 1 } }))), { metrics: HEADLINE });
    const row = (m: string, k: string) => a.rows.find((r) => r.mode === m && r.metric === k)!;
    expect(row('vxtap', 'tcp1Gbps').verdict).toBe('worse');
    expect(row('vxtap', 'tcp1Gbps').deltaPct).toBeCloseTo(-30, 5);
    expect(row('vxtap', 'tcp1Gbps').rangesOverlap).toBe(false);
    expect(row('bare', 'tcp1Gbps').verdict).toBe('same');
    expect(a.overall).toBe('differ');
    expect(a.counts.differ).toBe(3); // TCP 1, TCP N and UDP of vxtap; its latency did not move
    expect(renderAgreementMarkdown(a)).toMatch(/\| vxtap \| TCP 1 stream \(Gbit\/s\) \| [\d.]+ \| [\d.]+ \| -30\.0% \| .* \| differs \(hosts worse\) \|/);
  });

  it('with 3 pairs no verdict is reachable: unknown rows whose note asks for more pairs, not rounds', () => {
    const a = judgeAgreement(poolRounds(keep(side(3))), poolRounds(keep(side(3))), { metrics: HEADLINE });
    expect(a.pairs).toBe(3);
    expect(a.overall).toBe('undecided');
    for (const r of a.rows) {
      expect(r.verdict).toBe('unknown');
      expect(r.note).toMatch(/use --pairs 6 or more/);
      expect(r.note).not.toMatch(/--rounds/);
    }
    const md = renderAgreementMarkdown(a);
    expect(md).toMatch(/with 12 tests a verdict needs --pairs 6 or more/);
    expect(md).toMatch(/\| mode \| metric \| local median \| hosts median \| difference \| local min-max \(CV\) \| hosts min-max \(CV\) \| hosts \/ local per pair \| verdict \|/);
    expect(md).toMatch(/\| bare \| Latency idle p50 \(us\) \|/);
    expect(md).toMatch(/\| kernel-vxlan \| UDP 64 B PDR 0\.5% \(kpps\) \|/);
    expect(md).toMatch(/0 same, 0 differ, 12 unknown; \d+ noisy\. Overall: undecided/);
  });

  it('records the runs and the order it is given, and refuses a metric neither side has', () => {
    const runs = [{ pair: 0, side: 'hosts' as const, runId: 'h1', status: 'complete' as const, result: 'pair1-hosts/x/result.json', exitCode: 0, durationSeconds: 90, startedAt: null }];
    const a = judgeAgreement(poolRounds([oneRound(1)]), poolRounds([oneRound(1)]), { metrics: ['tcp1Gbps'], runs, order: [pairOrder(0)] });
    expect(a.runs).toEqual(runs);
    expect(renderAgreementMarkdown(a)).toMatch(/pair 1 hosts: run h1, complete, 90 s \(pair1-hosts\/x\/result\.json\)/);
    expect(renderAgreementMarkdown(a)).toMatch(/order hosts-local/);
    expect(() => judgeAgreement(poolRounds([oneRound(1)]), poolRounds([oneRound(1)]), { metrics: ['udp9000PdrKpps'] })).toThrow(/unknown metric "udp9000PdrKpps"/);
  });
});

describe('options and commands', () => {
  it('defaults: 3 pairs, bare,kernel-vxlan,vxtap, the four headline metrics, default profile', () => {
    const o = parseAgreementOptions({});
    expect(o).toMatchObject({
      pairs: 3,
      modes: ['bare', 'kernel-vxlan', 'vxtap'],
      metrics: ['tcp1Gbps', 'tcpNGbps', 'latIdleP50', 'udp64PdrKpps'],
      quick: false,
      alpha: 0.05,
      prefix: 'vxag',
      json: false,
    });
  });

  it('bad values are refused naming the option', () => {
    const err = (raw: Parameters<typeof parseAgreementOptions>[0]) => (parseAgreementOptions(raw) as Error).message;
    expect(err({ pairs: '0' })).toMatch(/^--pairs must be an integer from 1 to 50/);
    expect(err({ pairs: '2.5' })).toMatch(/^--pairs/);
    expect(err({ modes: ' , ' })).toMatch(/^--modes/);
    expect(err({ metrics: '' })).toMatch(/^--metrics/);
    expect(err({ alpha: '1' })).toMatch(/^--alpha/);
    expect(err({ prefix: 'vxbq' })).toMatch(/^--prefix .*not with "vxb"/);
    expect(err({ prefix: 'toolongx' })).toMatch(/^--prefix/);
    expect(err({ benchArgs: ['--pin', 'same', '--rounds=3'] })).toMatch(/^bench flag --rounds after -- is set by the check itself/);
    expect(err({ benchArgs: ['--hosts', 'x,y'] })).toMatch(/--hosts/);
  });

  it('both sides run the same bench; only the hosts side adds the SSH hosts (and the data veths for OVS)', () => {
    const o = parseAgreementOptions({ quick: true, modes: 'bare,ovs-gre', benchArgs: ['--pin', 'same'] });
    if (o instanceof Error) throw o;
    const hosts = { a: 'vxag-a', b: 'vxag-b', sshConfig: '/tmp/c', underlay: ['198.18.242.1', '198.18.242.2'] as [string, string], dataDev: ['vxagd0', 'vxagd1'] as [string, string] };
    const local = benchArgv(o, 'local', '/o/l', hosts);
    const remote = benchArgv(o, 'hosts', '/o/l', hosts);
    expect(local).toEqual(['--modes', 'bare,ovs-gre', '--rounds', '1', '--quick', '--out', '/o/l', '--pin', 'same']);
    expect(remote).toEqual([
      '--modes',
      'bare,ovs-gre',
      '--rounds',
      '1',
      '--quick',
      '--out',
      '/o/l',
      '--hosts',
      'vxag-a,vxag-b',
      '--ssh-config',
      '/tmp/c',
      '--underlay',
      '198.18.242.1,198.18.242.2',
      '--data-dev',
      'vxagd0,vxagd1',
      '--pin',
      'same',
    ]);
    expect(benchArgv({ ...o, modes: ['bare'] }, 'hosts', '/o', hosts)).not.toContain('--data-dev');
    expect(() => benchArgv(o, 'hosts', '/o', null)).toThrow(TypeError);
  });

  it('pairs needed for a verdict, the wall-time estimate and row titles', () => {
    expect(minPairsForVerdict(12, 0.05)).toBe(6); // 2 / C(12, 6) = 0.0022 <= 0.05 / 12; 5 pairs: 0.0079
    expect(minPairsForVerdict(4, 0.05)).toBe(5);
    expect(minPairsForVerdict(1, 0.05)).toBe(5); // never below compare's recommended rounds
    expect(estimateCheckSeconds(1, 1, 13.2)).toBeCloseTo(42.4, 5);
    expect(estimateCheckSeconds(3, 3, 27.4)).toBeCloseTo(565.2, 5);
    expect(rowTitle({ table: 'TCP throughput', title: 'TCP 1 stream' })).toBe('TCP 1 stream');
    expect(rowTitle({ table: 'Latency idle', title: 'p50' })).toBe('Latency idle p50');
    expect(rowTitle({ table: 'UDP NDR/PDR', title: '64 B PDR 0.5%' })).toBe('UDP 64 B PDR 0.5%');
  });
});
