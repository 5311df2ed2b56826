/**
 * The bench's opt-in variants, pure parts: --endpoints, --contention and
 * --underlay-offloads validation, the contended-variant ids, ethtool parsing and
 * the change plan, the hog's CPU taken out of a sample, the claims rows and the
 * schema of the new result fields (a golden result dressed as a variant run);
 * the test-only slowdown knob (VXTAP_TEST_SLOWDOWN_PCT): its validation, the
 * vxtap:slowdown=P variant, bench ci --inject-slowdown and the slowed pass.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contendedId, contentionClaims, hogArgv, overheadGrowthPerRound, parseContendedId, parseContention, withoutHog, CONTENTION_METHOD } from '../../bench/contention.js';
import { ethtoolSetArgv, offloadClaims, parseEthtoolFeatures, planChange, recordedFeatures, validateUnderlayOffloads } from '../../bench/offloads.js';
import { createPods, podNames, POD_NET, validateEndpoints } from '../../bench/pods.js';
import type { ActiveMode } from '../../bench/modes.js';
import type { Topology } from '../../bench/topology.js';
import { derive, type BenchResult } from '../../bench/result.js';
import { validateOptions, type BenchOptions } from '../../bench/run.js';
import { renderSummaryMarkdown } from '../../bench/summary.js';
import { judgeClaims } from '../../bench/report/claims.js';
import { validateResult } from '../../bench/validate.js';
import { parseModeSpec, vxtapModeEnv, vxtapParamFlags } from '../../bench/modes.js';
import { parseCiOptions, roundEnv, sideEnv, type CiOptions } from '../../bench/ci/plan.js';
import { buildPipeline, Pipeline, type Path, type PipelineConfig } from '../../src/pipeline/index.js';
import { spinAfterBatch, testSlowdownFromEnv, testSlowdownStatus, TEST_SLOWDOWN_ENV } from '../../src/pipeline/slowdown.js';
import type { Engine } from '../../src/dataplane/engine.js';
import type { Accounting } from '../../src/dataplane/accounting.js';
import type { CpuTimes } from '../../src/host/procstat.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'bench');
const golden = (): BenchResult => JSON.parse(readFileSync(path.join(fixtures, 'golden-result.json'), 'utf8')) as BenchResult;
const base: BenchOptions = { profile: 'default', modes: ['bare'], mtu: 1500, netem: {}, outDir: '/tmp/x', pin: 'cross', progress: false, argv: [] };

// `ethtool -k` of a veth end on this machine (kernel 6.18), abridged.
const VETH_K = `Features for vxbpx:
rx-checksumming: on
tx-checksumming: on
tcp-segmentation-offload: on
	tx-tcp-segmentation: on
generic-segmentation-offload: on
generic-receive-offload: off
tx-gso-partial: off [fixed]
tx-udp_tnl-segmentation: on
tx-udp_tnl-csum-segmentation: on
tx-udp-segmentation: on
rx-udp_tunnel-port-offload: off [fixed]
rx-gro-hw: off [fixed]
rx-gro-list: off
rx-udp-gro-forwarding: off
`;

describe('bench variant options', () => {
  it('--contention takes 0 < PCT < 100 and names itself otherwise', () => {
    expect(parseContention('50')).toBe(50);
    expect(parseContention('12.5%')).toBe(12.5);
    for (const bad of ['150', '100', '0', 'abc', '', '-5', '50 percent']) {
      const e = parseContention(bad);
      expect(e, bad).toBeInstanceOf(Error);
      expect((e as Error).message).toMatch(/^--contention must be/);
    }
    expect(validateOptions({ ...base, contention: 150 })?.message).toMatch(/--contention/);
    expect(validateOptions({ ...base, contention: Number.NaN })?.message).toMatch(/--contention/);
    expect(validateOptions({ ...base, contention: 50 })).toBeNull();
    expect(validateOptions({ ...base, contention: null })).toBeNull();
  });

  it('--endpoints and --underlay-offloads accept only their values', () => {
    expect(validateOptions({ ...base, endpoints: 'pod', underlayOffloads: 'no-tunnel-tso' })).toBeNull();
    expect(validateOptions({ ...base, endpoints: 'foo' as never })?.message).toBe('--endpoints must be host or pod (got "foo")');
    expect(validateOptions({ ...base, underlayOffloads: 'x' as never })?.message).toBe('--underlay-offloads must be full or no-tunnel-tso (got "x")');
    expect(validateEndpoints('host')).toBeNull();
    expect(validateUnderlayOffloads('full')).toBeNull();
  });

  it('contended ids round-trip for every mode id', () => {
    fc.assert(
      fc.property(fc.constantFrom('bare', 'kernel-vxlan', 'ovs-gre', 'vxtap', 'vxtap:workers=2,mtu=1400', 'vxtap:uplink=on'), fc.integer({ min: 1, max: 99 }), (id, pct) => {
        expect(parseContendedId(contendedId(id, pct))).toEqual({ base: id, pct });
      }),
    );
    expect(parseContendedId('vxtap:workers=2')).toBeNull();
    expect(hogArgv(2, 50, 12.2)).toEqual(['stress-ng', '--cpu', '2', '--cpu-load', '50', '--cpu-method', 'int64', '--timeout', '13s', '--quiet']);
  });

  it('pod names fit 15 bytes for the longest tag, and pod subnets stay in 198.18.0.0/15 apart from underlay and overlay', () => {
    for (const l of ['A', 'B'] as const) {
      const n = podNames('zz9vz', l);
      expect(n.bridge.length).toBeLessThanOrEqual(15);
      expect(n.veth.length).toBeLessThanOrEqual(15);
    }
    for (const s of [POD_NET.a, POD_NET.b]) {
      expect(s.subnet).toMatch(/^198\.18\.22[01]\.0\/24$/);
      expect(s.pod.startsWith(s.subnet.split('.').slice(0, 3).join('.'))).toBe(true);
    }
  });
});

describe('underlay offloads', () => {
  it('parses ethtool -k, records the tunnel/UDP segmentation and GRO features', () => {
    const f = parseEthtoolFeatures(VETH_K);
    expect(f['tx-udp_tnl-segmentation']).toEqual({ on: true, fixed: false });
    expect(f['rx-gro-hw']).toEqual({ on: false, fixed: true });
    const rec = recordedFeatures(f);
    expect(rec['tx-udp-segmentation']).toBe('on');
    expect(rec['tx-gso-partial']).toBe('off [fixed]');
    expect(rec['generic-receive-offload']).toBe('off');
    expect(Object.keys(rec)).not.toContain('rx-checksumming');
  });

  it('no-tunnel-tso changes only tunnel TSO features that are on and not fixed; full changes nothing', () => {
    const f = parseEthtoolFeatures(VETH_K);
    expect(planChange('no-tunnel-tso', f)).toEqual({ change: ['tx-udp_tnl-segmentation', 'tx-udp_tnl-csum-segmentation'], unchangeable: [] });
    expect(planChange('full', f)).toEqual({ change: [], unchangeable: [] });
    const fixedOn = parseEthtoolFeatures('tx-udp_tnl-segmentation: on [fixed]\ntx-udp_tnl-csum-segmentation: off\n');
    expect(planChange('no-tunnel-tso', fixedOn)).toEqual({ change: [], unchangeable: ['tx-udp_tnl-segmentation'] });
    expect(ethtoolSetArgv('eth1', ['tx-udp_tnl-segmentation'], true)).toEqual(['ethtool', '-K', 'eth1', 'tx-udp_tnl-segmentation', 'on']);
  });
});

describe('contention accounting', () => {
  const cpu = (user: number, system: number, idle: number): CpuTimes => ({ user, nice: 0, system, idle, iowait: 0, irq: 0, softirq: 7, steal: 3, guest: 0, guestNice: 0 });
  it("the hog's ticks move from user (then system) to idle; the total and steal stay", () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.nat(10_000), fc.nat(10_000), fc.nat(30_000), (u, s, i, hog) => {
        const t = withoutHog(cpu(u, s, i), hog);
        const sum = (x: CpuTimes) => (Object.values(x) as number[]).reduce((a, b) => a + b, 0);
        expect(sum(t)).toBe(sum(cpu(u, s, i)));
        expect(t.user).toBeGreaterThanOrEqual(0);
        expect(t.system).toBeGreaterThanOrEqual(0);
        expect(t.steal).toBe(3);
        expect(t.user + t.system).toBe(Math.max(0, u + s - hog));
      }),
    );
  });
});

/** The golden result re-labelled as a --contention 50 --underlay-offloads no-tunnel-tso run (contended rounds = plain rounds scaled). */
function variantResult(scaleTap: number): BenchResult {
  const r = golden();
  r.options.endpoints = 'pod';
  r.options.contention = { pct: 50, method: CONTENTION_METHOD };
  r.options.underlayOffloads = 'no-tunnel-tso';
  const plain = r.modes.filter((m) => m.available);
  for (const m of plain) r.modes.push({ ...m, id: contendedId(m.id, 50), variant: { contention: { pct: 50, method: CONTENTION_METHOD }, of: m.id } });
  for (const s of r.samples.filter((x) => plain.some((m) => m.id === x.mode))) {
    const c = JSON.parse(JSON.stringify(s)) as typeof s;
    c.mode = contendedId(s.mode, 50);
    const k = s.mode === 'bare' ? 0.8 : s.mode.startsWith('vxtap') ? 0.8 * scaleTap : 0.8;
    if (c.tcp1) c.tcp1.receivedBps *= k;
    c.contention = { pct: 50, method: CONTENTION_METHOD, workers: 2, hogCpuSeconds: 5, wallSeconds: 10, achievedShare: 0.25 };
    c.pods = {
      attach: 'bridge',
      mtu: 1450,
      hosts: [{ label: 'A', namespace: 'vxbp1ap', bridge: 'vxbp1ca', gateway: '198.18.220.1/24', address: '198.18.220.2', routeToPeer: '198.18.221.0/24 via 198.19.0.2 dev vxbvx0' }],
    };
    r.samples.push(c);
  }
  r.environment!.underlayOffloads = {
    variant: 'no-tunnel-tso',
    hosts: [{ label: 'A', dev: 'vxb1u', features: { 'tx-udp_tnl-segmentation': 'off', 'tx-udp-segmentation': 'on' }, changed: ['tx-udp_tnl-segmentation'], unchangeable: [] }],
  };
  r.derived = derive(r);
  return r;
}

