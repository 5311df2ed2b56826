/**
 * Capacity plan from one bench result: to carry RATE per host (and PPS small
 * packets), which overlays can, and what does each cost?
 *
 * The model is the measurement read linearly: cores at a rate = measured
 * CPU-seconds per Gbit (or per Mpkt) x the rate, per round, so the plan
 * carries the rounds' spread. It is applied only within the measured range:
 * a rate above what a mode carried in this run is "not shown by this run",
 * never extrapolated. The bench's two hosts are two namespaces on one machine,
 * so the machine CPU of one test is one encapsulation and one decapsulation
 * per bit (both ends) plus the load generators; a host that sends and
 * receives RATE pays that figure at RATE (for --hosts runs the CPU figures
 * already sum both hosts: the same reading). Pure: parsing, validation, the plan
 * and its Markdown are functions of the result and the request.
 */
import type { BenchResult, ModeRoundSample } from './result.js';
import type { ModeEntry } from './result.js';
import { fmtNum, fmtSpread, modeOfKind, perRound, scaleSpread, spreadOf, type Spread } from './report/data.js';

/** What the plan is asked for (validated). */
export interface PlanRequest {
  /** Bulk rate each host must carry, bits/s. */
  targetBps: number;
  /** Small-packet rate each host must carry, packets/s (null: not asked). */
  pps: number | null;
  /** Hosts in the cluster (totals are per host x hosts). */
  hosts: number;
  /** Cores per host (null: not given, no "cores left"). */
  cores: number | null;
  /** Capacity kept in reserve, percent: the plan is made for target x (1 + headroom / 100). */
  headroomPct: number;
}

/** Plan flags as typed on the command line (or stored in a result's options.plan). */
export interface PlanFlags {
  target?: string;
  pps?: string;
  hosts?: string | number;
  cores?: string | number;
  headroom?: string | number;
}

/** A plan flag that is not valid; the CLI prints the message and exits 2. */
export class PlanInputError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'PlanInputError';
  }
}

const BIT_UNITS: Record<string, number> = { '': 1, bit: 1, b: 1, k: 1e3, kbit: 1e3, kb: 1e3, m: 1e6, mbit: 1e6, mb: 1e6, g: 1e9, gbit: 1e9, gb: 1e9, t: 1e12, tbit: 1e12, tb: 1e12 };

/** Parse a bit rate ("10gbit", "10G", "2.5Gbit/s", "500mbit", "1e9"), bits/s; throws PlanInputError naming `flag`. */
export function parseBitRate(text: string, flag = '--target'): number {
  const m = /^\s*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*([a-z]*?)(?:ps|\/s)?\s*$/i.exec(text);
  const unit = m?.[2].toLowerCase();
  if (!m || unit === undefined || !(unit in BIT_UNITS)) throw new PlanInputError(`${flag} must be a bit rate such as 10gbit, 500mbit or 2.5G (got "${text}")`);
  const v = Number(m[1]) * BIT_UNITS[unit];
  if (!Number.isFinite(v) || v <= 0) throw new PlanInputError(`${flag} must be greater than 0 (got "${text}")`);
  return v;
}

/** Parse a packet rate ("1mpps", "500kpps", "200000"), packets/s; throws PlanInputError naming `flag`. */
export function parsePacketRate(text: string, flag = '--pps'): number {
  const m = /^\s*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*([km]?)(?:pps|p\/s)?\s*$/i.exec(text);
  if (!m) throw new PlanInputError(`${flag} must be a packet rate such as 1mpps, 500kpps or 200000 (got "${text}")`);
  const v = Number(m[1]) * (m[2].toLowerCase() === 'm' ? 1e6 : m[2].toLowerCase() === 'k' ? 1e3 : 1);
  if (!Number.isFinite(v) || v <= 0) throw new PlanInputError(`${flag} must be greater than 0 (got "${text}")`);
  return v;
}

function parseCount(v: string | number, flag: string, min: number): number {
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min) throw new PlanInputError(`${flag} must be an integer >= ${min} (got "${v}")`);
  return n;
}

