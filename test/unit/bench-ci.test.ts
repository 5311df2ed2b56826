/**
 * `vxtap bench ci`, the pure parts: option validation, the plan with
 * --rounds as its cap, the ABAB schedule, a round's argument vector and
 * environment, merging single-round results into one multi-round result, and
 * the ABAB loop under the stopping rule with simulated rounds (no bench).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { abSchedule, ciPlan, mergeRounds, parseCiOptions, roundArgv, roundEnv, splitModes, type CiOptions, type Side } from '../../bench/ci/plan.js';
import { ciExitStatus, compareAtLevel, runAbab } from '../../bench/ci/sequential.js';
import { derive, perRoundValues, type BenchResult } from '../../bench/result.js';
import { validateResult } from '../../bench/validate.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const golden = (): BenchResult => JSON.parse(readFileSync(path.join(here, '..', 'fixtures', 'bench', 'golden-result.json'), 'utf8')) as BenchResult;

/** Round `k` of the golden run as a result of its own (a `vxtap bench --rounds 1`), vxtap TCP x `factor`. */
function single(k: number, factor = 1, runId = `r${k}`): BenchResult {
  const r = golden();
  r.samples = r.samples
    .filter((s) => s.round === k)
    .map((s) => {
      const c = structuredClone(s);
      c.round = 1;
      if (c.mode === 'vxtap') for (const t of [c.tcp1, c.tcpN]) if (t) t.receivedBps *= factor;
      return c;
    });
  r.order = [r.order[k - 1]];
  r.options.rounds = 1;
  r.profile.rounds = 1;
  r.runId = runId;
  r.derived = derive(r);
  return r;
}

describe('parseCiOptions', () => {
  const ok = (raw: Record<string, string | boolean | string[] | undefined>) => parseCiOptions(raw) as CiOptions;
  const err = (raw: Record<string, string | boolean | string[] | undefined>) => (parseCiOptions(raw) as Error).message;

  it('defaults: the CI profile, the cap of the stopping rule, the gating family', () => {
    const o = ok({ base: 'origin/main' });
    expect(o).toMatchObject({
      base: 'origin/main',
      head: null,
      profile: 'default',
      modes: ['kernel-vxlan', 'vxtap'],
      cap: 12,
      metrics: ['tcp1Gbps', 'tcpNGbps', 'latIdleP50'],
      alpha: 0.05,
      failOnRegressionPct: 0,
      remote: null,
      progress: true,
      json: false,
    });
  });

  it('names the flag that is wrong', () => {
    expect(err({})).toMatch(/^--base is required/);
    expect(err({ base: '--upload-pack=x' })).toMatch(/^--base must be a git ref/);
    expect(err({ base: 'HEAD:README.md' })).toMatch(/^--base must be a git ref/);
    expect(err({ base: 'HEAD', head: 'a b' })).toMatch(/^--head must be a git ref/);
    expect(err({ base: 'HEAD', quick: true, full: true })).toMatch(/--quick and --full/);
    expect(err({ base: 'HEAD', rounds: '0' })).toMatch(/^--rounds .* between 1 and 100 \(got "0"\)/);
    expect(err({ base: 'HEAD', rounds: '2.5' })).toMatch(/^--rounds/);
    expect(err({ base: 'HEAD', modes: 'vxtap,vxtap' })).toMatch(/^--modes lists a mode twice/);
    expect(err({ base: 'HEAD', modes: 'nope' })).toMatch(/^--modes: /);
    expect(err({ base: 'HEAD', alpha: '1' })).toMatch(/^--alpha/);
    expect(err({ base: 'HEAD', failOnRegression: '-1' })).toMatch(/^--fail-on-regression/);
    expect(err({ base: 'HEAD', hosts: 'a' })).toMatch(/^--hosts must be two/);
    expect(err({ base: 'HEAD', hosts: 'a,b', underlay: '10.0.0.1' })).toMatch(/^--underlay must be two/);
    expect(err({ base: 'HEAD', sshConfig: 'f' })).toMatch(/^--ssh-config needs --hosts/);
    expect(err({ base: 'HEAD', dataDev: 'e0,e1' })).toMatch(/^--data-dev needs --hosts/);
  });

  it('profile, modes with parameters, remote flags', () => {
    const o = ok({ base: 'main~3', head: 'topic', quick: true, modes: 'bare,vxtap:workers=2,batch=8', rounds: '4', hosts: 'root@a, root@b', sshOption: ['BatchMode=yes'], vni: '7' });
    expect(o.profile).toBe('quick');
    expect(o.modes).toEqual(['bare', 'vxtap:workers=2,batch=8']);
    expect(o.cap).toBe(4);
    expect(o.remote).toMatchObject({ hosts: ['root@a', 'root@b'], sshOptions: ['BatchMode=yes'], vni: '7', underlay: null });
    expect(splitModes('kernel-vxlan, vxtap')).toEqual(['kernel-vxlan', 'vxtap']);
  });
});

