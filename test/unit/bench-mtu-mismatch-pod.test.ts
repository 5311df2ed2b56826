/**
 * The MTU-mismatch measurement with pod endpoints (`--endpoints pod`): the
 * orchestration over fake hosts (who gets the PMTUD sysctl, where the server,
 * client and capture run, whose counters become which evidence, what is
 * restored), the classification with the host namespaces' counters, the
 * wording of the forcing, the pods' MTU knob, and the schema of the new fields.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BenchProcess, HostCounters } from '../../bench/host.js';
import type { ActiveMode } from '../../bench/modes.js';
import {
  classifyTransfer,
  forcedHow,
  forcedLabel,
  measureMtuMismatch,
  mtuMismatchClaims,
  renderMtuMismatchMarkdown,
  MTU_MISMATCH_PLANS,
  type HostHopEvidence,
  type MismatchTransfer,
  type MtuMismatchResult,
} from '../../bench/mtu-mismatch.js';
import { createPods, podsBehind, podView, POD_IFNAME, type Pods } from '../../bench/pods.js';
import { derive, type BenchResult } from '../../bench/result.js';
import type { Topology, TopologyHost } from '../../bench/topology.js';
import type { TransferOutput } from '../../bench/transfer.js';
import { validateResult } from '../../bench/validate.js';
import { noEvidence, transferOutput } from '../helpers/mtu-mismatch-fixtures.js';
import type { CpuTimes } from '../../src/host/procstat.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'bench');
const golden = (): BenchResult => JSON.parse(readFileSync(path.join(fixtures, 'golden-result.json'), 'utf8')) as BenchResult;

const noHop: HostHopEvidence = { fragCreatesA: 0, fragCreatesB: 0, fragFailsA: 0, reassembled: 0, icmpUnreachSentA: 0 };
const done = transferOutput;

describe('classification with the host namespaces behind pods', () => {
  it('fragments made or reassembled by the hosts count as inner fragmentation; DF refusals alone do not', () => {
    expect(classifyTransfer(done(), { ...noEvidence, hosts: { ...noHop, fragCreatesA: 6 } })).toEqual({ outcome: 'fragments', fragmentedAt: 'inner' });
    expect(classifyTransfer(done(), { ...noEvidence, hosts: { ...noHop, reassembled: 2 } })).toEqual({ outcome: 'fragments', fragmentedAt: 'inner' });
    // PMTUD working: host A refuses the DF packet and tells the pod; the retransmission fits.
    expect(classifyTransfer(done(), { ...noEvidence, icmpUnreachReceivedA: 1, hosts: { ...noHop, fragFailsA: 1, icmpUnreachSentA: 1 } })).toEqual({ outcome: 'completes', fragmentedAt: null });
    // A capture on the underlay still wins over the inner counters.
    expect(classifyTransfer(done(), { ...noEvidence, underlayFragments: 4, hosts: { ...noHop, fragCreatesA: 4 } }).fragmentedAt).toBe('underlay');
  });

  it('all-zero host counters classify exactly as no host counters', () => {
    const counter = fc.nat(50);
    const ev = fc.record({
      fragCreatesA: counter,
      fragCreatesB: counter,
      fragFailsA: counter,
      reassembled: counter,
      underlayFragments: fc.option(counter, { nil: null }),
      icmpUnreachReceivedA: counter,
      icmpUnreachSentB: counter,
      retransSegsA: counter,
    });
    const out = fc.constantFrom<TransferOutput | null>(null, done(), done({ end: 'stalled' }), done({ end: 'timeout' }), done({ connected: false, end: 'error' }));
    fc.assert(
      fc.property(ev, out, (e, o) => {
        expect(classifyTransfer(o, { ...e, hosts: noHop })).toEqual(classifyTransfer(o, e));
      }),
    );
  });

  it('host counters never turn an unfinished transfer into a completed one', () => {
    const hop = fc.record({ fragCreatesA: fc.nat(9), fragCreatesB: fc.nat(9), fragFailsA: fc.nat(9), reassembled: fc.nat(9), icmpUnreachSentA: fc.nat(9) });
    const end = fc.constantFrom<TransferOutput['end']>('stalled', 'timeout', 'error');
    fc.assert(
      fc.property(hop, end, (h, e) => {
        expect(['stalls', 'slow']).toContain(classifyTransfer(done({ end: e }), { ...noEvidence, hosts: h }).outcome);
      }),
    );
  });
});

describe('wording of the forcing', () => {
  it('names each way the MTU was forced, pods included', () => {
    const base = { configuredInnerMtu: 1450, forcedMtu: 1500, deviceRefused: null } as const;
    expect(forcedHow({ ...base, forcedBy: 'pod', endpoints: 'pod' })).toMatch(/^pods' eth0, veth host ends and bridges raised from 1450 to 1500, the hosts' overlay devices left at 1450/);
    expect(forcedHow({ ...base, forcedBy: 'route', deviceRefused: 'RTNETLINK answers: Invalid argument' })).toMatch(/route MTU \(device MTU refused: RTNETLINK/);
    expect(forcedHow({ ...base, forcedBy: 'device' })).toMatch(/by the device MTU$/);
    expect(forcedHow({ ...base, configuredInnerMtu: 1500, forcedBy: 'none', endpoints: 'pod' })).toMatch(/nothing to force \(no overlay\), routed pods$/);
    expect(['device', 'route', 'pod', 'none'].map((f) => forcedLabel(f as MtuMismatchResult['forcedBy']))).toEqual(['device', 'route', 'pods', 'no overlay']);
  });
});

/** A fake namespace: records commands, keeps sysctls and counters, runs the transfer client as a simulated stack would. */
class FakeNs implements TopologyHost {
  readonly sysctl = new Map<string, string>([['net.ipv4.ip_no_pmtu_disc', '0']]);
  readonly nstat: Record<string, number> = {};
  readonly spawned: string[][] = [];
  onClient: (() => void) | null = null;

