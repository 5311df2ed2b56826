/**
 * The bench result (schema "vxtap-bench-result", version 1; JSON Schema in
 * bench/result.schema.json) and the derived figures computed from its raw
 * samples: per-mode summaries of each metric, ratios to bare and to kernel
 * VXLAN taken round by round, and the claims table. summary.md and the
 * terminal summary are renderers over this object, never separate measurements.
 */
import type { CpuPriority } from './placement.js';
import type { HostRecord } from './remote/pair.js';
import type { Environment } from './environment.js';
import type { LatencySample, TcpSample, UdpSample } from './measure.js';
import type { ModeKind } from './modes.js';
import type { MtuResult } from './mtu.js';
import { mtuMismatchClaims, type MtuMismatchResult } from './mtu-mismatch.js';
import { redisClaims, type RedisResult } from './redis.js';
import type { Profile } from './profile.js';
import { roundRatios, summarize, type Summary } from './stats.js';
import { contendedId, contentionClaims, type ContentionOptions, type ContentionSample } from './contention.js';
import { offloadClaims, type UnderlayOffloads } from './offloads.js';
import type { Endpoints, PodInfo } from './pods.js';
import type { LatencyTool } from './sockperf.js';

/** Schema identifier and version of result.json. */
export const RESULT_SCHEMA = 'vxtap-bench-result';
export const RESULT_SCHEMA_VERSION = 1;

/** A mode of the run and whether it could run. */
export interface ModeEntry {
  id: string;
  kind: ModeKind;
  params: Record<string, string>;
  available: boolean;
  unavailableReason: string | null;
  /** Facts from the last setup (datapath type, command line). */
  info: Record<string, unknown> | null;
  /** --contention: this entry is mode `of` run under the CPU hog (id `<of>@cpu<PCT>`, contention.ts). */
  variant?: { contention: ContentionOptions; of: string };
}

/** Everything measured for one mode in one round. */
export interface ModeRoundSample {
  round: number;
  mode: string;
  startedAt: string;
  setupSeconds: number | null;
  durationSeconds: number | null;
  /** Null when the mode-round completed; otherwise what failed. */
  error: string | null;
  innerMtu: number | null;
  tcp1: TcpSample | null;
  tcpN: TcpSample | null;
  udp: UdpSample[];
  latencyIdle: LatencySample | null;
  latencyLoaded: LatencySample | null;
  /** --latency-tool with several tools: the idle and loaded runs of the tools after the first, in the order measured (absent with one tool). */
  latencyOthers?: LatencySample[];
  mtu: MtuResult | null;
  /** The dataplane's own counters at the end of the mode-round (vxtap stats per host), if it has any. */
  dataplaneCounters?: Record<string, unknown> | null;
  /** What happened to host B's servers during the mode-round (a server that exited and was restarted, with its reason). */
  serverEvents?: string[];
  /** --measure mtu-mismatch (round 1): transfers with the endpoints forced to the underlay MTU. */
  mtuMismatch?: MtuMismatchResult | null;
  /** --measure redis (round 1): redis-benchmark against redis-server through the mode. */
  redis?: RedisResult | null;
  /** --endpoints pod: the pods the load generators ran in (pods.ts). */
  pods?: PodInfo;
  /** --contention: what the CPU hog did during this mode-round (contention.ts). */
  contention?: ContentionSample;
}

/** One metric summarised for one mode. */
export interface MetricByMode {
  /** Value per round (index = round - 1), null where missing. */
  perRound: (number | null)[];
  summary: Summary;
  /** Round-by-round ratio to bare / to kernel-vxlan. */
  ratioToBare: Summary | null;
  ratioToKernelVxlan: Summary | null;
}

/** Definition of a derived metric. */
export interface MetricDef {
  key: string;
  table: string;
  title: string;
  unit: string;
  higherIsBetter: boolean;
}

/** A claim from folklore checked against this run. */
export interface Claim {
  id: string;
  claim: string;
  measured: string;
  /** 'held', 'not held', or 'n/a' (not measurable in this run). */
  verdict: 'held' | 'not held' | 'n/a';
  detail: string;
}

/** The derived block. */
export interface Derived {
  metrics: MetricDef[];
  byMode: Record<string, Record<string, MetricByMode>>;
  claims: Claim[];
}

