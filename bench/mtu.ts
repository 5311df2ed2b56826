/**
 * MTU and fragmentation: pings of chosen inner IP packet sizes, with DF set and
 * not, classified by what the underlay did with them. Two configurations per
 * mode: the inner MTU as the mode configures it, and (for overlays) the inner
 * MTU raised to the underlay MTU, which shows what the tunnel itself carries:
 * the largest whole packet, outer fragmentation, or a silent drop.
 *
 * Evidence per probe: the echo reply, ping's local "message too long" error,
 * ICMP destination-unreachable received (IcmpInDestUnreachs), the kernel's
 * fragment counters in both hosts (IpFragCreates, IpReasmOKs/Fails), and a
 * tcpdump capture of fragmented IPv4 packets on the underlay veth of host A.
 */
import { counterDelta } from '../src/host/procstat.js';
import type { BenchHost, BenchProcess } from './host.js';
import type { ActiveMode } from './modes.js';
import type { Topology } from './topology.js';

/** What happened to one probe. */
export type ProbeOutcome = 'whole' | 'inner-fragmented' | 'underlay-fragmented' | 'refused-locally' | 'dropped';

/** One ping probe. */
export interface MtuProbe {
  /** Inner IPv4 packet size, bytes (ICMP payload + 28). */
  ipBytes: number;
  df: boolean;
  replied: boolean;
  /** ping's own "local error: message too long, mtu=N" (the route MTU refused it). */
  localError: string | null;
  /** ICMP destination unreachable messages received by host A during the probe. */
  icmpUnreachReceived: number;
  /** ping printed "Frag needed" (ICMP type 3 code 4). */
  fragNeededReported: boolean;
  /** IpFragCreates on host A during the probe (fragments created by A's stack, inner or outer). */
  fragCreatesA: number;
  /** IpFragCreates on host B (the echo reply path). */
  fragCreatesB: number;
  /** IpReasmOKs on B + A. */
  reassembled: number;
  /** Fragmented IPv4 packets seen on the underlay veth during the probe. */
  underlayFragments: number;
  outcome: ProbeOutcome;
}

/** A sweep under one inner MTU configuration. */
export interface MtuConfigSweep {
  /** 'configured' (the mode's own inner MTU) or 'raised' (inner MTU = underlay MTU). */
  config: 'configured' | 'raised';
  innerMtu: number;
  probes: MtuProbe[];
  /** Largest inner packet that came back whole with DF set (binary search), null if none did. */
  largestWholeDf: number | null;
}

/** The MTU result of one mode. */
export interface MtuResult {
  underlayMtu: number;
  captureAvailable: boolean;
  sweeps: MtuConfigSweep[];
  /** Why the raised configuration was not measured (e.g. the kernel refuses an inner MTU above underlay - 50). */
  raisedSkipped: string | null;
  /** Underlay bytes the mode needs to carry a 1500-byte inner packet whole: 1500 + (underlay - largest whole DF packet). */
  underlayNeededFor1500: number | null;
}

/** Classify a probe from its evidence (pure; see MtuProbe). */
export function classifyProbe(e: Omit<MtuProbe, 'outcome'>, isOverlay: boolean): ProbeOutcome {
  if (e.localError) return 'refused-locally';
  if (!e.replied) return 'dropped';
  if (e.underlayFragments > 0) return 'underlay-fragmented';
  if (e.fragCreatesA > 0 || e.fragCreatesB > 0 || e.reassembled > 0) {
    // Without an overlay the inner stack is the underlay stack: its fragments are on the wire.
    return isOverlay ? 'inner-fragmented' : 'underlay-fragmented';
  }
  return 'whole';
}

/** Parse tcpdump -tt lines into packet timestamps (ms since epoch). */
export function parseCaptureTimes(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+\.\d+)\s/.exec(line);
    if (m) out.push(Number(m[1]) * 1000);
  }
  return out;
}

async function ping(host: BenchHost, dst: string, ipBytes: number, df: boolean, timeoutS: number) {
  const r = await host.exec(['ping', '-n', '-c', '1', '-W', String(timeoutS), '-M', df ? 'do' : 'dont', '-s', String(ipBytes - 28), dst], { allowFail: true, timeoutMs: (timeoutS + 5) * 1000 });
  const text = `${r.stdout}\n${r.stderr}`;
  const local = /local error: ([^\n]*)/.exec(text);
  return { replied: /bytes from/.test(r.stdout) && / 1 received/.test(r.stdout), localError: local ? local[1].trim() : null, fragNeeded: /Frag needed/i.test(text) };
}

/** Runs probes and the capture for one mode. */
export class MtuProber {
  private capture: BenchProcess | null = null;
  captureAvailable = false;

  constructor(
    private readonly topo: Topology,
    private readonly mode: ActiveMode,
    private readonly timeoutS: number,
  ) {}