describe('ciPlan: decide.ts looks with --rounds as the cap', () => {
  it('looks at 6, 9, 12 by default; the cap ends the schedule; below 6 one look at the cap', () => {
    expect(ciPlan(12).schedule).toEqual([6, 9, 12]);
    expect(ciPlan(10).schedule).toEqual([6, 9, 10]);
    expect(ciPlan(6).schedule).toEqual([6]);
    expect(ciPlan(3).schedule).toEqual([3]);
    expect(ciPlan(1).schedule).toEqual([1]);
    expect(ciPlan(12, 0.01)).toMatchObject({ alpha: 0.01, correction: 'holm' });
  });
});

describe('abSchedule', () => {
  it('base and head alternate, round by round', () => {
    expect(abSchedule(1, 2)).toEqual([
      { side: 'base', round: 1 },
      { side: 'head', round: 1 },
      { side: 'base', round: 2 },
      { side: 'head', round: 2 },
    ]);
    expect(abSchedule(7, 6)).toEqual([]);
  });
  it('any range: 2 x rounds entries, ABAB, each round once per side', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 50 }), (from, n) => {
        const s = abSchedule(from, from + n - 1);
        expect(s.length).toBe(2 * n);
        s.forEach((x, i) => expect(x).toEqual({ side: i % 2 === 0 ? 'base' : 'head', round: from + Math.floor(i / 2) }));
      }),
    );
  });
});

describe('a round: argv and environment', () => {
  it('one round of the bench, modes rotated by round, profile flag, --no-progress', () => {
    const o = { profile: 'quick' as const, modes: ['kernel-vxlan', 'vxtap', 'bare'], remote: null };
    expect(roundArgv(o, 1, '/o/r')).toEqual(['bench', '--rounds', '1', '--modes', 'kernel-vxlan,vxtap,bare', '--out', '/o/r', '--no-progress', '--quick']);
    expect(roundArgv(o, 2, '/o/r').slice(4, 5)).toEqual(['vxtap,bare,kernel-vxlan']);
    expect(roundArgv({ ...o, profile: 'default' }, 4, '/o')).not.toContain('--default');
    // --looks: an explicit schedule, its last look the cap; bad lists name the option.
    expect(ciPlan(12, 0.05, [8, 16, 24]).schedule).toEqual([8, 16, 24]);
    expect(ciPlan(12, 0.05).schedule).toEqual([6, 9, 12]);
    expect(parseCiOptions({ base: 'HEAD', looks: '8,16,24' })).toMatchObject({ looks: [8, 16, 24], cap: 24 });
    expect((parseCiOptions({ base: 'HEAD', looks: '8,4' }) as Error).message).toMatch(/--looks must be strictly increasing/);
    // --measure reaches every round (both builds must know the list); absent: the bench's own default.
    expect(roundArgv({ ...o, measure: ['tcp', 'latency'] }, 1, '/o')).toEqual(expect.arrayContaining(['--measure', 'tcp,latency']));
    expect(roundArgv(o, 1, '/o')).not.toContain('--measure');
  });
  it('--hosts and the SSH flags pass through, with --deploy (each build copies itself)', () => {
    const remote = { hosts: ['a', 'b'] as [string, string], sshConfig: '/c', sshOptions: ['X=1', 'Y=2'], underlay: '1.1.1.1,1.1.1.2', overlay: null, vni: '7', port: null, dataDev: null, lease: '60' };
    const argv = roundArgv({ profile: 'default', modes: ['vxtap'], remote }, 1, '/o');
    expect(argv.slice(8)).toEqual(['--hosts', 'a,b', '--deploy', '--ssh-config', '/c', '--ssh-option', 'X=1', '--ssh-option', 'Y=2', '--underlay', '1.1.1.1,1.1.1.2', '--vni', '7', '--lease', '60']);
  });
  it('the VXTAP_BENCH_* mirrors of the ci command never reach a round', () => {
    const env = roundEnv({ PATH: '/bin', VXTAP_BENCH_ROUNDS: '12', VXTAP_BENCH_CLEANUP: '1', VXTAP_BENCH_STATE_DIR: '/s', VXTAP_BENCH_PREFIX: 'vxq', VXTAP_OTHER: 'x' });
    expect(env).toEqual({ PATH: '/bin', VXTAP_BENCH_STATE_DIR: '/s', VXTAP_BENCH_PREFIX: 'vxq', VXTAP_OTHER: 'x' });
  });
});