/** Parse then validate plan flags; throws PlanInputError naming the flag. `--target` is required. */
export function parsePlanFlags(f: PlanFlags): PlanRequest {
  if (f.target === undefined || f.target === '') throw new PlanInputError('--target is required (the bulk rate per host, e.g. 10gbit)');
  const headroom = f.headroom === undefined ? 0 : typeof f.headroom === 'number' ? f.headroom : /^\s*\d+(\.\d+)?\s*%?\s*$/.test(f.headroom) ? parseFloat(f.headroom) : NaN;
  if (!Number.isFinite(headroom) || headroom < 0 || headroom > 1000) throw new PlanInputError(`--headroom must be a percentage between 0 and 1000 (got "${String(f.headroom)}")`);
  return {
    targetBps: parseBitRate(f.target, '--target'),
    pps: f.pps === undefined || f.pps === '' ? null : parsePacketRate(f.pps, '--pps'),
    hosts: f.hosts === undefined ? 1 : parseCount(f.hosts, '--hosts', 1),
    cores: f.cores === undefined ? null : parseCount(f.cores, '--cores', 1),
    headroomPct: headroom,
  };
}

/** The plan flags stored in a result (`options.plan`, written by `vxtap bench --target`), or null. */
export function storedPlanFlags(r: BenchResult): PlanFlags | null {
  const p = (r.options as { plan?: PlanFlags | null }).plan;
  return p && typeof p === 'object' && typeof p.target === 'string' ? p : null;
}

/** CPU-seconds per unit (Gbit or Mpkt) by category, medians over rounds. */
export interface CpuSplit {
  user: number | null;
  system: number | null;
  softirq: number | null;
  irq: number | null;
  steal: number | null;
}

/** One workload's (bulk or small packets) part of a mode's plan. */
export interface WorkloadPlan {
  /** What the model is read from, e.g. "TCP 4 streams" or "64 B frames at PDR (0.5% loss)". */
  basis: string;
  /** The rate the mode must carry (target x headroom), in `unit`. */
  required: number;
  unit: 'Gbit/s' | 'kpps';
  /** What the mode carried per round. */
  measured: Spread;
  /** True when `required` <= the median measured rate. */
  shown: boolean;
  /** True when the measurement was capped by the load generator, not the dataplane (UDP sender limit). */
  atLeast: boolean;
  /** Machine busy CPU-seconds per unit (Gbit or Mpkt), per round. */
  cpuPerUnit: Spread;
  /** The dataplane processes' share of it (0 for kernel dataplanes). */
  dataplanePerUnit: Spread;
  split: CpuSplit;
  /** Cores at `required` (null when not shown: no extrapolation). */
  cores: Spread | null;
  dataplaneCores: Spread | null;
  /** Kernel and load-generator cores = total - dataplane. */
  kernelCores: Spread | null;
  stealCores: number | null;
}

/** The plan for one mode. */
export interface ModePlan {
  mode: string;
  kind: ModeEntry['kind'];
  /** bare is the reference (no overlay), never a candidate. */
  reference: boolean;
  available: boolean;
  bulk: WorkloadPlan | null;
  smallPackets: WorkloadPlan | null;
  /** Cores per host for everything asked (bulk + small packets), null when a part is not shown. */
  coresPerHost: Spread | null;
  /** Cores above what bare spends for the same load (the overlay's own cost), median. */
  coresOverBare: number | null;
  /** --cores minus coresPerHost (median; min-max as the spread). */
  coresLeft: Spread | null;
  latency: {
    idleP50Us: number | null;
    idleP99Us: number | null;
    loadedP50Us: number | null;
    loadedP99Us: number | null;
    addedIdleP50Us: number | null;
    addedIdleP99Us: number | null;
    addedLoadedP50Us: number | null;
    addedLoadedP99Us: number | null;
  };
  innerMtu: number | null;
  /** What happens to packets larger than the inner MTU (from the MTU sweep). */
  largerPackets: string;
  cluster: { hosts: number; cores: Spread | null; dataplaneCores: Spread | null; aggregateGbps: number } | null;
  meets: boolean;
  /** Why the mode does not meet the target (empty when it does). */
  reasons: string[];
}