  constructor(
    readonly label: string,
    readonly where: string,
    private readonly calls: string[],
  ) {}

  bump(k: string, n: number): void {
    this.nstat[k] = (this.nstat[k] ?? 0) + n;
  }

  exec(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    this.calls.push(`${this.where}: ${argv.join(' ')}`);
    let stdout = '';
    if (argv[0] === 'sysctl' && argv[1] === '-n') stdout = `${this.sysctl.get(argv[2]) ?? ''}\n`;
    if (argv[0] === 'sysctl' && argv[1] === '-qw') this.setSysctl(argv[2]);
    if (argv[0] === 'sh') for (const m of argv[2].matchAll(/sysctl -qw (\S+)/g)) this.setSysctl(m[1]);
    if (argv.includes('client')) {
      this.onClient?.();
      stdout = `${JSON.stringify(done())}\n`;
    }
    return Promise.resolve({ code: 0, stdout, stderr: '' });
  }

  private setSysctl(kv: string): void {
    const [k, v] = kv.split('=');
    this.sysctl.set(k, v);
  }

  spawn(argv: string[]): BenchProcess {
    this.spawned.push(argv);
    this.calls.push(`${this.where}: spawn ${argv.join(' ')}`);
    return { pid: 1, argv, stdout: () => 'ready\n', stderr: () => 'listening on x\n', exited: new Promise(() => undefined), done: () => false, stop: () => Promise.resolve() };
  }

  readCounters(): Promise<HostCounters> {
    return Promise.resolve({ atMs: Date.now(), nstat: { ...this.nstat }, cpu: {} as CpuTimes });
  }

  stopAll(): Promise<void> {
    return Promise.resolve();
  }
}

