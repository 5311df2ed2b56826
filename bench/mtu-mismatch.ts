/**
 * MTU mismatch: what an application whose interface MTU is 1500 gets over an
 * overlay that needs headroom ("if your applications force a 1500 MTU,
 * packets will drop"). Per mode, the inner MTU is forced to the underlay MTU
 * on both hosts (as a container with the default 1500 MTU on each end): the
 * overlay device's MTU where the dataplane accepts it (as `mtu.ts` raises
 * it), otherwise a /32 route to the peer with `mtu <underlay>` (Linux
 * refuses a VXLAN device MTU above its lower device's MTU - 50, but a route
 * MTU above the device's is used as is). Then bounded TCP transfers
 * (`transfer.ts`) with path MTU discovery on and off (the per-namespace
 * sysctl `net.ipv4.ip_no_pmtu_disc`: off = no DF bit, PMTU updates ignored),
 * with small messages one at a time and large writes streamed.
 *
 * Each transfer is classified from its evidence: `completes` (everything
 * acknowledged, no fragment created anywhere), `fragments` (completed, with
 * fragments created by an inner or the underlay stack, or seen on the
 * underlay wire), `stalls` (no acknowledgement for the stall bound: the black
 * hole of a tunnel that drops oversize frames silently), `slow` (progressing
 * but not done within the time bound), `fails` (no connection). The inner MTU,
 * routes and sysctls are restored afterwards. Local topology only: on --hosts
 * it would change the hosts' own sysctls, which the bench never does.
 *
 * With pod endpoints (`--endpoints pod`, `pods.ts`) the mismatch is the one a
 * cluster has: the pods' eth0, their veth host ends and the pod bridges are
 * forced to the underlay MTU while each host's overlay device keeps the
 * mode's inner MTU. The transfers run pod A -> pod B, so an oversize packet
 * meets the host's routed hop onto the overlay device: with DF the host
 * should answer ICMP "fragmentation needed" into the pod (PMTUD), without DF
 * fragment the inner packet. `ip_no_pmtu_disc` is set in the pods (the
 * senders) and in the hosts; fragment and ICMP counters are read in both
 * (`evidence.hosts`), the capture stays on host A's underlay device. For
 * `bare` (routed pods, no tunnel) nothing is mismatched: the baseline.
 */
import { counterDelta } from '../src/host/procstat.js';
import type { BenchHost, BenchProcess } from './host.js';
import type { ActiveMode } from './modes.js';
import { parseCaptureTimes } from './mtu.js';
import type { BenchResult, Claim } from './result.js';
import type { Topology } from './topology.js';
import type { TransferOutput } from './transfer.js';
import path from 'node:path';

/** Port of the transfer server on host B. */
export const TRANSFER_PORT = 7011;

/** How a transfer over a forced MTU ended, judged from its evidence. */
export type MismatchOutcome = 'completes' | 'fragments' | 'stalls' | 'slow' | 'fails';

/** Bounds of the MTU-mismatch measurement (per profile). */
export interface MtuMismatchPlan {
  /** Small messages: size and count, sent one at a time. */
  smallBytes: number;
  smallCount: number;
  /** Large writes: size and count, streamed. */
  largeBytes: number;
  largeCount: number;
  /** No acknowledgement for this long = stalled, ms. */
  stallMs: number;
  /** Hard bound of one transfer, ms. */
  timeoutMs: number;
}

/** The bounds per profile: quick keeps one stalled mode under ~5 s. */
export const MTU_MISMATCH_PLANS: Record<'quick' | 'default' | 'full', MtuMismatchPlan> = {
  quick: { smallBytes: 100, smallCount: 100, largeBytes: 65536, largeCount: 32, stallMs: 1500, timeoutMs: 6000 },
  default: { smallBytes: 100, smallCount: 300, largeBytes: 65536, largeCount: 64, stallMs: 2500, timeoutMs: 10_000 },
  full: { smallBytes: 100, smallCount: 1000, largeBytes: 65536, largeCount: 256, stallMs: 5000, timeoutMs: 30_000 },
};