/** The whole result.json. */
export interface BenchResult {
  schema: typeof RESULT_SCHEMA;
  schemaVersion: typeof RESULT_SCHEMA_VERSION;
  runId: string;
  /** running: written mid-run (a killed run stays so); complete; incomplete (a mode failed or the run was interrupted). */
  status: 'running' | 'complete' | 'incomplete';
  incompleteReasons: string[];
  startedAt: string;
  finishedAt: string | null;
  durationSeconds: number | null;
  options: {
    profile: Profile['name'];
    rounds: number;
    modes: string[];
    mtu: number;
    netem: { delay: string | null; loss: string | null; rate: string | null };
    pin: string;
    /** --latency-tool: rr (the own Node ping-pong) or sockperf; absent in older results (= rr). */
    latencyTool?: LatencyTool;
    /** --latency-tool with several tools (the first is latencyTool); absent with one. */
    latencyTools?: LatencyTool[];
    argv: string[];
    /** What was measured (--measure): standard, mtu-mismatch, redis; absent in older results (= standard). */
    measure?: string[];
    /** Where the load generators ran (pods.ts); absent in older results (= host). */
    endpoints?: Endpoints;
    /** --contention (contention.ts); null = off. */
    contention?: ContentionOptions | null;
    /** --underlay-offloads (offloads.ts); absent = full. */
    underlayOffloads?: UnderlayOffloads;
    /** --cpu-priority (placement.ts); absent in older results (= normal: they ran where they were started). */
    cpuPriority?: CpuPriority;
  };
  profile: Profile;
  environment: Environment | null;
  /**
   * --hosts runs only: each host as its agent saw it (SSH destination, build,
   * underlay device, environment with NIC driver and offloads, clock offsets).
   */
  hosts?: HostRecord[];
  topology: {
    /** netns-veth: two namespaces on this machine; ssh-hosts: two hosts reached with --hosts. */
    kind: 'netns-veth' | 'ssh-hosts';
    /** `namespace`: the namespace (netns-veth) or the SSH destination (ssh-hosts). */
    hosts: { label: string; namespace: string }[];
    underlay: { a: string; b: string; prefix: number; mtu: number; netem: string | null };
    overlay: { a: string; b: string; prefix: number };
    vni: number;
    udpPort: number;
  };
  modes: ModeEntry[];
  /** Mode order of each round (interleaved). */
  order: string[][];
  samples: ModeRoundSample[];
  derived: Derived;
}

/** The metrics the summary reports. */
export const METRICS: MetricDef[] = [
  { key: 'tcp1Gbps', table: 'TCP throughput', title: 'TCP 1 stream', unit: 'Gbit/s', higherIsBetter: true },
  { key: 'tcpNGbps', table: 'TCP throughput', title: 'TCP N streams', unit: 'Gbit/s', higherIsBetter: true },
  { key: 'tcp1Retransmits', table: 'TCP throughput', title: 'retransmits (1 stream)', unit: 'count', higherIsBetter: false },
  { key: 'tcp1CpuPerGbit', table: 'CPU', title: 'machine CPU-s per Gbit (TCP 1 stream)', unit: 'CPU-s/Gbit', higherIsBetter: false },
  { key: 'tcp1DataplaneCpuPerGbit', table: 'CPU', title: 'dataplane CPU-s per Gbit', unit: 'CPU-s/Gbit', higherIsBetter: false },
  { key: 'tcp1DataplaneRssMb', table: 'CPU', title: 'dataplane RSS per host after TCP N streams', unit: 'MB', higherIsBetter: false },
  { key: 'tcp1SoftirqShare', table: 'CPU', title: 'softirq share during TCP 1 stream', unit: 'ratio', higherIsBetter: false },
  { key: 'tcp1StealShare', table: 'CPU', title: 'steal share during TCP 1 stream', unit: 'ratio', higherIsBetter: false },
  { key: 'latIdleP50', table: 'Latency idle', title: 'p50', unit: 'us', higherIsBetter: false },
  { key: 'latIdleP90', table: 'Latency idle', title: 'p90', unit: 'us', higherIsBetter: false },
  { key: 'latIdleP99', table: 'Latency idle', title: 'p99', unit: 'us', higherIsBetter: false },
  { key: 'latIdleP999', table: 'Latency idle', title: 'p99.9', unit: 'us', higherIsBetter: false },
  { key: 'latIdleMax', table: 'Latency idle', title: 'max', unit: 'us', higherIsBetter: false },
  { key: 'latLoadedP50', table: 'Latency loaded', title: 'p50', unit: 'us', higherIsBetter: false },
  { key: 'latLoadedP90', table: 'Latency loaded', title: 'p90', unit: 'us', higherIsBetter: false },
  { key: 'latLoadedP99', table: 'Latency loaded', title: 'p99', unit: 'us', higherIsBetter: false },
  { key: 'latLoadedP999', table: 'Latency loaded', title: 'p99.9', unit: 'us', higherIsBetter: false },
  { key: 'latLoadedMax', table: 'Latency loaded', title: 'max', unit: 'us', higherIsBetter: false },
];