/** The whole plan. */
export interface CapacityPlan {
  request: PlanRequest;
  source: { runId: string; startedAt: string; profile: string; rounds: number; cpuModel: string | null; cpuCount: number | null; kernel: string | null; baselineStealRatio: number | null };
  modes: ModePlan[];
  /** The cheapest overlay that meets the target, or null. */
  cheapest: string | null;
  verdict: string;
  assumptions: string[];
}

const med = (s: Spread | null | undefined): number | null => s?.median ?? null;

/** The TCP test the bulk model reads: N streams (many flows, as on a host in a cluster), else 1 stream. */
function bulkSample(s: ModeRoundSample) {
  return s.tcpN ?? s.tcp1;
}

function splitOf(values: { user: number; system: number; softirq: number; irq: number; steal: number }[]): CpuSplit {
  const m = (k: keyof CpuSplit) => spreadOf(values.map((v) => v[k])).median;
  return { user: m('user'), system: m('system'), softirq: m('softirq'), irq: m('irq'), steal: m('steal') };
}

function bulkPlan(r: BenchResult, mode: string, requiredGbps: number): WorkloadPlan | null {
  const rows = perRound(r, mode, (s) => (bulkSample(s) ? 1 : null));
  if (!rows.some((x) => x !== null)) return null;
  const streams = r.samples.find((s) => s.mode === mode && bulkSample(s))?.tcpN ? r.profile.tcpStreams : 1;
  const gbps = perRound(r, mode, (s) => {
    const t = bulkSample(s);
    return t ? t.receivedBps / 1e9 : null;
  });
  const gbit = (s: ModeRoundSample) => {
    const t = bulkSample(s);
    return t ? (t.receivedBps * t.seconds) / 1e9 : 0;
  };
  const perGbit = (s: ModeRoundSample, secs: number | undefined) => (gbit(s) > 0 && secs !== undefined ? secs / gbit(s) : null);
  const cpuPerUnit = spreadOf(perRound(r, mode, (s) => perGbit(s, bulkSample(s)?.cpu.machine.busySeconds)));
  const dataplanePerUnit = spreadOf(perRound(r, mode, (s) => perGbit(s, bulkSample(s)?.cpu.dataplaneSeconds)));
  const split = splitOf(
    r.samples
      .filter((s) => s.mode === mode && bulkSample(s) && gbit(s) > 0)
      .map((s) => {
        const c = (bulkSample(s) as NonNullable<ReturnType<typeof bulkSample>>).cpu.machine;
        const g = gbit(s);
        // results written before irqSeconds was recorded have none
        return { user: c.userSeconds / g, system: c.systemSeconds / g, softirq: c.softirqSeconds / g, irq: ((c.irqSeconds as number | undefined) ?? 0) / g, steal: c.stealSeconds / g };
      }),
  );
  const measured = spreadOf(gbps);
  return workload(`TCP ${streams} stream${streams > 1 ? 's' : ''}`, requiredGbps, 'Gbit/s', measured, false, cpuPerUnit, dataplanePerUnit, split, requiredGbps);
}

function workload(
  basis: string,
  required: number,
  unit: WorkloadPlan['unit'],
  measured: Spread,
  atLeast: boolean,
  cpuPerUnit: Spread,
  dataplanePerUnit: Spread,
  split: CpuSplit,
  unitsPerSecond: number,
): WorkloadPlan {
  const shown = measured.median !== null && required <= measured.median;
  const cores = shown && cpuPerUnit.median !== null ? scaleSpread(cpuPerUnit, unitsPerSecond) : null;
  const dataplaneCores = shown && dataplanePerUnit.median !== null ? scaleSpread(dataplanePerUnit, unitsPerSecond) : null;
  const kernelCores = cores && dataplaneCores ? { n: cores.n, median: (cores.median ?? 0) - (dataplaneCores.median ?? 0), min: null, max: null } : cores;
  return {
    basis,
    required,
    unit,
    measured,
    shown,
    atLeast,
    cpuPerUnit,
    dataplanePerUnit,
    split,
    cores,
    dataplaneCores,
    kernelCores,
    stealCores: shown && split.steal !== null ? split.steal * unitsPerSecond : null,
  };
}