describe('variant results', () => {
  it('validate against the schema; bad values are named', () => {
    const r = variantResult(1);
    expect(validateResult(r)).toEqual([]);
    expect(validateResult({ ...r, options: { ...r.options, endpoints: 'foo' as never } }).join()).toMatch(/options\.endpoints/);
    expect(validateResult({ ...r, options: { ...r.options, contention: { pct: 150, method: 'x' } } }).join()).toMatch(/options\.contention/);
    expect(validateResult({ ...r, options: { ...r.options, underlayOffloads: 'x' as never } }).join()).toMatch(/options\.underlayOffloads/);
  });

  it('a contended variant is compared with the contended bare of the same round', () => {
    const r = variantResult(1);
    const tap = r.modes.find((m) => m.kind === 'vxtap' && !m.variant)!.id;
    const plain = r.derived.byMode[tap].tcp1Gbps.ratioToBare!.median!;
    const busy = r.derived.byMode[contendedId(tap, 50)].tcp1Gbps.ratioToBare!.median!;
    expect(busy).toBeCloseTo(plain, 9); // both scaled by 0.8: the ratio to the contended bare is unchanged
    expect(overheadGrowthPerRound(r.derived.byMode, tap, 'bare', 50).every((g) => g === null || Math.abs(g) < 1e-9)).toBe(true);
  });

  it('one contention claim row per overlay mode: held when the overhead grows by 5 points or more', () => {
    const same = variantResult(1);
    const rows = contentionClaims(same, same.derived.byMode);
    expect(rows.map((c) => c.id)).toEqual(same.modes.filter((m) => m.available && !m.variant && m.kind !== 'bare').map((m) => `contention-overhead-grows:${m.id}`));
    expect(rows.every((c) => c.verdict === 'not held')).toBe(true);
    const worse = variantResult(0.5); // vxtap halves under contention, bare only loses 20%
    const tapRow = contentionClaims(worse, worse.derived.byMode).find((c) => c.id.startsWith('contention-overhead-grows:vxtap'))!;
    expect(tapRow.verdict).toBe('held');
    const judged = judgeClaims(worse).find((c) => c.id === tapRow.id)!;
    expect(judged.judged).toBe('held');
    expect(judged.evidence?.bound).toEqual([0.05, null]);
    // Without --contention there are no such rows.
    const g = golden();
    expect(contentionClaims(g, g.derived.byMode)).toEqual([]);
  });

  it('the no-tunnel-tso claim row appears only for that underlay and compares vxtap with kernel VXLAN', () => {
    const r = variantResult(1);
    const [row] = offloadClaims(r, r.derived.byMode);
    expect(row.id).toBe('no-tunnel-tso-vxtap-ahead');
    expect(row.claim).toBe('vxtap is ahead of kernel VXLAN where the underlay has no tunnel TSO');
    expect(['held', 'not held']).toContain(row.verdict);
    expect(r.derived.claims.map((c) => c.id)).toContain('no-tunnel-tso-vxtap-ahead');
    const g = golden();
    expect(offloadClaims(g, g.derived.byMode)).toEqual([]);
  });

  it('summary.md says where the endpoints ran, the contention and the underlay offloads; older results render as before', () => {
    const md = renderSummaryMarkdown(variantResult(1));
    expect(md).toMatch(/Endpoints: pod to pod/);
    expect(md).toMatch(/50% CPU contention/);
    expect(md).toMatch(/underlay offloads no-tunnel-tso \(A vxb1u: tnl-tso off, uso on/);
    expect(renderSummaryMarkdown(golden())).not.toMatch(/Endpoints:/);
  });
});

describe('pods on --hosts hosts (fake agents)', () => {
  /** A stand-in for RemoteHost that records every call in order and answers `cat .../forwarding` with 0. */
  function fakeAgent(label: 'A' | 'B', calls: string[]) {
    const rec = (s: string) => calls.push(`${label} ${s}`);
    return {
      label,
      where: `host-${label}`,
      exec: (argv: string[]) => {
        rec(`exec ${argv.join(' ')}`);
        return Promise.resolve({ code: 0, stdout: argv[0] === 'cat' ? '0\n' : '', stderr: '' });
      },
      spawn: () => {
        throw new Error('not used');
      },
      readCounters: () => Promise.reject(new Error('not used')),
      stopAll: () => Promise.resolve(),
      track: (w: { links?: string[]; restore?: string[][] }) => {
        rec(`track ${JSON.stringify(w)}`);
        return Promise.resolve();
      },
      untrack: (w: { links?: string[]; restore?: string[][] }) => {
        rec(`untrack ${JSON.stringify(w)}`);
        return Promise.resolve();
      },
    };
  }

  it('registers every restore with the agent before the change it undoes, and undoes everything at teardown (bare: the underlay device)', async () => {
    const calls: string[] = [];
    const a = fakeAgent('A', calls);
    const b = fakeAgent('B', calls);
    const topo = {
      a,
      b,
      devA: 'eth1',
      devB: 'eth1',
      mtu: 1500,
      netem: null,
      macA: '',
      macB: '',
      addr: { underlayA: '192.0.2.1', underlayB: '192.0.2.2', underlayPrefix: 24, overlayA: '198.19.0.1', overlayB: '198.19.0.2', overlayPrefix: 16 },
      vni: 42,
      port: 4789,
      names: { vxlan: 'vxb1x', tap: 'vxb1t', ovsPhy: 'vxb1p', ovsInt: 'vxb1i' },
      remote: { a, b, sameMachine: false },
    } as unknown as Topology;
    const mode = { addrA: '192.0.2.1', addrB: '192.0.2.2', innerDevA: 'eth1', innerDevB: 'eth1', innerMtu: 1500 } as unknown as ActiveMode;
    const pods = await createPods(topo, mode, 'k1b0', undefined);
    const at = (re: RegExp) => calls.findIndex((c) => re.test(c));
    expect(at(/^A track .*"ip","netns","del","vxb.*k1b0ap"/)).toBeGreaterThanOrEqual(0);
    expect(at(/^A track .*ip","netns","del/)).toBeLessThan(at(/^A exec ip netns add/));
    expect(at(/^A track .*"ip","route","del","198\.18\.221\.0\/24","via","192\.0\.2\.2","dev","eth1"/)).toBeLessThan(at(/^A exec ip route replace 198\.18\.221\.0\/24 via 192\.0\.2\.2 dev eth1/));
    // The underlay device's forwarding is put back to what it was (0), registered before it is set.
    expect(at(/^A track .*"sysctl","-qw","net\/ipv4\/conf\/eth1\/forwarding=0"/)).toBeLessThan(at(/^A exec sysctl -qw net\/ipv4\/conf\/eth1\/forwarding=1/));
    expect(calls.some((c) => c.startsWith('A exec ip netns exec vxb') && c.endsWith('ip route add default via 198.18.220.1'))).toBe(true);
    expect(pods.addrB).toBe('198.18.221.2');
    calls.length = 0;
    await pods.teardown();
    for (const l of ['A', 'B']) {
      expect(calls.some((c) => c.startsWith(`${l} exec ip netns del`))).toBe(true);
      expect(calls.some((c) => c.startsWith(`${l} exec sysctl -qw net/ipv4/conf/eth1/forwarding=0`))).toBe(true);
      expect(calls.some((c) => c.startsWith(`${l} untrack`) && c.includes('"links":["vxb'))).toBe(true);
    }
  });
});

describe('test-only slowdown knob', () => {
  const env = (v: string | undefined) => (v === undefined ? {} : { [TEST_SLOWDOWN_ENV]: v });

  it('VXTAP_TEST_SLOWDOWN_PCT: off when unset or empty, an integer 0..90, else an error naming it', () => {
    expect(testSlowdownFromEnv(env(undefined))).toBe(0);
    expect(testSlowdownFromEnv(env(''))).toBe(0);
    expect(testSlowdownFromEnv(env('0'))).toBe(0);
    expect(testSlowdownFromEnv(env(' 10 '))).toBe(10);
    expect(testSlowdownFromEnv(env('90'))).toBe(90);
    fc.assert(fc.property(fc.integer({ min: 0, max: 90 }), (p) => testSlowdownFromEnv(env(String(p))) === p));
    for (const bad of ['91', '100', '-1', '10.5', '1e1', 'abc', '0x10', '10%']) {
      const e = testSlowdownFromEnv(env(bad));
      expect(e, bad).toBeInstanceOf(Error);
      expect((e as Error).message).toMatch(/^VXTAP_TEST_SLOWDOWN_PCT must be an integer percent 0\.\.90/);
    }
    fc.assert(fc.property(fc.integer({ min: 91, max: 1_000_000 }), (p) => testSlowdownFromEnv(env(String(p))) instanceof Error));
  });

  it('status shows testSlowdownPct only when on', () => {
    expect(testSlowdownStatus(env('10'))).toEqual({ testSlowdownPct: 10 });
    expect(testSlowdownStatus(env(undefined))).toEqual({});
    expect(testSlowdownStatus(env('0'))).toEqual({});
    expect(testSlowdownStatus(env('bad'))).toEqual({});
  });

  it('vxtap:slowdown=P is a variant carried in the environment of vxtap up, not a flag', () => {
    const spec = parseModeSpec('vxtap:workers=2,slowdown=10');
    expect(spec).toEqual({ id: 'vxtap:workers=2,slowdown=10', kind: 'vxtap', params: { workers: '2', slowdown: '10' } });
    expect(vxtapModeEnv(spec, {})).toEqual({ VXTAP_TEST_SLOWDOWN_PCT: '10' });
    expect(vxtapModeEnv(spec, env('30'))).toEqual({ VXTAP_TEST_SLOWDOWN_PCT: '10' }); // the variant wins
    expect(vxtapModeEnv(parseModeSpec('vxtap'), {})).toEqual({});
    // bench ci --inject-slowdown: inherited by the bench, passed on explicitly (for --hosts agents)
    expect(vxtapModeEnv(parseModeSpec('vxtap'), env('10'))).toEqual({ VXTAP_TEST_SLOWDOWN_PCT: '10' });
    for (const bad of ['vxtap:slowdown=91', 'vxtap:slowdown=abc', 'vxtap:slowdown=-5', 'vxtap:slowdown=2.5'])
      expect(() => parseModeSpec(bad), bad).toThrow(/slowdown must be an integer percent 0\.\.90/);
    expect(() => parseModeSpec('kernel-vxlan:slowdown=10')).toThrow(/takes no parameters/);
  });

  it('a vxtap mode’s parameters are checked as vxtap up reads them when --modes is parsed, naming the field', () => {
    const cases: [string, RegExp][] = [
      ['vxtap:workers=0', /^--modes vxtap:workers=0: workers: 0 must be an integer between 1 and 64$/],
      ['vxtap:batch=99999', /batchSize: 99999 must be an integer between 1 and 1024/],
      ['vxtap:cpu-placement=far', /cpuPlacement: 'far' must be any or local/],
      ['vxtap:bogus=1', /^--modes vxtap:bogus=1: unknown option '--bogus'$/],
      ['vxtap:workers=two', /workers: 'two' is not an integer/],
      ['vxtap:uplink=maybe', /uplink must be on or off/],
      ['vxtap:mtu=100', /mtu must be an integer 576\.\.65535/],
      ['vxtap:mtu=1400.5', /mtu must be an integer 576\.\.65535/],
      ['vxtap:offload=off,uplink=on', /uplinkBridge: needs offload/],
    ];
    for (const [mode, why] of cases) expect(() => parseModeSpec(mode), mode).toThrow(why);
    // the check passes the run's own flags, so environment mirrors they override change nothing
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { VXTAP_PORT: '49160', VXTAP_NAME: 'x'.repeat(20), VXTAP_MTU: '70000', VXTAP_VNI: '-1' });
      expect(parseModeSpec('vxtap:workers=1').id).toBe('vxtap:workers=1');
    } finally {
      for (const k of ['VXTAP_PORT', 'VXTAP_NAME', 'VXTAP_MTU', 'VXTAP_VNI']) if (saved[k] === undefined) Reflect.deleteProperty(process.env, k);
    }
    for (const ok of ['vxtap', 'vxtap:workers=1,batch=8,busy-poll=50,cpu-placement=local', 'vxtap:offload=off', 'vxtap:uplink=on,mtu=1400', 'vxtap:learning=off'])
      expect(parseModeSpec(ok).id).toBe(ok);
    // on: the flag for an option that is off by default, nothing for one that is on by default
    expect(vxtapParamFlags(parseModeSpec('vxtap:accept-unknown-peers=on'))).toEqual(['--accept-unknown-peers']);
    expect(vxtapParamFlags(parseModeSpec('vxtap:offload=on,learning=on,workers=1'))).toEqual(['--workers', '1']);
    expect(vxtapParamFlags(parseModeSpec('vxtap:offload=off'))).toEqual(['--no-offload']);
    expect(() => parseModeSpec('vxtap:bogus=on')).toThrow(/unknown option '--bogus'/);
  });

  it('bench ci --inject-slowdown: the head side only, validated, stripped from inherited environments', () => {
    const o = parseCiOptions({ base: 'HEAD', injectSlowdown: '10' }) as CiOptions;
    expect(o.injectSlowdownPct).toBe(10);
    expect(sideEnv(o, 'head')).toEqual({ VXTAP_TEST_SLOWDOWN_PCT: '10' });
    expect(sideEnv(o, 'base')).toEqual({});
    const off = parseCiOptions({ base: 'HEAD' }) as CiOptions;
    expect(off.injectSlowdownPct).toBeNull();
    expect(sideEnv(off, 'head')).toEqual({});
    for (const bad of ['0', '91', 'x', '5.5', '-1'])
      expect((parseCiOptions({ base: 'HEAD', injectSlowdown: bad }) as Error).message, bad).toMatch(/^--inject-slowdown \(test-only\) must be an integer percent 1\.\.90/);
    expect(roundEnv({ PATH: '/bin', VXTAP_TEST_SLOWDOWN_PCT: '10' })).toEqual({ PATH: '/bin' });
  });

  it('a slowed pass spins after each non-empty batch at least P% of its time; the pipeline refuses P out of range', () => {
    const spinFor = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    let took = 0;
    const path: Path = {
      batchLimits: { tap: 8, uplink: 0, socket: 8 },
      transmit: () => {
        const t = performance.now();
        spinFor(4);
        took = performance.now() - t;
        return 3;
      },
      receiveUplink: () => 0,
      receive: () => 0,
    };
    const slowed = new Pipeline(null as unknown as Engine, null as unknown as Accounting, path, 50);
    const t0 = performance.now();
    expect(slowed.pass()).toBe(3);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(took * 1.5); // a lower bound: the spin cannot end early
    const now = performance.now();
    expect(spinAfterBatch(now - 2, now, 50)).toBeGreaterThanOrEqual(now + 1); // a 2 ms batch at 50%: 1 ms more
    expect(() => buildPipeline({ batchSize: 1, testSlowdownPct: 91 } as PipelineConfig, {} as never, {} as never)).toThrow(/testSlowdownPct must be an integer 0\.\.90/);
  });
});