function fakeTopo(a: TopologyHost, b: TopologyHost): Topology {
  return {
    a,
    b,
    devA: 'vxtu',
    devB: 'vxtu',
    mtu: 1500,
    netem: null,
    macA: '',
    macB: '',
    addr: { underlayA: '198.18.0.1', underlayB: '198.18.0.2', underlayPrefix: 24, overlayA: '198.19.0.1', overlayB: '198.19.0.2', overlayPrefix: 16 },
    vni: 42,
    port: 4789,
    names: { vxlan: 'vxtx', tap: 'vxtt', ovsPhy: 'vxtp', ovsInt: 'vxti' },
    remote: null,
  };
}

describe('measureMtuMismatch with pod endpoints (fake namespaces)', () => {
  it('forces the pods, not the overlay; PMTUD set in pods and hosts; counters of both; everything restored', async () => {
    const calls: string[] = [];
    const [hostA, hostB, podA, podB] = ['hA', 'hB', 'pA', 'pB'].map((w, i) => new FakeNs(i % 2 ? 'B' : 'A', w, calls));
    hostB.sysctl.set('net.ipv4.ip_no_pmtu_disc', '2');
    // The simulated stacks: pod A's oversize packets meet host A's routed hop.
    podA.onClient = () => {
      if (podA.sysctl.get('net.ipv4.ip_no_pmtu_disc') === '1') {
        hostA.bump('IpFragCreates', 8);
        podB.bump('IpReasmOKs', 4);
      } else {
        hostA.bump('IpFragFails', 1);
        hostA.bump('IcmpOutDestUnreachs', 1);
        podA.bump('IcmpInDestUnreachs', 1);
      }
    };
    const mtus: number[] = [];
    const innerMtus: number[] = [];
    const hosts = fakeTopo(hostA, hostB);
    const mode = {
      addrA: '198.18.220.2',
      addrB: '198.18.221.2',
      innerDevA: 'vxtx',
      innerDevB: 'vxtx',
      innerMtu: 1450,
      overheadBytes: 50,
      setInnerMtu: (m: number) => {
        innerMtus.push(m);
        return Promise.resolve();
      },
    } as unknown as ActiveMode;
    const setMtu = (m: number) => {
      mtus.push(m);
      return Promise.resolve();
    };
    const r = await measureMtuMismatch({ ...hosts, a: podA, b: podB }, mode, MTU_MISMATCH_PLANS.quick, '/repo', null, { hosts, mtu: 1450, setMtu });
    expect(r.skipped).toBeNull();
    expect(r.endpoints).toBe('pod');
    expect(r.forcedBy).toBe('pod');
    expect(mtus).toEqual([1500, 1450]);
    expect(innerMtus).toEqual([]);
    // Server in pod B on its address, client in pod A, capture on host A's underlay device.
    expect(podB.spawned[0]).toEqual(expect.arrayContaining(['server', '--bind', '198.18.221.2']));
    expect(hostA.spawned[0]).toEqual(expect.arrayContaining(['tcpdump', '-i', 'vxtu']));
    expect(podA.spawned).toEqual([]);
    expect(calls.filter((c) => c.includes(' client ')).every((c) => c.startsWith('pA: '))).toBe(true);
    expect(r.transfers.map((t) => `${t.pmtud}/${t.messages}:${t.outcome}`)).toEqual(['on/small:completes', 'on/large:completes', 'off/small:fragments', 'off/large:fragments']);
    expect(r.transfers[0].evidence).toMatchObject({ icmpUnreachReceivedA: 1, hosts: { fragFailsA: 1, icmpUnreachSentA: 1, fragCreatesA: 0 } });
    expect(r.transfers[2].evidence).toMatchObject({ reassembled: 4, hosts: { fragCreatesA: 8, fragFailsA: 0 } });
    expect(r.transfers[2].fragmentedAt).toBe('inner');
    // PMTUD off was set in all four namespaces; each is back to what it was.
    for (const ns of ['pA', 'pB', 'hA', 'hB']) expect(calls).toContain(`${ns}: sh -c sysctl -qw net.ipv4.ip_no_pmtu_disc=1 && ip route flush cache`);
    expect([podA, podB, hostA, hostB].map((h) => h.sysctl.get('net.ipv4.ip_no_pmtu_disc'))).toEqual(['0', '0', '0', '2']);
    // No /32 route MTU games on the hosts or pods.
    expect(calls.some((c) => /ip route replace \S+\/32/.test(c))).toBe(false);
  });

  it('bare pods: nothing to force (the baseline), the transfers still run pod to pod', async () => {
    const calls: string[] = [];
    const [hostA, hostB, podA, podB] = ['hA', 'hB', 'pA', 'pB'].map((w, i) => new FakeNs(i % 2 ? 'B' : 'A', w, calls));
    const hosts = fakeTopo(hostA, hostB);
    const mode = { addrA: '198.18.220.2', addrB: '198.18.221.2', innerDevA: 'vxtu', innerDevB: 'vxtu', innerMtu: 1500, overheadBytes: 0 } as unknown as ActiveMode;
    const mtus: number[] = [];
    const r = await measureMtuMismatch({ ...hosts, a: podA, b: podB }, mode, MTU_MISMATCH_PLANS.quick, '/repo', null, {
      hosts,
      mtu: 1500,
      setMtu: (m) => {
        mtus.push(m);
        return Promise.resolve();
      },
    });
    expect(r.forcedBy).toBe('none');
    expect(mtus).toEqual([]);
    expect(r.transfers.map((t) => t.outcome)).toEqual(['completes', 'completes', 'completes', 'completes']);
    expect(r.transfers.every((t) => t.evidence.hosts !== undefined)).toBe(true);
  });

  it('refuses hosts that are agents (--hosts): it would change their sysctls', async () => {
    const calls: string[] = [];
    const [hostA, hostB, podA, podB] = ['hA', 'hB', 'pA', 'pB'].map((w, i) => new FakeNs(i % 2 ? 'B' : 'A', w, calls));
    const hosts = { ...fakeTopo(hostA, hostB), remote: {} as Topology['remote'] };
    const mode = { addrA: '1', addrB: '2', innerMtu: 1450, overheadBytes: 50 } as unknown as ActiveMode;
    const r = await measureMtuMismatch({ ...hosts, a: podA, b: podB }, mode, MTU_MISMATCH_PLANS.quick, '/repo', null, { hosts, mtu: 1450, setMtu: () => Promise.resolve() });
    expect(r.skipped).toMatch(/not on --hosts/);
    expect(calls).toEqual([]);
  });
});