function smallPacketPlan(r: BenchResult, mode: string, pps: number): WorkloadPlan | null {
  const frames = [...new Set(r.samples.filter((s) => s.mode === mode).flatMap((s) => s.udp.filter((u) => u.search).map((u) => u.frameBytes)))].sort((a, b) => a - b);
  if (frames.length === 0) return null;
  const frame = frames[0];
  const udp = (s: ModeRoundSample) => s.udp.find((u) => u.frameBytes === frame && u.search) ?? null;
  const kpps = perRound(r, mode, (s) => {
    const p = udp(s)?.search?.pdr.ratePps;
    return p === null || p === undefined ? null : p / 1000;
  });
  const atLeast = r.samples.some((s) => s.mode === mode && udp(s)?.search?.senderLimited);
  const cpuPerUnit = spreadOf(perRound(r, mode, (s) => udp(s)?.cpuSecondsPerMpkt));
  const dataplanePerUnit = spreadOf(perRound(r, mode, (s) => udp(s)?.dataplaneCpuSecondsPerMpkt));
  const split = splitOf(
    r.samples
      .filter((s) => s.mode === mode)
      .flatMap((s) => {
        const u = udp(s);
        const c = u?.cpuAtPdr?.machine;
        const mpkt = c && u.cpuSecondsPerMpkt ? c.busySeconds / u.cpuSecondsPerMpkt : 0;
        return c && mpkt > 0
          ? [{ user: c.userSeconds / mpkt, system: c.systemSeconds / mpkt, softirq: c.softirqSeconds / mpkt, irq: ((c.irqSeconds as number | undefined) ?? 0) / mpkt, steal: c.stealSeconds / mpkt }]
          : [];
      }),
  );
  return workload(`${frame} B frames at PDR (0.5% loss)`, pps / 1000, 'kpps', spreadOf(kpps), atLeast, cpuPerUnit, dataplanePerUnit, split, pps / 1e6);
}

function latencyOf(r: BenchResult, mode: string | null, cond: 'idle' | 'loaded', p: 'p50Us' | 'p99Us'): number | null {
  if (!mode) return null;
  return spreadOf(perRound(r, mode, (s) => (cond === 'idle' ? s.latencyIdle : s.latencyLoaded)?.percentiles[p])).median;
}

/** What happens to inner packets above the inner MTU, read from the mode's MTU sweep. */
export function largerPacketsOf(r: BenchResult, mode: string): { innerMtu: number | null; text: string } {
  const s = r.samples.find((x) => x.mode === mode && x.innerMtu !== null);
  const innerMtu = s?.innerMtu ?? null;
  const mtu = r.samples.find((x) => x.mode === mode && x.mtu)?.mtu ?? null;
  if (!mtu) return { innerMtu, text: 'not measured (no MTU sweep in this run)' };
  const conf = mtu.sweeps.find((w) => w.config === 'configured') ?? mtu.sweeps.at(0);
  const limit = conf?.innerMtu ?? innerMtu;
  const over = (conf?.probes ?? []).filter((p) => limit !== null && p.ipBytes > limit);
  const parts: string[] = [];
  for (const df of [true, false]) {
    const outcomes = [...new Set(over.filter((p) => p.df === df).map((p) => p.outcome))];
    if (outcomes.length) parts.push(`${df ? 'DF set' : 'DF unset'}: ${outcomes.join(', ')}`);
  }
  const raised = mtu.sweeps.find((w) => w.config === 'raised');
  if (raised && raised.largestWholeDf !== null && innerMtu !== null && raised.largestWholeDf > innerMtu)
    parts.push(`the tunnel carries up to ${raised.largestWholeDf} B whole if the inner MTU is raised`);
  else if (raised) parts.push(`raising the inner MTU gains nothing whole (largest ${raised.largestWholeDf ?? 'none'} B)`);
  return { innerMtu, text: parts.length ? `above ${String(limit)} B: ${parts.join('; ')}` : `no probe above ${String(limit)} B` };
}