/** Metric keys for the UDP table of one frame size. */
export function udpMetricDefs(frame: number): MetricDef[] {
  return [
    { key: `udp${frame}NdrKpps`, table: 'UDP NDR/PDR', title: `${frame} B NDR`, unit: 'kpps', higherIsBetter: true },
    { key: `udp${frame}PdrKpps`, table: 'UDP NDR/PDR', title: `${frame} B PDR 0.5%`, unit: 'kpps', higherIsBetter: true },
    { key: `udp${frame}CpuPerMpkt`, table: 'CPU', title: `machine CPU-s per Mpkt (${frame} B at PDR)`, unit: 'CPU-s/Mpkt', higherIsBetter: false },
  ];
}

/** The metric table of a run: the fixed metrics plus the UDP metrics of each profile frame size. */
export function metricDefs(profile: Pick<Profile, 'udpFrameSizes'>): MetricDef[] {
  return [...METRICS, ...profile.udpFrameSizes.flatMap(udpMetricDefs)];
}

/** The value of metric `key` in one mode-round sample; null when not measured. */
export function metricValue(s: ModeRoundSample, key: string): number | null {
  const gbps = (t: TcpSample | null) => (t ? t.receivedBps / 1e9 : null);
  switch (key) {
    case 'tcp1Gbps':
      return gbps(s.tcp1);
    case 'tcpNGbps':
      return gbps(s.tcpN);
    case 'tcp1Retransmits':
      return s.tcp1 ? s.tcp1.retransmits : null;
    case 'tcp1CpuPerGbit':
      return s.tcp1?.cpuSecondsPerGbit ?? null;
    case 'tcp1DataplaneCpuPerGbit':
      return s.tcp1?.dataplaneCpuSecondsPerGbit ?? null;
    case 'tcp1DataplaneRssMb':
      return s.tcpN?.cpu.dataplaneRssBytes ? s.tcpN.cpu.dataplaneRssBytes / 1e6 : null;
    case 'tcp1SoftirqShare':
      return s.tcp1 && s.tcp1.cpu.machine.totalSeconds > 0 ? s.tcp1.cpu.machine.softirqSeconds / s.tcp1.cpu.machine.totalSeconds : null;
    case 'tcp1StealShare':
      return s.tcp1 && s.tcp1.cpu.machine.totalSeconds > 0 ? s.tcp1.cpu.machine.stealSeconds / s.tcp1.cpu.machine.totalSeconds : null;
    case 'latIdleP50':
      return s.latencyIdle?.percentiles.p50Us ?? null;
    case 'latIdleP90':
      return s.latencyIdle?.percentiles.p90Us ?? null;
    case 'latIdleP99':
      return s.latencyIdle?.percentiles.p99Us ?? null;
    case 'latIdleP999':
      return s.latencyIdle?.percentiles.p999Us ?? null;
    case 'latIdleMax':
      return s.latencyIdle?.percentiles.maxUs ?? null;
    case 'latLoadedP50':
      return s.latencyLoaded?.percentiles.p50Us ?? null;
    case 'latLoadedP90':
      return s.latencyLoaded?.percentiles.p90Us ?? null;
    case 'latLoadedP99':
      return s.latencyLoaded?.percentiles.p99Us ?? null;
    case 'latLoadedP999':
      return s.latencyLoaded?.percentiles.p999Us ?? null;
    case 'latLoadedMax':
      return s.latencyLoaded?.percentiles.maxUs ?? null;
  }
  const m = /^udp(\d+)(NdrKpps|PdrKpps|CpuPerMpkt)$/.exec(key);
  if (m) {
    const u = s.udp.find((x) => x.frameBytes === Number(m[1]));
    if (!u || !u.search) return null;
    if (m[2] === 'NdrKpps') return u.search.ndr.ratePps !== null ? u.search.ndr.ratePps / 1000 : null;
    if (m[2] === 'PdrKpps') return u.search.pdr.ratePps !== null ? u.search.pdr.ratePps / 1000 : null;
    return u.cpuSecondsPerMpkt;
  }
  return null;
}