describe('mergeRounds', () => {
  it('single-round results merge into the multi-round run they came from', () => {
    const g = golden();
    const merged = mergeRounds([single(1), single(2), single(3)], { runId: 'm', argv: ['bench', 'ci'] });
    expect(validateResult(merged)).toEqual([]);
    expect(merged.options.rounds).toBe(3);
    expect(merged.profile.rounds).toBe(3);
    expect(merged.order).toEqual(g.order);
    expect(merged.status).toBe('complete');
    for (const m of g.options.modes) for (const k of ['tcp1Gbps', 'tcpNGbps', 'latIdleP50', 'udp64NdrKpps']) expect(perRoundValues(merged, m, k)).toEqual(perRoundValues(g, m, k));
    expect(merged.derived.byMode).toEqual(derive(g).byMode);
  });

  it('renumbers rounds in the order given, keeps the canonical mode order, records provenance', () => {
    const parts = [single(3, 1, 'a'), single(1, 1, 'b')];
    parts[0].modes.reverse();
    const ci = { side: 'base' as Side, ref: 'main', commit: 'c0ffee', dirty: false, rounds: ['a', 'b'] };
    const merged = mergeRounds(parts, { runId: 'm', argv: [], modes: ['vxtap', 'bare', 'kernel-vxlan', 'ovs-gre', 'ovs-vxlan'], ci });
    expect(merged.samples.filter((s) => s.mode === 'vxtap').map((s) => s.round)).toEqual([1, 2]);
    expect(perRoundValues(merged, 'vxtap', 'tcp1Gbps')).toEqual([perRoundValues(golden(), 'vxtap', 'tcp1Gbps')[2], perRoundValues(golden(), 'vxtap', 'tcp1Gbps')[0]]);
    expect(merged.modes.map((m) => m.id)).toEqual(['vxtap', 'bare', 'kernel-vxlan', 'ovs-gre', 'ovs-vxlan']);
    expect((merged.options as unknown as { ci: unknown }).ci).toEqual(ci);
    expect(validateResult(merged)).toEqual([]);
  });

  it('an incomplete or killed part makes the merge incomplete, naming the part; a mode that ran once is available', () => {
    const a = single(1);
    a.status = 'incomplete';
    a.incompleteReasons = ['round 1 vxtap: setup: boom'];
    const b = single(2);
    b.status = 'running';
    b.modes[0] = { ...b.modes[0], available: false, unavailableReason: 'gone' };
    const merged = mergeRounds([a, b], { runId: 'm', argv: [] });
    expect(merged.status).toBe('incomplete');
    expect(merged.incompleteReasons[0]).toMatch(/^part 1 \(run r1, rounds 1-1\): round 1 vxtap: setup: boom$/);
    expect(merged.incompleteReasons[1]).toMatch(/part 2 .*still marked running/);
    expect(merged.modes[0].available).toBe(true);
  });

  it('refuses parts that are not one run: none, another profile or MTU', () => {
    expect(() => mergeRounds([], { runId: 'm', argv: [] })).toThrow(RangeError);
    const q = single(2);
    q.options.profile = 'quick';
    expect(() => mergeRounds([single(1), q], { runId: 'm', argv: [] })).toThrow(/profile quick, not default/);
    const m = single(2);
    m.options.mtu = 9000;
    expect(() => mergeRounds([single(1), m], { runId: 'm', argv: [] })).toThrow(/MTU 9000/);
  });
});