/** The capacity plan for `req` from result `r`. */
export function planCapacity(r: BenchResult, req: PlanRequest): CapacityPlan {
  const k = 1 + req.headroomPct / 100;
  const requiredGbps = (req.targetBps * k) / 1e9;
  const requiredPps = req.pps !== null ? req.pps * k : null;
  const bare = modeOfKind(r, 'bare');
  const modes: ModePlan[] = [];
  for (const m of r.modes) {
    const reference = m.kind === 'bare';
    const reasons: string[] = [];
    if (!m.available) {
      modes.push({
        mode: m.id,
        kind: m.kind,
        reference,
        available: false,
        bulk: null,
        smallPackets: null,
        coresPerHost: null,
        coresOverBare: null,
        coresLeft: null,
        latency: { idleP50Us: null, idleP99Us: null, loadedP50Us: null, loadedP99Us: null, addedIdleP50Us: null, addedIdleP99Us: null, addedLoadedP50Us: null, addedLoadedP99Us: null },
        innerMtu: null,
        largerPackets: 'not measured',
        cluster: null,
        meets: false,
        reasons: [`unavailable in this run: ${m.unavailableReason ?? 'no reason recorded'}`],
      });
      continue;
    }
    const bulk = bulkPlan(r, m.id, requiredGbps);
    const small = requiredPps !== null ? smallPacketPlan(r, m.id, requiredPps) : null;
    if (!bulk) reasons.push('no TCP measurement in this run');
    else if (!bulk.shown) reasons.push(`${fmtNum(requiredGbps)} Gbit/s not shown by this run (${bulk.basis} carried ${fmtSpread(bulk.measured, 'Gbit/s')})`);
    else if (!bulk.cores) reasons.push('no CPU measurement for the TCP test');
    if (requiredPps !== null) {
      if (!small) reasons.push('no small-packet (UDP) measurement in this run');
      else if (!small.shown)
        reasons.push(`${fmtNum(requiredPps / 1000)} kpps not shown by this run (${small.basis}: ${fmtSpread(small.measured, 'kpps')}${small.atLeast ? ', capped by the load generator' : ''})`);
      else if (!small.cores) reasons.push('no CPU measurement at PDR');
    }
    const parts = [bulk?.cores ?? null, ...(requiredPps !== null ? [small?.cores ?? null] : [])];
    const coresPerHost = parts.every((p) => p && p.median !== null) ? sumSpreads(parts as Spread[]) : null;
    const dpParts = [bulk?.dataplaneCores ?? null, ...(requiredPps !== null ? [small?.dataplaneCores ?? null] : [])];
    const dataplaneCores = dpParts.every((p) => p && p.median !== null) ? sumSpreads(dpParts as Spread[]) : null;
    const coresLeft =
      coresPerHost && req.cores !== null
        ? {
            n: coresPerHost.n,
            median: req.cores - (coresPerHost.median ?? 0),
            min: coresPerHost.max !== null ? req.cores - coresPerHost.max : null,
            max: coresPerHost.min !== null ? req.cores - coresPerHost.min : null,
          }
        : null;
    if (coresLeft && coresLeft.median < 0) reasons.push(`needs ${fmtNum(coresPerHost?.median)} cores per host, more than --cores ${String(req.cores)}`);
    const mtuInfo = largerPacketsOf(r, m.id);
    const lat = {
      idleP50Us: latencyOf(r, m.id, 'idle', 'p50Us'),
      idleP99Us: latencyOf(r, m.id, 'idle', 'p99Us'),
      loadedP50Us: latencyOf(r, m.id, 'loaded', 'p50Us'),
      loadedP99Us: latencyOf(r, m.id, 'loaded', 'p99Us'),
    };
    const added = (v: number | null, cond: 'idle' | 'loaded', p: 'p50Us' | 'p99Us') => {
      const b = latencyOf(r, bare, cond, p);
      return v !== null && b !== null ? v - b : null;
    };
    modes.push({
      mode: m.id,
      kind: m.kind,
      reference,
      available: true,
      bulk,
      smallPackets: small,
      coresPerHost,
      coresOverBare: null,
      coresLeft,
      latency: {
        ...lat,
        addedIdleP50Us: added(lat.idleP50Us, 'idle', 'p50Us'),
        addedIdleP99Us: added(lat.idleP99Us, 'idle', 'p99Us'),
        addedLoadedP50Us: added(lat.loadedP50Us, 'loaded', 'p50Us'),
        addedLoadedP99Us: added(lat.loadedP99Us, 'loaded', 'p99Us'),
      },
      innerMtu: mtuInfo.innerMtu,
      largerPackets: mtuInfo.text,
      cluster: coresPerHost
        ? {
            hosts: req.hosts,
            cores: scaleSpread(coresPerHost, req.hosts),
            dataplaneCores: dataplaneCores ? scaleSpread(dataplaneCores, req.hosts) : null,
            aggregateGbps: (req.targetBps / 1e9) * req.hosts,
          }
        : null,
      meets: reasons.length === 0 && !reference,
      reasons,
    });
  }
  const barePlan = modes.find((p) => p.reference && p.coresPerHost);
  for (const p of modes) if (barePlan?.coresPerHost?.median != null && p.coresPerHost?.median != null) p.coresOverBare = p.coresPerHost.median - barePlan.coresPerHost.median;
  const candidates = modes
    .filter((p) => p.meets)
    .sort((a, b) => (a.coresPerHost?.median ?? Infinity) - (b.coresPerHost?.median ?? Infinity) || (a.latency.idleP50Us ?? Infinity) - (b.latency.idleP50Us ?? Infinity));
  const cheapest = candidates[0]?.mode ?? null;
  for (const p of candidates.slice(1))
    p.reasons.push(`meets the target but costs ${fmtNum((p.coresPerHost?.median ?? 0) - (candidates[0].coresPerHost?.median ?? 0))} more cores per host than ${cheapest}`);
  for (const p of modes) if (p.reference) p.reasons.unshift('reference: no overlay');
  const target = `${fmtNum(req.targetBps / 1e9)} Gbit/s${req.pps !== null ? ` and ${fmtNum(req.pps / 1000)} kpps` : ''} per host${req.headroomPct ? ` with ${req.headroomPct}% headroom` : ''}`;
  const verdict = cheapest
    ? `${cheapest} is the cheapest overlay that carries ${target}: ${fmtSpread(candidates[0].coresPerHost, 'cores')} per host${req.hosts > 1 ? `, ${fmtNum(candidates[0].cluster?.cores?.median ?? null)} cores for ${req.hosts} hosts` : ''}.`
    : `No overlay in this run is shown to carry ${target}.`;
  const env = r.environment;
  return {
    request: req,
    source: {
      runId: r.runId,
      startedAt: r.startedAt,
      profile: r.options.profile,
      rounds: r.options.rounds,
      cpuModel: env?.cpuModel ?? null,
      cpuCount: env?.cpuCount ?? null,
      kernel: env?.kernel ?? null,
      baselineStealRatio: env?.baselineStealRatio ?? null,
    },
    modes,
    cheapest,
    verdict,
    assumptions: [
      "CPU is linear in rate within the measured range: cores = measured CPU-seconds per Gbit (per Mpkt) x rate, round by round; medians with the rounds' min-max. Below the measured rate batching is weaker, so cores at low rates are a lower bound.",
      'Nothing is extrapolated: a rate above the median a mode carried in this run is "not shown by this run".',
      `Bulk is read from the TCP ${r.profile.tcpStreams}-stream test (1 stream where N is missing); small packets from the smallest UDP frame at PDR (0.5% loss). Bulk and small-packet loads add.`,
      `${r.topology.kind === 'netns-veth' ? "The bench's two hosts share one machine" : 'The CPU figures sum the two hosts'}: the measured CPU is one encapsulation and one decapsulation per bit plus the iperf3 load generators, so a host that sends and receives the target pays that figure at that rate (an upper bound for the overlay's own cost; the dataplane column is that cost alone for userspace dataplanes, and "over bare" subtracts what bare spends for the same load).`,
      `The measured hosts' CPU (${env?.cpuModel ?? 'unknown model'}, ${env?.cpuCount ?? '?'} CPUs, kernel ${env?.kernel ?? '?'}); other CPUs scale by their per-core speed. Steal as measured (baseline ${env?.baselineStealRatio != null ? `${(env.baselineStealRatio * 100).toFixed(1)}%` : 'n/a'}); on a busier host steal adds cores.`,
      `Headroom ${req.headroomPct}%: the plan is made for the target x ${k.toFixed(2)}.`,
    ],
  };
}