/** Metric `key` of `mode` per round (index = round - 1, rounds 1..options.rounds), null where missing. */
export function perRoundValues(r: Pick<BenchResult, 'samples' | 'options'>, mode: string, key: string): (number | null)[] {
  const out: (number | null)[] = [];
  for (let round = 1; round <= r.options.rounds; round++) {
    const s = r.samples.find((x) => x.mode === mode && x.round === round);
    out.push(s ? metricValue(s, key) : null);
  }
  return out;
}

function fmt(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined ? 'n/a' : v.toFixed(digits);
}

/** The first mode entry of a kind with data (sub-variants of vxtap count as vxtap). */
function modeOfKind(r: Pick<BenchResult, 'modes'>, kind: ModeKind): string | null {
  return r.modes.find((m) => m.kind === kind && m.available)?.id ?? null;
}

/**
 * The derived metric `key` of `mode`, or undefined where the run has none: runs
 * differ in modes, profiles (UDP frame sizes) and schema versions.
 */
export function metricOf(byMode: Derived['byMode'], mode: string, key: string): MetricByMode | undefined {
  return (byMode[mode] as Partial<Record<string, MetricByMode>> | undefined)?.[key];
}

/** Evaluate the folklore claims on the derived metrics. */
export function evaluateClaims(r: Pick<BenchResult, 'modes' | 'samples' | 'options'>, byMode: Derived['byMode']): Claim[] {
  const claims: Claim[] = [];
  const kv = modeOfKind(r, 'kernel-vxlan');
  const bare = modeOfKind(r, 'bare');
  const tap = modeOfKind(r, 'vxtap');
  const med = (mode: string | null, key: string) => (mode ? (metricOf(byMode, mode, key)?.summary.median ?? null) : null);

  // 1. Userspace UDP encapsulation ~40 % below kernel VXLAN (TCP 1 stream).
  {
    const ratio = tap ? (metricOf(byMode, tap, 'tcp1Gbps')?.ratioToKernelVxlan?.median ?? null) : null;
    const below = ratio !== null ? 1 - ratio : null;
    claims.push({
      id: 'userspace-40pct-below-vxlan',
      claim: 'Userspace UDP encapsulation runs ~40% below kernel VXLAN (TCP 1 stream)',
      measured: below !== null ? `vxtap ${fmt(med(tap, 'tcp1Gbps'))} vs kernel-vxlan ${fmt(med(kv, 'tcp1Gbps'))} Gbit/s: ${(below * 100).toFixed(0)}% below` : 'vxtap or kernel-vxlan not measured',
      verdict: below === null ? 'n/a' : below >= 0.3 && below <= 0.5 ? 'held' : 'not held',
      detail: 'folklore from flannel UDP vs VXLAN (28.7 vs 47.8 MB/s, kubernetes PR 17877); held if the round-by-round median deficit is within 30-50%',
    });
  }
  // 2. VXLAN overhead 3-5 % (kernel VXLAN vs bare, TCP 1 stream).
  {
    const ratio = kv ? (metricOf(byMode, kv, 'tcp1Gbps')?.ratioToBare?.median ?? null) : null;
    const over = ratio !== null ? 1 - ratio : null;
    claims.push({
      id: 'vxlan-overhead-3-5pct',
      claim: 'VXLAN costs 3-5% of throughput (header overhead 50/1500 B)',
      measured: over !== null ? `kernel-vxlan ${fmt(med(kv, 'tcp1Gbps'))} vs bare ${fmt(med(bare, 'tcp1Gbps'))} Gbit/s: ${(over * 100).toFixed(1)}% lower` : 'bare or kernel-vxlan not measured',
      verdict: over === null ? 'n/a' : over >= 0.03 && over <= 0.05 ? 'held' : 'not held',
      detail: 'held if the round-by-round median TCP 1-stream loss is 3-5%',
    });
  }
  // 3. 1450-byte inner MTU for VXLAN, 1472-byte largest ICMP/UDP payload on a 1500 underlay.
  {
    const mtuOf = (mode: string | null) => r.samples.find((s) => s.mode === mode && s.mtu)?.mtu ?? null;
    const kvm = mtuOf(kv);
    const barem = mtuOf(bare);
    const kvLimit = kvm ? (kvm.sweeps.find((s) => s.config === 'raised') ?? kvm.sweeps[0]).largestWholeDf : null;
    const bareLimit = barem ? barem.sweeps[0].largestWholeDf : null;
    const expectKv = r.options.mtu - 50;
    const bits: string[] = [];
    if (kvLimit !== null) bits.push(`kernel-vxlan carries ${kvLimit} B inner packets whole`);
    if (bareLimit !== null) bits.push(`bare: ${bareLimit} B packet = ${bareLimit - 28} B ICMP/UDP payload with DF`);
    const measurable = kvLimit !== null && bareLimit !== null;
    claims.push({
      id: 'inner-mtu-1450-1472',
      claim: `VXLAN inner MTU is ${expectKv} B; the largest DF payload on the ${r.options.mtu} B underlay is ${r.options.mtu - 28} B`,
      measured: bits.join('; ') || 'MTU sweep not measured',
      verdict: !measurable ? 'n/a' : kvLimit === expectKv && bareLimit - 28 === r.options.mtu - 28 ? 'held' : 'not held',
      detail: 'largest inner packet that crossed whole with DF (bisection with ping -M do)',
    });
  }
  // 4. 1542-byte underlay needed for 1500 inside GRE.
  {
    const gre = modeOfKind(r, 'ovs-gre');
    const m = r.samples.find((s) => s.mode === gre && s.mtu)?.mtu ?? null;
    const needed = m?.underlayNeededFor1500 ?? null;
    claims.push({
      id: 'gre-1542-underlay',
      claim: 'Carrying 1500 B inside a GRE (Ethernet, keyed) tunnel needs a 1542 B underlay',
      measured: needed !== null ? `ovs-gre needs a ${needed} B underlay (tunnel overhead ${needed - 1500} B, measured at underlay MTU ${r.options.mtu})` : 'ovs-gre not measured',
      verdict: needed === null ? 'n/a' : needed === 1542 ? 'held' : 'not held',
      detail: 'underlay MTU - largest whole DF inner packet with the inner MTU raised to the underlay MTU, + 1500',
    });
  }
  // 5. Added latency of each overlay over bare (idle p50).
  {
    const base = med(bare, 'latIdleP50');
    const parts: string[] = [];
    for (const m of r.modes.filter((x) => x.available && x.kind !== 'bare' && !x.variant)) {
      const v = med(m.id, 'latIdleP50');
      if (v !== null && base !== null) parts.push(`${m.id} ${v - base >= 0 ? '+' : ''}${(v - base).toFixed(0)} us`);
    }
    const kvAdded = base !== null && med(kv, 'latIdleP50') !== null ? (med(kv, 'latIdleP50') as number) - base : null;
    claims.push({
      id: 'added-latency',
      claim: 'Kernel VXLAN adds little latency (under 20 us p50 RTT over bare)',
      measured: base !== null ? `bare p50 ${base.toFixed(0)} us; ${parts.join(', ') || 'no overlay measured'}` : 'bare not measured',
      verdict: kvAdded === null ? 'n/a' : kvAdded < 20 ? 'held' : 'not held',
      detail: 'idle TCP request/response, median of rounds; other overlays listed for comparison',
    });
  }
  // Claims measured only on request (--measure): one row per mode each.
  claims.push(...mtuMismatchClaims(r), ...redisClaims(r));
  // Claims of the opt-in variants (--contention, --underlay-offloads no-tunnel-tso): rows only when measured.
  claims.push(...contentionClaims(r, byMode), ...offloadClaims(r, byMode));
  return claims;
}