/** Evidence of one transfer. */
export interface MismatchEvidence {
  /** IpFragCreates on host A / host B (inner or outer fragments made by that host's stack). */
  fragCreatesA: number;
  fragCreatesB: number;
  /** IpFragFails on host A (DF set and too big: dropped by A's stack). */
  fragFailsA: number;
  /** IpReasmOKs on A + B. */
  reassembled: number;
  /** IPv4 fragments captured on host A's underlay device during the transfer (null without tcpdump). */
  underlayFragments: number | null;
  /** ICMP destination unreachable received by A (frag needed among them) / sent by B. */
  icmpUnreachReceivedA: number;
  icmpUnreachSentB: number;
  /** TCP segments A retransmitted (TcpRetransSegs). */
  retransSegsA: number;
  /**
   * Pod endpoints only: the same counters in the host namespaces behind the
   * pods (the fields above are then the pods'), where the routed hop onto the
   * overlay device fragments (IpFragCreates) or refuses DF packets
   * (IpFragFails, answered by an ICMP unreachable into the pod).
   */
  hosts?: HostHopEvidence;
}

/** Counters of the host namespaces behind the pods during one transfer. */
export interface HostHopEvidence {
  fragCreatesA: number;
  fragCreatesB: number;
  fragFailsA: number;
  /** IpReasmOKs on host A + host B. */
  reassembled: number;
  /** ICMP destination unreachable sent by host A (to pod A: fragmentation needed). */
  icmpUnreachSentA: number;
}

/** One transfer. */
export interface MismatchTransfer {
  pmtud: 'on' | 'off';
  messages: 'small' | 'large';
  messageBytes: number;
  count: number;
  /** 1 = one message at a time; count = streamed. */
  window: number;
  output: TransferOutput | null;
  evidence: MismatchEvidence;
  outcome: MismatchOutcome;
  /** Where fragments were made: the underlay (outer packets), inside (inner packets before encapsulation), or null. */
  fragmentedAt: 'underlay' | 'inner' | null;
  /** Completed: time from connect to the last acknowledgement, s; stalled: time to the last progress, s. */
  seconds: number | null;
  /** Completed transfers: delivered bits / seconds. */
  goodputBps: number | null;
  error: string | null;
}

/** The MTU-mismatch result of one mode. */
export interface MtuMismatchResult {
  underlayMtu: number;
  /** MTU of the inner devices as the mode configures it. */
  configuredInnerMtu: number;
  /** The MTU the endpoints were forced to (the underlay MTU: what a 1500-MTU container sends). */
  forcedMtu: number;
  /**
   * device: the overlay device MTU was raised; route: a /32 route to the peer
   * with that MTU (device refused); pod: the pods' eth0, veth host ends and
   * bridges raised, the hosts' overlay devices left as they are; none: nothing
   * to force (no overlay).
   */
  forcedBy: 'device' | 'route' | 'pod' | 'none';
  /** Where the transfers ran: between the hosts (absent in results before pods were measured) or between pods. */
  endpoints?: 'host' | 'pod';
  /** Why the device MTU could not be raised (forcedBy route). */
  deviceRefused: string | null;
  plan: MtuMismatchPlan;
  captureAvailable: boolean;
  transfers: MismatchTransfer[];
  /** Why the measurement did not run, or null. */
  skipped: string | null;
  /** Wall time of the whole measurement, s. */
  durationSeconds?: number;
}

/** Classify a transfer from its output and evidence (pure). */
export function classifyTransfer(out: Pick<TransferOutput, 'connected' | 'end' | 'acked'> | null, e: MismatchEvidence): { outcome: MismatchOutcome; fragmentedAt: 'underlay' | 'inner' | null } {
  const underlay = (e.underlayFragments ?? 0) > 0;
  const h = e.hosts;
  const inner = e.fragCreatesA > 0 || e.fragCreatesB > 0 || e.reassembled > 0 || (h ? h.fragCreatesA > 0 || h.fragCreatesB > 0 || h.reassembled > 0 : false);
  const fragmentedAt = underlay ? 'underlay' : inner ? 'inner' : null;
  if (!out || !out.connected) return { outcome: 'fails', fragmentedAt };
  if (out.end === 'completed') return { outcome: fragmentedAt ? 'fragments' : 'completes', fragmentedAt };
  if (out.end === 'timeout') return { outcome: 'slow', fragmentedAt };
  // stalled, or an error after connecting with the transfer unfinished: nothing more got through.
  return { outcome: 'stalls', fragmentedAt };
}