function sumSpreads(parts: Spread[]): Spread {
  const add = (f: 'median' | 'min' | 'max') => (parts.every((p) => p[f] !== null) ? parts.reduce((t, p) => t + (p[f] as number), 0) : null);
  return { n: Math.min(...parts.map((p) => p.n)), median: add('median'), min: add('min'), max: add('max') };
}

function mdTable(header: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [`| ${header.map(esc).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.map(esc).join(' | ')} |`)].join('\n');
}

const signed = (v: number | null) => (v === null ? 'n/a' : `${v >= 0 ? '+' : ''}${fmtNum(v)}`);

/** The plan as Markdown. */
export function renderPlanMarkdown(p: CapacityPlan): string {
  const q = p.request;
  const lines: string[] = [];
  lines.push(
    `# Capacity plan: ${fmtNum(q.targetBps / 1e9)} Gbit/s per host${q.pps !== null ? `, ${fmtNum(q.pps / 1000)} kpps` : ''}${q.hosts > 1 ? `, ${q.hosts} hosts` : ''}${q.cores !== null ? `, ${q.cores} cores per host` : ''}${q.headroomPct ? `, ${q.headroomPct}% headroom` : ''}`,
  );
  lines.push('');
  lines.push(
    `From run \`${p.source.runId}\` (${p.source.profile} profile, ${p.source.rounds} round(s), ${p.source.cpuModel ?? 'unknown CPU'} x ${p.source.cpuCount ?? '?'}, kernel ${p.source.kernel ?? '?'}).`,
  );
  lines.push('');
  lines.push(`**${p.verdict}**`);
  lines.push('');
  lines.push('## Per mode');
  lines.push('');
  lines.push(
    mdTable(
      [
        'mode',
        `${fmtNum(p.modes[0]?.bulk?.required ?? q.targetBps / 1e9)} Gbit/s shown?`,
        'measured',
        'bulk cores',
        ...(q.pps !== null ? ['small-packet cores'] : []),
        'cores/host (min–max)',
        'dataplane',
        'kernel + load gen',
        'steal',
        'over bare',
        q.cores !== null ? `left of ${q.cores}` : 'cores left',
        'verdict',
      ],
      p.modes.map((m) => [
        m.mode,
        m.bulk ? (m.bulk.shown ? 'yes' : 'not shown by this run') : 'no data',
        m.bulk ? fmtSpread(m.bulk.measured, 'Gbit/s') : 'n/a',
        fmtSpread(m.bulk?.cores),
        ...(q.pps !== null ? [m.smallPackets ? (m.smallPackets.shown ? fmtSpread(m.smallPackets.cores) : 'not shown by this run') : 'no data'] : []),
        fmtSpread(m.coresPerHost),
        fmtSpread(sumOrNull(m.bulk?.dataplaneCores, m.smallPackets?.dataplaneCores, q.pps !== null)),
        fmtNum(sumMed(m.bulk?.kernelCores, m.smallPackets?.kernelCores, q.pps !== null)),
        fmtNum(sumMedNum(m.bulk?.stealCores, m.smallPackets?.stealCores, q.pps !== null)),
        signed(m.coresOverBare),
        m.coresLeft ? fmtSpread(m.coresLeft) : 'n/a',
        m.mode === p.cheapest ? '**cheapest**' : m.meets ? 'meets' : m.reference ? 'reference' : 'does not meet',
      ]),
    ),
  );
  if (q.pps !== null) {
    lines.push('');
    lines.push('## Small packets');
    lines.push('');
    lines.push(
      mdTable(
        ['mode', 'basis', 'shown?', 'measured', 'CPU-s/Mpkt', 'cores'],
        p.modes
          .filter((m) => m.available)
          .map((m) => [
            m.mode,
            m.smallPackets?.basis ?? 'n/a',
            m.smallPackets ? (m.smallPackets.shown ? 'yes' : 'not shown by this run') : 'no data',
            m.smallPackets ? `${fmtSpread(m.smallPackets.measured, 'kpps')}${m.smallPackets.atLeast ? ' (sender-limited: at least)' : ''}` : 'n/a',
            fmtSpread(m.smallPackets?.cpuPerUnit),
            fmtSpread(m.smallPackets?.cores),
          ]),
      ),
    );
  }
  lines.push('');
  lines.push('## CPU per Gbit (bulk model)');
  lines.push('');
  lines.push(
    mdTable(
      ['mode', 'CPU-s/Gbit', 'dataplane', 'user', 'system', 'softirq', 'steal'],
      p.modes
        .filter((m) => m.bulk)
        .map((m) => {
          const b = m.bulk as WorkloadPlan;
          return [m.mode, fmtSpread(b.cpuPerUnit), fmtSpread(b.dataplanePerUnit), fmtNum(b.split.user), fmtNum(b.split.system), fmtNum(b.split.softirq), fmtNum(b.split.steal)];
        }),
    ),
  );
  lines.push('');
  lines.push('## Latency, MTU');
  lines.push('');
  lines.push(
    mdTable(
      ['mode', 'idle p50 / p99 (added over bare)', 'loaded p50 / p99 (added)', 'inner MTU', 'larger packets'],
      p.modes
        .filter((m) => m.available)
        .map((m) => [
          m.mode,
          `${fmtNum(m.latency.idleP50Us)} / ${fmtNum(m.latency.idleP99Us)} us (${signed(m.latency.addedIdleP50Us)} / ${signed(m.latency.addedIdleP99Us)})`,
          `${fmtNum(m.latency.loadedP50Us)} / ${fmtNum(m.latency.loadedP99Us)} us (${signed(m.latency.addedLoadedP50Us)} / ${signed(m.latency.addedLoadedP99Us)})`,
          m.innerMtu !== null ? `${m.innerMtu} B` : 'n/a',
          m.largerPackets,
        ]),
    ),
  );
  if (q.hosts > 1) {
    lines.push('');
    lines.push(`## Cluster of ${q.hosts} hosts`);
    lines.push('');
    lines.push(
      mdTable(
        ['mode', 'aggregate', 'cores (min–max)', 'dataplane cores'],
        p.modes.filter((m) => m.cluster).map((m) => [m.mode, `${fmtNum(m.cluster?.aggregateGbps ?? null)} Gbit/s`, fmtSpread(m.cluster?.cores), fmtSpread(m.cluster?.dataplaneCores)]),
      ),
    );
  }
  lines.push('');
  lines.push('## Why not the others');
  lines.push('');
  for (const m of p.modes) if (m.mode !== p.cheapest) lines.push(`- **${m.mode}**: ${m.reasons.join('; ') || 'meets the target'}`);
  lines.push('');
  lines.push('## Assumptions');
  lines.push('');
  for (const a of p.assumptions) lines.push(`- ${a}`);
  lines.push('');
  return lines.join('\n');
}

function sumOrNull(a: Spread | null | undefined, b: Spread | null | undefined, withB: boolean): Spread | null {
  if (!a) return null;
  if (!withB) return a;
  return b ? sumSpreads([a, b]) : null;
}
function sumMed(a: Spread | null | undefined, b: Spread | null | undefined, withB: boolean): number | null {
  return sumMedNum(med(a), med(b), withB);
}
function sumMedNum(a: number | null | undefined, b: number | null | undefined, withB: boolean): number | null {
  if (a === null || a === undefined) return null;
  if (!withB) return a;
  return b === null || b === undefined ? null : a + b;
}