describe('pods: the MTU knob and the way back to the hosts', () => {
  it('setMtu changes the veth host end, then the bridge, then the pod eth0, on both hosts; podsBehind finds the pods from the view', async () => {
    const calls: string[] = [];
    const host = (label: string): TopologyHost => ({
      label,
      where: `h${label}`,
      exec: (argv: string[]) => {
        calls.push(`${label} ${argv.join(' ')}`);
        return Promise.resolve({ code: 0, stdout: '0\n', stderr: '' });
      },
      spawn: () => {
        throw new Error('not used');
      },
      readCounters: () => Promise.reject(new Error('not used')),
      stopAll: () => Promise.resolve(),
    });
    // Agents (as --hosts has them), so nothing runs on this machine.
    const a = { ...host('A'), track: () => Promise.resolve(), untrack: () => Promise.resolve() };
    const b = { ...host('B'), track: () => Promise.resolve(), untrack: () => Promise.resolve() };
    const topo = { ...fakeTopo(a, b), remote: { a, b, sameMachine: false } } as unknown as Topology;
    const mode = { addrA: '198.19.0.1', addrB: '198.19.0.2', innerDevA: 'vxtx', innerDevB: 'vxtx', innerMtu: 1450 } as unknown as ActiveMode;
    const pods: Pods = await createPods(topo, mode, 'k2m0', undefined);
    calls.length = 0;
    await pods.setMtu(1500);
    const sets = calls.filter((c) => c.includes(' mtu 1500'));
    expect(sets).toHaveLength(6);
    for (const l of ['A', 'B']) {
      const mine = sets.filter((c) => c.startsWith(`${l} `));
      expect(mine[0]).toMatch(/ip link set vx\S+h[ab] mtu 1500$/);
      expect(mine[1]).toMatch(/ip link set vx\S+c[ab] mtu 1500$/);
      expect(mine[2]).toMatch(new RegExp(`ip netns exec vx\\S+p ip link set ${POD_IFNAME} mtu 1500$`));
    }
    const view = podView(topo, mode, pods);
    expect(podsBehind(view.topo)?.hosts).toBe(topo);
    expect(podsBehind(view.topo)?.pods).toBe(pods);
    expect(podsBehind(topo)).toBeNull();
    await pods.teardown();
  });
});