/** Seconds and goodput of a transfer (pure). */
export function transferFigures(out: TransferOutput | null): { seconds: number | null; goodputBps: number | null } {
  if (!out || !out.connected) return { seconds: null, goodputBps: null };
  const seconds = out.lastProgressMs / 1000;
  if (out.end !== 'completed') return { seconds, goodputBps: null };
  return { seconds, goodputBps: seconds > 0 ? (out.deliveredBytes * 8) / seconds : null };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Path of the compiled transfer tool. */
export function transferScript(repoRoot: string): string {
  return path.join(repoRoot, 'dist', 'bench', 'transfer.js');
}

async function waitFor(p: BenchProcess, re: RegExp, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(p.stdout()) && !re.test(p.stderr())) {
    if (p.done()) throw new Error(`${what} exited: ${(p.stderr() || p.stdout()).trim().slice(-300)}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function setPmtud(hosts: BenchHost[], on: boolean): Promise<void> {
  // Also forget PMTU exceptions learnt by earlier transfers (route/flush does rt_cache_flush + an fnhe genid bump).
  await Promise.all(hosts.map((h) => h.exec(['sh', '-c', `sysctl -qw net.ipv4.ip_no_pmtu_disc=${on ? 0 : 1} && ip route flush cache`])));
}

/**
 * Pod endpoints of a mode-round, as the measurement needs them: the hosts
 * behind the pods and the pod network's MTU knob (`pods.ts`).
 */
export interface MismatchPods {
  /** The hosts' topology: their namespaces hold the routed hop, the overlay device and the underlay. */
  hosts: Topology;
  /** The pods' MTU as made (the mode's inner MTU). */
  mtu: number;
  /** Set the MTU of the pods' eth0, the veth host ends and the bridges on both hosts. */
  setMtu(mtu: number): Promise<void>;
}

/** Who takes part in one measurement: the endpoints (transfers, PMTUD) and, with pods, the hosts behind them. */
interface Sides {
  a: BenchHost;
  b: BenchHost;
  /** Host namespaces behind pod endpoints, or null when the endpoints are the hosts. */
  hostA: BenchHost | null;
  hostB: BenchHost | null;
  /** Where the underlay capture runs. */
  captureHost: BenchHost;
}

/**
 * The MTU-mismatch measurement of one mode. Restores MTU, routes and sysctls.
 * Never leaves the server running. `skip`: record why it is not measured instead.
 * `pods`: the endpoints (topo.a/b, mode.addrA/B) are pods in front of `pods.hosts`.
 */
export async function measureMtuMismatch(
  topo: Topology,
  mode: ActiveMode,
  plan: MtuMismatchPlan,
  repoRoot: string,
  skip: string | null = null,
  pods: MismatchPods | null = null,
): Promise<MtuMismatchResult> {
  const started = Date.now();
  const result: MtuMismatchResult = {
    underlayMtu: topo.mtu,
    configuredInnerMtu: mode.innerMtu,
    forcedMtu: topo.mtu,
    forcedBy: 'none',
    endpoints: pods ? 'pod' : 'host',
    deviceRefused: null,
    plan,
    captureAvailable: false,
    transfers: [],
    skipped: skip,
  };
  if (!skip && (topo.remote || pods?.hosts.remote)) result.skipped = "not on --hosts: it changes the sending hosts' net.ipv4.ip_no_pmtu_disc and interface MTUs";
  if (result.skipped) return result;
  const { a, b } = topo;
  const sides: Sides = pods ? { a, b, hostA: pods.hosts.a, hostB: pods.hosts.b, captureHost: pods.hosts.a } : { a, b, hostA: null, hostB: null, captureHost: a };
  // Every namespace whose PMTUD setting and PMTU exceptions matter: the senders, and with pods the routed hops.
  const namespaces = [a, b, ...(sides.hostA && sides.hostB ? [sides.hostA, sides.hostB] : [])];
  const routes: [BenchHost, string, string, string][] = [
    [a, mode.addrB, mode.innerDevA, mode.addrA],
    [b, mode.addrA, mode.innerDevB, mode.addrB],
  ];
  let routed = false;
  let raised = false;
  let podsRaised = false;
  let server: BenchProcess | null = null;
  let capture: BenchProcess | null = null;
  const original = await Promise.all(namespaces.map((h) => h.exec(['sysctl', '-n', 'net.ipv4.ip_no_pmtu_disc'], { allowFail: true }).then((r) => r.stdout.trim() || '0')));
  try {
    if (pods) {
      // The cluster's mismatch: pods at the underlay MTU, the hosts' overlay devices left at the inner MTU.
      if (pods.mtu < topo.mtu) {
        podsRaised = true;
        await pods.setMtu(topo.mtu);
        result.forcedBy = 'pod';
      }
    } else if (mode.overheadBytes > 0 && mode.innerMtu < topo.mtu) {
      try {
        await mode.setInnerMtu(topo.mtu);
        raised = true;
        result.forcedBy = 'device';
      } catch (err) {
        result.deviceRefused = (err as Error).message.split('\n')[0].slice(-200);
        for (const [h, dst, dev, src] of routes) await h.exec(['ip', 'route', 'replace', `${dst}/32`, 'dev', dev, 'src', src, 'mtu', String(topo.mtu)]);
        routed = true;
        result.forcedBy = 'route';
      }
    }
    server = b.spawn([process.execPath, transferScript(repoRoot), 'server', '--bind', mode.addrB, '--port', String(TRANSFER_PORT)]);
    await waitFor(server, /ready/, 'transfer server', 5000);
    // Neighbours again after the MTU change, so the first transfer does not pay for ARP.
    await a.exec(['ping', '-n', '-q', '-c', '3', '-i', '0.05', '-W', '2', mode.addrB], { allowFail: true, timeoutMs: 10_000 });
    capture = sides.captureHost.spawn(['tcpdump', '-i', topo.devA, '-n', '-tt', '-l', '-p', '--immediate-mode', 'ip and (ip[6:2] & 0x3fff != 0)']);
    try {
      await waitFor(capture, /listening on/, 'tcpdump', 3000);
      result.captureAvailable = true;
    } catch {
      await capture.stop(500);
      capture = null;
    }
    for (const pmtud of ['on', 'off'] as const) {
      await setPmtud(namespaces, pmtud === 'on');
      for (const messages of ['small', 'large'] as const) {
        result.transfers.push(await oneTransfer(sides, mode, plan, repoRoot, pmtud, messages, capture));
      }
    }
  } finally {
    await capture?.stop(500).catch(() => undefined);
    await server?.stop(1000).catch(() => undefined);
    for (const [i, h] of namespaces.entries()) await h.exec(['sysctl', '-qw', `net.ipv4.ip_no_pmtu_disc=${original[i]}`], { allowFail: true });
    if (routed) for (const [h, dst, dev] of routes) await h.exec(['ip', 'route', 'del', `${dst}/32`, 'dev', dev], { allowFail: true });
    if (raised) await mode.setInnerMtu(mode.innerMtu).catch(() => undefined);
    if (podsRaised && pods) await pods.setMtu(pods.mtu).catch(() => undefined);
    for (const h of namespaces) await h.exec(['ip', 'route', 'flush', 'cache'], { allowFail: true });
  }
  result.durationSeconds = (Date.now() - started) / 1000;
  return result;
}

/** What a namespace's counters moved by during a transfer (a counter nstat did not print is 0). */
async function readDelta(h: BenchHost | null): Promise<() => Promise<Partial<Record<string, number>>>> {
  if (!h) return () => Promise.resolve({});
  const before = await h.readCounters();
  return async () => counterDelta(before.nstat, (await h.readCounters()).nstat);
}

async function oneTransfer(
  sides: Sides,
  mode: ActiveMode,
  plan: MtuMismatchPlan,
  repoRoot: string,
  pmtud: 'on' | 'off',
  messages: 'small' | 'large',
  capture: BenchProcess | null,
): Promise<MismatchTransfer> {
  const { a } = sides;
  const messageBytes = messages === 'small' ? plan.smallBytes : plan.largeBytes;
  const count = messages === 'small' ? plan.smallCount : plan.largeCount;
  const window = messages === 'small' ? 1 : count;
  const deltas = await Promise.all([sides.a, sides.b, sides.hostA, sides.hostB].map(readDelta));
  const t0 = Date.now();
  const argv = [
    process.execPath,
    transferScript(repoRoot),
    'client',
    '--host',
    mode.addrB,
    '--port',
    String(TRANSFER_PORT),
    '--message-bytes',
    String(messageBytes),
    '--count',
    String(count),
    '--window',
    String(window),
    '--stall-ms',
    String(plan.stallMs),
    '--timeout-ms',
    String(plan.timeoutMs),
  ];
  const r = await a.exec(argv, { allowFail: true, timeoutMs: plan.timeoutMs + 10_000 });
  let output: TransferOutput | null = null;
  let error: string | null;
  try {
    output = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as TransferOutput;
    error = output.error;
  } catch {
    error = `transfer client printed no JSON (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`;
  }
  // Late fragments and retransmissions still land in the window.
  await sleep(30);
  const t1 = Date.now();
  const [da, db, dha, dhb] = await Promise.all(deltas.map((d) => d()));
  const evidence: MismatchEvidence = {
    fragCreatesA: da.IpFragCreates ?? 0,
    fragCreatesB: db.IpFragCreates ?? 0,
    fragFailsA: da.IpFragFails ?? 0,
    reassembled: (da.IpReasmOKs ?? 0) + (db.IpReasmOKs ?? 0),
    underlayFragments: capture ? parseCaptureTimes(capture.stdout()).filter((t) => t >= t0 - 5 && t <= t1 + 5).length : null,
    icmpUnreachReceivedA: da.IcmpInDestUnreachs ?? 0,
    icmpUnreachSentB: db.IcmpOutDestUnreachs ?? 0,
    retransSegsA: da.TcpRetransSegs ?? 0,
  };
  if (sides.hostA) {
    evidence.hosts = {
      fragCreatesA: dha.IpFragCreates ?? 0,
      fragCreatesB: dhb.IpFragCreates ?? 0,
      fragFailsA: dha.IpFragFails ?? 0,
      reassembled: (dha.IpReasmOKs ?? 0) + (dhb.IpReasmOKs ?? 0),
      icmpUnreachSentA: dha.IcmpOutDestUnreachs ?? 0,
    };
  }
  const { outcome, fragmentedAt } = classifyTransfer(output, evidence);
  return { pmtud, messages, messageBytes, count, window, output, evidence, outcome, fragmentedAt, ...transferFigures(output), error };
}

/** How the MTU was forced, in words (claims detail, summary and report; pure). */
export function forcedHow(mm: Pick<MtuMismatchResult, 'configuredInnerMtu' | 'forcedMtu' | 'forcedBy' | 'deviceRefused' | 'endpoints'>): string {
  switch (mm.forcedBy) {
    case 'route':
      return `inner MTU ${mm.configuredInnerMtu} forced to ${mm.forcedMtu} by a /32 route MTU (device MTU refused: ${mm.deviceRefused ?? '?'})`;
    case 'device':
      return `inner MTU ${mm.configuredInnerMtu} forced to ${mm.forcedMtu} by the device MTU`;
    case 'pod':
      return `pods' eth0, veth host ends and bridges raised from ${mm.configuredInnerMtu} to ${mm.forcedMtu}, the hosts' overlay devices left at ${mm.configuredInnerMtu} (the hosts' routed hop meets the oversize packets)`;
    default:
      return `inner MTU ${mm.configuredInnerMtu}: nothing to force (no overlay)${mm.endpoints === 'pod' ? ', routed pods' : ''}`;
  }
}

/** Short label of the forcing for table cells (pure). */
export function forcedLabel(forcedBy: MtuMismatchResult['forcedBy']): string {
  return forcedBy === 'none' ? 'no overlay' : forcedBy === 'pod' ? 'pods' : forcedBy;
}

function describeTransfer(t: MismatchTransfer, stallMs: number): string {
  const what = `${t.messages} (${t.messageBytes} B x ${t.count}), PMTUD ${t.pmtud}`;
  const s = t.seconds !== null ? `${t.seconds.toFixed(2)} s` : 'n/a';
  switch (t.outcome) {
    case 'completes':
      return `${what}: completes in ${s}`;
    case 'fragments':
      return `${what}: completes fragmented (${t.fragmentedAt ?? 'where unknown'}) in ${s}`;
    case 'stalls': {
      const kib = (t.output?.deliveredBytes ?? 0) / 1024;
      return `${what}: stalls, ${kib > 0 ? `${kib.toFixed(0)} KiB delivered until ${s}` : 'nothing delivered'}, then nothing for ${(stallMs / 1000).toFixed(1)} s`;
    }
    case 'slow':
      return `${what}: unfinished at the ${(t.output?.elapsedMs ?? 0) / 1000} s bound`;
    default:
      return `${what}: fails (${t.error ?? 'no connection'})`;
  }
}

/**
 * The claim "packets drop with a forced 1500 MTU", one row per overlay mode:
 * held when a transfer over that mode stalls (the frames vanish), not held
 * when every transfer completes (whole or fragmented).
 */
export function mtuMismatchClaims(r: Pick<BenchResult, 'modes' | 'samples' | 'options'>): Claim[] {
  const claims: Claim[] = [];
  for (const m of r.modes.filter((x) => x.available && x.kind !== 'bare')) {
    const mm = r.samples.find((s) => s.mode === m.id && s.mtuMismatch)?.mtuMismatch;
    if (!mm) continue;
    const stalled = mm.transfers.filter((t) => t.outcome === 'stalls' || t.outcome === 'fails');
    const verdict: Claim['verdict'] = mm.skipped || mm.transfers.length === 0 ? 'n/a' : stalled.length > 0 ? 'held' : 'not held';
    claims.push({
      id: `mtu-mismatch-drops:${m.id}`,
      claim: `${m.id}: with a forced ${mm.forcedMtu} B MTU (applications/containers at the underlay MTU), packets drop`,
      measured: mm.skipped ? `not measured: ${mm.skipped}` : mm.transfers.map((t) => describeTransfer(t, mm.plan.stallMs)).join('; '),
      verdict,
      detail: `${forcedHow(mm)}; bounded TCP transfers ${mm.endpoints === 'pod' ? 'pod A -> pod B' : 'A -> B'}, stall = no acknowledgement for ${mm.plan.stallMs} ms; held if any transfer stalls (black hole), not held if all complete (whole or fragmented)`,
    });
  }
  return claims;
}

/** Markdown lines for summary.md (empty when nothing was measured). */
export function renderMtuMismatchMarkdown(r: Pick<BenchResult, 'samples'>, table: (header: string[], rows: string[][]) => string): string[] {
  const rows: string[][] = [];
  let first: MtuMismatchResult | null = null;
  for (const s of r.samples) {
    const mm = s.mtuMismatch;
    if (!mm) continue;
    first ??= mm;
    if (mm.skipped) {
      rows.push([s.mode, '-', '-', '-', `not measured: ${mm.skipped}`, '', '', '']);
      continue;
    }
    for (const t of mm.transfers) {
      const e = t.evidence;
      const hop = e.hosts ? [`host frag A/B ${e.hosts.fragCreatesA}/${e.hosts.fragCreatesB}`, `host A DF drops ${e.hosts.fragFailsA}`, `host A ICMP unreach out ${e.hosts.icmpUnreachSentA}`] : [];
      const ev = [
        `frag A/B ${e.fragCreatesA}/${e.fragCreatesB}`,
        ...hop,
        `underlay frags ${e.underlayFragments ?? 'n/a'}`,
        `ICMP unreach in ${e.icmpUnreachReceivedA}`,
        `retrans ${e.retransSegsA}`,
      ].join(', ');
      rows.push([
        s.mode,
        `${mm.configuredInnerMtu} -> ${mm.forcedMtu} (${mm.forcedBy})`,
        t.pmtud,
        `${t.messages} ${t.messageBytes} B x ${t.count}`,
        `${t.outcome}${t.fragmentedAt ? ` (${t.fragmentedAt})` : ''}`,
        t.seconds !== null ? t.seconds.toFixed(3) : 'n/a',
        t.goodputBps !== null ? (t.goodputBps / 1e6).toFixed(1) : 'n/a',
        ev,
      ]);
    }
  }
  if (!rows.length || !first) return [];
  const p = first.plan;
  const inPods = r.samples.some((s) => s.mtuMismatch?.endpoints === 'pod');
  const podNote = inPods
    ? ` With pods (forced by pods): the transfers run pod A -> pod B, the pods' eth0, veth host ends and bridges at the underlay MTU while each host's overlay device keeps the inner MTU, so the hosts' routed hop meets the oversize packets; PMTUD is set in the pods and the hosts; frag A/B and ICMP unreach in are the pods' counters, "host ..." the host namespaces' (DF drops = IpFragFails, each answered by an ICMP unreachable into the pod).`
    : '';
  return [
    '## MTU mismatch (endpoints forced to the underlay MTU)',
    '',
    table(['mode', 'inner MTU (forced by)', 'PMTUD', 'messages', 'outcome', 'seconds', 'goodput Mbit/s', 'evidence'], rows),
    '',
    `Bounded TCP transfers A -> B with both endpoints at the underlay MTU: small messages one at a time, large writes streamed; PMTUD off = net.ipv4.ip_no_pmtu_disc=1 on both hosts (no DF, PMTU updates ignored). stalls = no acknowledgement for ${p.stallMs} ms (seconds = time to the last progress); fragments = completed with fragments made inside (inner) or on the underlay; every transfer bounded by ${p.timeoutMs} ms.${podNote}`,
    '',
  ];
}