  /** Start the underlay capture (best effort: without tcpdump only counters are used). */
  async start(): Promise<void> {
    const p = this.topo.a.spawn(['tcpdump', '-i', this.topo.devA, '-n', '-tt', '-l', '-p', '--immediate-mode', 'ip and (ip[6:2] & 0x3fff != 0)']);
    const deadline = Date.now() + 3000;
    while (!/listening on/.test(p.stderr()) && !p.done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.captureAvailable = /listening on/.test(p.stderr());
    this.capture = this.captureAvailable ? p : null;
    if (!this.captureAvailable) await p.stop(500);
  }

  async stop(): Promise<void> {
    if (this.capture) await this.capture.stop(1000);
  }

  /** One probe with its evidence. */
  async probe(ipBytes: number, df: boolean): Promise<MtuProbe> {
    const { a, b } = this.topo;
    const [ca, cb] = await Promise.all([a.readCounters(), b.readCounters()]);
    const t0 = Date.now();
    const r = await ping(a, this.mode.addrB, ipBytes, df, this.timeoutS);
    // Late fragments of the reply still land in the window.
    await new Promise((res) => setTimeout(res, 30));
    const t1 = Date.now();
    const [ca2, cb2] = await Promise.all([a.readCounters(), b.readCounters()]);
    // a counter the kernel did not move is absent from the delta
    const da: Partial<Record<string, number>> = counterDelta(ca.nstat, ca2.nstat);
    const db: Partial<Record<string, number>> = counterDelta(cb.nstat, cb2.nstat);
    let underlayFragments = 0;
    if (this.capture) underlayFragments = parseCaptureTimes(this.capture.stdout()).filter((t) => t >= t0 - 5 && t <= t1 + 5).length;
    const evidence = {
      ipBytes,
      df,
      replied: r.replied,
      localError: r.localError,
      icmpUnreachReceived: da.IcmpInDestUnreachs ?? 0,
      fragNeededReported: r.fragNeeded,
      fragCreatesA: da.IpFragCreates ?? 0,
      fragCreatesB: db.IpFragCreates ?? 0,
      reassembled: (da.IpReasmOKs ?? 0) + (db.IpReasmOKs ?? 0),
      underlayFragments,
    };
    return { ...evidence, outcome: classifyProbe(evidence, this.mode.overheadBytes > 0) };
  }

  /** Largest inner packet that comes back whole with DF in [lo, hi] (bisection; null if even lo fails). */
  async largestWholeDf(lo: number, hi: number): Promise<number | null> {
    const ok = async (n: number) => (await this.probe(n, true)).outcome === 'whole';
    if (await ok(hi)) return hi;
    if (!(await ok(lo))) return null;
    let good = lo;
    let bad = hi;
    while (bad - good > 1) {
      const mid = (good + bad) >> 1;
      if (await ok(mid)) good = mid;
      else bad = mid;
    }
    return good;
  }
}

/** The MTU sweep of one mode (configured MTU, then raised for overlays). Restores the inner MTU. */
export async function measureMtu(topo: Topology, mode: ActiveMode, sizes: number[], timeoutS: number): Promise<MtuResult> {
  const prober = new MtuProber(topo, mode, timeoutS);
  await prober.start();
  const sweeps: MtuConfigSweep[] = [];
  let raisedSkipped: string | null = mode.overheadBytes > 0 ? null : 'no overlay';
  const configs: { config: 'configured' | 'raised'; mtu: number }[] = [{ config: 'configured', mtu: mode.innerMtu }];
  if (mode.overheadBytes > 0) configs.push({ config: 'raised', mtu: topo.mtu });
  try {
    for (const c of configs) {
      if (c.mtu !== mode.innerMtu) {
        try {
          await mode.setInnerMtu(c.mtu);
        } catch (err) {
          raisedSkipped = `inner MTU ${c.mtu} refused: ${String((err as Error).message.split(': ').pop())}`;
          continue;
        }
      }
      const probes: MtuProbe[] = [];
      for (const size of sizes) {
        for (const df of [true, false]) probes.push(await prober.probe(size, df));
      }
      const largestWholeDf = await prober.largestWholeDf(Math.max(576, c.mtu - 300), c.mtu);
      sweeps.push({ config: c.config, innerMtu: c.mtu, probes, largestWholeDf });
    }
  } finally {
    if (configs.length > 1) await mode.setInnerMtu(mode.innerMtu).catch(() => undefined);
    await prober.stop();
  }
  // What the tunnel carries whole: the raised sweep (the tunnel's own limit) where there is one.
  const limit = (sweeps.find((s) => s.config === 'raised') ?? sweeps[0]).largestWholeDf;
  return {
    underlayMtu: topo.mtu,
    captureAvailable: prober.captureAvailable,
    sweeps,
    raisedSkipped,
    underlayNeededFor1500: limit !== null && limit < topo.mtu ? 1500 + (topo.mtu - limit) : limit !== null ? 1500 : null,
  };
}