/** A pod run's result with one large-message transfer (the fields a test varies laid over). */
function podMismatch(t: Pick<MismatchTransfer, 'pmtud' | 'outcome' | 'fragmentedAt' | 'evidence'>): MtuMismatchResult {
  return {
    underlayMtu: 1500,
    configuredInnerMtu: 1450,
    forcedMtu: 1500,
    forcedBy: 'pod',
    endpoints: 'pod',
    deviceRefused: null,
    plan: MTU_MISMATCH_PLANS.quick,
    captureAvailable: true,
    transfers: [{ messages: 'large', messageBytes: 65536, count: 32, window: 32, output: done(), seconds: 0.1, goodputBps: 1e8, error: null, ...t }],
    skipped: null,
  };
}

describe('schema', () => {
  it('a pod run validates (forcedBy pod, endpoints, evidence.hosts); old results without them still do; bad values are named', () => {
    const r = golden();
    const s = r.samples.find((x) => x.mode === 'kernel-vxlan') ?? r.samples[0];
    const mm = podMismatch({
      pmtud: 'on',
      outcome: 'completes',
      fragmentedAt: null,
      evidence: { ...noEvidence, icmpUnreachReceivedA: 1, hosts: { ...noHop, fragFailsA: 1, icmpUnreachSentA: 1 } },
    });
    s.mtuMismatch = mm;
    r.derived = derive(r);
    expect(validateResult(r)).toEqual([]);
    const old = structuredClone(mm);
    delete old.endpoints;
    old.forcedBy = 'device';
    delete old.transfers[0].evidence.hosts;
    s.mtuMismatch = old;
    expect(validateResult(r)).toEqual([]);
    s.mtuMismatch = { ...mm, endpoints: 'vm' as never };
    expect(validateResult(r).join()).toMatch(/endpoints/);
    s.mtuMismatch = { ...mm, transfers: [{ ...mm.transfers[0], evidence: { ...noEvidence, hosts: { fragCreatesA: 1 } as never } }] };
    expect(validateResult(r).join()).toMatch(/hosts/);
  });

  it('claims and summary say the pods were forced and show the hosts\u2019 counters', () => {
    const r = golden();
    const s = r.samples.find((x) => x.mode === 'kernel-vxlan') ?? r.samples[0];
    s.mtuMismatch = podMismatch({ pmtud: 'off', outcome: 'fragments', fragmentedAt: 'inner', evidence: { ...noEvidence, reassembled: 3, hosts: { ...noHop, fragCreatesA: 6 } } });
    const row = mtuMismatchClaims(r).find((c) => c.id === `mtu-mismatch-drops:${s.mode}`);
    expect(row?.verdict).toBe('not held');
    expect(row?.detail).toMatch(/^pods' eth0.*bounded TCP transfers pod A -> pod B/);
    const md = renderMtuMismatchMarkdown(r, (h, rows) => [h.join('|'), ...rows.map((x) => x.join('|'))].join('\n')).join('\n');
    expect(md).toContain(`${s.mode}|1450 -> 1500 (pod)|off|large 65536 B x 32|fragments (inner)`);
    expect(md).toContain('host frag A/B 6/0, host A DF drops 0');
    expect(md).toMatch(/With pods \(forced by pods\): the transfers run pod A -> pod B/);
  });
});