/** Compute the derived block from the raw samples. */
export function derive(r: Pick<BenchResult, 'modes' | 'samples' | 'options' | 'profile'>): Derived {
  const metrics = metricDefs(r.profile);
  const byMode: Derived['byMode'] = {};
  const bare = modeOfKind(r, 'bare');
  const kv = modeOfKind(r, 'kernel-vxlan');
  for (const m of r.modes) {
    byMode[m.id] = {};
    // A contended variant is compared with the contended bare / kernel-vxlan of the same round.
    const pct = m.variant?.contention.pct;
    const bareOf = bare && pct !== undefined ? contendedId(bare, pct) : bare;
    const kvOf = kv && pct !== undefined ? contendedId(kv, pct) : kv;
    for (const def of metrics) {
      const perRound = perRoundValues(r, m.id, def.key);
      const base = bareOf ? perRoundValues(r, bareOf, def.key) : null;
      const kvv = kvOf ? perRoundValues(r, kvOf, def.key) : null;
      const rb = base ? roundRatios(perRound, base) : [];
      const rk = kvv ? roundRatios(perRound, kvv) : [];
      byMode[m.id][def.key] = {
        perRound,
        summary: summarize(perRound),
        ratioToBare: rb.length ? summarize(rb) : null,
        ratioToKernelVxlan: rk.length ? summarize(rk) : null,
      };
    }
  }
  return { metrics, byMode, claims: evaluateClaims(r, byMode) };
}