describe('runAbab: the stopping rule over simulated ABAB rounds', () => {
  /** A fake round runner: head's vxtap TCP x `shift`, every round x (1 + noise x a deterministic wobble). */
  function sim(shift: number, noise: number, cycleGoldenRounds = true) {
    const calls: string[] = [];
    const runRound = (side: Side, round: number): Promise<BenchResult> => {
      calls.push(`${side}${round}`);
      const wobble = 1 + noise * Math.sin(round * 2.3 + (side === 'head' ? 1.1 : 0));
      const r = single(cycleGoldenRounds ? ((round - 1) % 3) + 1 : 1, (side === 'head' ? shift : 1) * wobble, `${side}-${round}`);
      for (const s of r.samples) if (s.mode !== 'vxtap') for (const t of [s.tcp1, s.tcpN]) if (t) t.receivedBps *= wobble;
      return Promise.resolve(r);
    };
    const merge = (side: Side, parts: BenchResult[]) => mergeRounds(parts, { runId: side, argv: [] });
    const compare = (base: BenchResult, head: BenchResult, level: number) =>
      compareAtLevel({ label: 'base', result: base }, { label: 'head', result: head }, { metrics: ['tcp1Gbps'], thresholds: null, level });
    return { calls, params: { runRound, merge, compare, log: () => undefined } };
  }

  it('a 30% slower head: worse at the first look (6 ABAB rounds), exit 1', async () => {
    const s = sim(0.7, 0.005);
    const o = await runAbab({ plan: ciPlan(12), ...s.params });
    expect(o.stoppedBy).toBe('worse');
    expect(o.looks.map((l) => l.rounds)).toEqual([6]);
    expect(s.calls).toEqual(abSchedule(1, 6).map((x) => `${x.side}${x.round}`));
    expect(o.comparison.rows.find((r) => r.mode === 'vxtap')?.verdict).toBe('worse');
    expect(o.base.options.rounds).toBe(6);
    expect(ciExitStatus(o.comparison, 0)).toBe(1);
    expect(ciExitStatus(o.comparison, 50)).toBe(0);
    expect(o.looks[0].level).toBeCloseTo(0.05 / 3);
  });

  it('noise the test cannot see through: rounds added look by look up to the cap, unknown reported, exit 0', async () => {
    const s = sim(1, 0.3);
    const o = await runAbab({ plan: ciPlan(12), ...s.params });
    expect(o.looks.map((l) => l.rounds)).toEqual([6, 9, 12]);
    expect(o.looks.slice(0, 2).every((l) => l.decision.action === 'add' && l.counts.unknown > 0)).toBe(true);
    expect(o.stoppedBy).toBe('cap');
    expect(s.calls).toEqual(abSchedule(1, 12).map((x) => `${x.side}${x.round}`));
    expect(o.head.options.rounds).toBe(12);
    expect(ciExitStatus(o.comparison, 0)).toBe(0);
  });

  it('identical builds on a quiet machine (1% wobble): decided at the first look', async () => {
    const s = sim(1, 0.01, false);
    const o = await runAbab({ plan: ciPlan(12), ...s.params });
    expect(o.stoppedBy).toBe('decided');
    expect(o.comparison.counts.worse + o.comparison.counts.better + o.comparison.counts.unknown).toBe(0);
    expect(s.calls.length).toBe(12);
  });

  it('a cap of 1 (smoke run): one ABAB pair, one look, everything unknown, exit 0', async () => {
    const s = sim(0.5, 0);
    const o = await runAbab({ plan: ciPlan(1), ...s.params });
    expect(s.calls).toEqual(['base1', 'head1']);
    expect(o.stoppedBy).toBe('cap');
    expect(o.comparison.rows.find((r) => r.mode === 'vxtap')?.verdict).toBe('unknown');
    expect(ciExitStatus(o.comparison, 0)).toBe(0);
  });
});
