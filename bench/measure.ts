/**
 * The measurements run against one active mode: TCP bulk (1 and N streams),
 * the UDP NDR/PDR search per inner frame size, request/response latency at idle
 * and under load, and CPU accounting around each. Load generators run on host A
 * (client) towards host B (servers); every load is bounded in time and count.
 */
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { cpuDelta, processTicks, readProcStat, USER_HZ, type CpuDelta, type CpuTimes } from '../src/host/procstat.js';
import type { BenchProcess } from './host.js';
import { parseIperfTcp, parseIperfUdp, tcpClientArgv, udpClientArgv, udpPayloadForFrame, ipPacketForFrame, type TcpResult } from './iperf.js';
import type { ActiveMode } from './modes.js';
import { assessTcp, type Disturbance } from './disturbance.js';
import { searchNdrPdr, type SearchResult } from './ndr.js';
import type { Profile } from './profile.js';
import { percentilesOf, type LatencyPercentiles, type RrClientOutput } from './rr.js';
import { SOCKPERF_SERVER_READY, sockperfRunSeconds, sockperfServerArgv, type LatencyTool } from './sockperf.js';
import type { Topology } from './topology.js';

/** Ports of the servers on host B. */
export const PORTS = { tcp: 5201, udp: 5202, load: 5203, rr: 7000, sockperf: 7001 } as const;

/** The port of each latency tool's server on host B (both can run in one mode-round). */
export function latencyPort(tool: LatencyTool): number {
  return tool === 'sockperf' ? PORTS.sockperf : PORTS.rr;
}

/** CPU used during one measurement. */
export interface CpuSample {
  wallSeconds: number;
  /** Machine-wide CPU-seconds by category (includes the load generators). */
  machine: CpuDelta;
  /** CPU-seconds of the mode's userspace dataplane processes (0 for kernel dataplanes). */
  dataplaneSeconds: number;
  /** Largest resident set (VmRSS) of one dataplane process (one per host) at the end, bytes; 0 for kernel dataplanes. */
  dataplaneRssBytes?: number;
}

/** CPU pinning of the latency client/server. */
export type Pinning = 'cross' | 'same' | 'none';

/** Everything measure functions need. */
export interface MeasureContext {
  topo: Topology;
  mode: ActiveMode;
  profile: Profile;
  repoRoot: string;
  pin: Pinning;
  /** The request/response latency tool measureLatency uses unless told (--latency-tool, the first listed); absent = rr. */
  latencyTool?: LatencyTool;
  /** Every latency tool of the run, whose servers ServerSet starts; absent = [latencyTool]. */
  latencyTools?: LatencyTool[];
  /** True once the run is being aborted: long loops stop early. */
  aborted: () => boolean;
  /** The servers on host B (see ServerSet). */
  servers: ServerSet;
}

interface CpuMark {
  atMs: number;
  stat: CpuTimes;
  ticks: number;
  rssBytes: number;
}

/** Largest VmRSS among `pids` (bytes); 0 when none can be read. */
async function maxRssBytes(pids: number[]): Promise<number> {
  let max = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
      if (m) max = Math.max(max, Number(m[1]) * 1024);
    } catch {
      /* gone */
    }
  }
  return max;
}

async function cpuMark(mode: ActiveMode): Promise<CpuMark> {
  if (mode.sampleCpu) return mode.sampleCpu(); // --hosts: read by the hosts' agents
  const pids = mode.dataplanePids();
  const [stat, ticks, rssBytes] = await Promise.all([readProcStat(), processTicks(pids), maxRssBytes(pids)]);
  return { atMs: Date.now(), stat: stat.total, ticks, rssBytes };
}

function cpuSince(a: CpuMark, b: CpuMark): CpuSample {
  return {
    wallSeconds: (b.atMs - a.atMs) / 1000,
    machine: cpuDelta(a.stat, b.stat),
    dataplaneSeconds: (b.ticks - a.ticks) / USER_HZ,
    dataplaneRssBytes: b.rssBytes,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pinArgv(pin: Pinning, side: 'client' | 'server', argv: string[]): string[] {
  if (pin === 'none') return argv;
  const cpu = pin === 'same' ? 0 : side === 'client' ? 0 : 1;
  return ['taskset', '-c', String(cpu), ...argv];
}

/** Path of the compiled latency tool. */
export function rrScript(repoRoot: string): string {
  return path.join(repoRoot, 'dist', 'bench', 'rr.js');
}

/** Path of the compiled sockperf client wrapper (sockperf.ts). */
export function sockperfScript(repoRoot: string): string {
  return path.join(repoRoot, 'dist', 'bench', 'sockperf.js');
}

/**
 * The servers on host B, watched. iperf3 closes its listening socket after
 * every test and opens it again, and exits for good when that re-listen fails
 * (iperf_run_server returns -2 and main() calls iperf_errexit): a server can be
 * gone, or not yet listening, when the next client connects, which the client
 * sees as "Connection refused". So before each client run the server must be
 * alive and listening again (its "Server listening" lines outnumber its
 * "Accepted connection" lines); one that exited is started again, and the
 * restart, with the exit status and the last words of the old one, is kept in
 * `events` for the sample, never silently.
 */
export class ServerSet {
  private readonly procs = new Map<number, BenchProcess>();
  /** What happened to the servers (restarts with their reason), in order. */
  readonly events: string[] = [];

  constructor(private readonly ctx: Pick<MeasureContext, 'topo' | 'mode' | 'pin' | 'repoRoot' | 'latencyTool' | 'latencyTools'>) {}

  private argv(port: number): string[] {
    const { mode } = this.ctx;
    if (port === PORTS.sockperf) return pinArgv(this.ctx.pin, 'server', sockperfServerArgv(mode.addrB, port));
    if (port === PORTS.rr) return pinArgv(this.ctx.pin, 'server', [process.execPath, rrScript(this.ctx.repoRoot), 'server', '--bind', mode.addrB, '--port', String(port)]);
    // --rcv-timeout: a test whose client died stops after 10 s of silence instead of 120 s.
    return ['iperf3', '-s', '--forceflush', '--rcv-timeout', '10000', '-B', mode.addrB, '-p', String(port)];
  }

  /** Start every server; resolves when all listen. */
  async start(): Promise<void> {
    const tools = this.ctx.latencyTools ?? [this.ctx.latencyTool ?? 'rr'];
    const ports = [PORTS.tcp, PORTS.udp, PORTS.load, ...tools.map(latencyPort)];
    for (const port of ports) this.procs.set(port, this.ctx.topo.b.spawn(this.argv(port)));
    for (const port of ports) await this.ready(port);
  }

  private listening(port: number, p: BenchProcess): boolean {
    const out = p.stdout();
    if (port === PORTS.sockperf) return SOCKPERF_SERVER_READY.test(out);
    if (port === PORTS.rr) return /ready/.test(out);
    return countOf(out, 'Server listening') > countOf(out, 'Accepted connection');
  }

  /**
   * Wait until the server on `port` listens again (at most `timeoutMs`); one
   * that exited is started again once per call and the restart recorded.
   */
  async ready(port: number, timeoutMs = 5000): Promise<void> {
    let p = this.procs.get(port);
    if (!p) throw new Error(`no server on port ${port}`);
    const what = port === PORTS.rr ? 'latency server' : port === PORTS.sockperf ? 'latency server (sockperf)' : `iperf3 server :${port}`;
    let restarted = false;
    const deadline = Date.now() + timeoutMs;
    while (!this.listening(port, p)) {
      if (p.done()) {
        const status = await p.exited;
        const last = (p.stderr().trim() || p.stdout().trim()).split('\n').slice(-2).join(' | ').slice(-300);
        const why = `${what} exited (${status.signal ?? `status ${String(status.code)}`}): ${last || 'no output'}`;
        if (restarted) throw new Error(why);
        this.events.push(`${why}; restarted`);
        p = this.ctx.topo.b.spawn(this.argv(port));
        this.procs.set(port, p);
        restarted = true;
      } else if (Date.now() > deadline) {
        throw new Error(`${what} not listening within ${timeoutMs} ms`);
      }
      await sleep(25);
    }
  }
}

function countOf(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** Start the iperf3 and latency servers on host B; resolves when all listen. */
export async function startServers(ctx: Pick<MeasureContext, 'topo' | 'mode' | 'pin' | 'repoRoot' | 'latencyTool' | 'latencyTools'>): Promise<ServerSet> {
  const servers = new ServerSet(ctx);
  await servers.start();
  return servers;
}

/**
 * Run a client command on host A against the server on `port`: the server is
 * made ready first (see ServerSet), and a failed run is tried once more after
 * the server is ready again (a server still finishing the previous test says
 * "busy"). The error of the last try is returned as the output.
 */
async function clientRun(ctx: MeasureContext, port: number, argv: string[], timeoutMs: number): Promise<string> {
  let last = '';
  for (let attempt = 0; attempt < 2; attempt++) {
    await ctx.servers.ready(port);
    const r = await ctx.topo.a.exec(argv, { allowFail: true, timeoutMs });
    if (r.code === 0) return r.stdout;
    last = r.stdout || r.stderr;
    if (ctx.aborted()) break;
    await sleep(300);
  }
  return last;
}

/** One TCP bulk sample. */
export interface TcpSample extends TcpResult {
  cpu: CpuSample;
  /** Machine busy CPU-seconds per Gbit received. */
  cpuSecondsPerGbit: number | null;
  /** Dataplane CPU-seconds per Gbit received. */
  dataplaneCpuSecondsPerGbit: number | null;
  /** Steal, another process or a throughput dip during the sample (disturbance.ts); absent in older results. */
  disturbance?: Disturbance;
}

/** TCP bulk from A to B with `streams` streams. */
export async function measureTcp(ctx: MeasureContext, streams: number): Promise<TcpSample> {
  const p = ctx.profile;
  const argv = tcpClientArgv({ server: ctx.mode.addrB, port: PORTS.tcp, seconds: p.tcpSeconds, streams, omitSeconds: p.tcpOmitSeconds });
  const a = await cpuMark(ctx.mode);
  const out = await clientRun(ctx, PORTS.tcp, argv, (p.tcpSeconds + p.tcpOmitSeconds + 15) * 1000);
  const b = await cpuMark(ctx.mode);
  const r = parseIperfTcp(out);
  const cpu = cpuSince(a, b);
  // Bits actually carried during the CPU window (receiver goodput x its measured seconds).
  const gbit = (r.receivedBps * r.seconds) / 1e9;
  return {
    ...r,
    cpu,
    cpuSecondsPerGbit: gbit > 0 ? cpu.machine.busySeconds / gbit : null,
    dataplaneCpuSecondsPerGbit: gbit > 0 ? cpu.dataplaneSeconds / gbit : null,
    // Flagged, never dropped: the renderers mark the figures this sample feeds.
    disturbance: assessTcp({ ...r, cpu }, { omitSeconds: p.tcpOmitSeconds }),
  };
}

/** The UDP search at one frame size. */
export interface UdpSample {
  frameBytes: number;
  ipPacketBytes: number;
  payloadBytes: number;
  /** Null when the size was not measured, with the reason in `skipped`. */
  search: SearchResult | null;
  skipped: string | null;
  /** CPU at the trial that established the PDR (or the best passing trial). */
  cpuAtPdr: CpuSample | null;
  /** Machine busy CPU-seconds per million packets received at that trial. */
  cpuSecondsPerMpkt: number | null;
  dataplaneCpuSecondsPerMpkt: number | null;
}

/** NDR/PDR search at one inner frame size. */
export async function measureUdp(ctx: MeasureContext, frameBytes: number): Promise<UdpSample> {
  const p = ctx.profile;
  const payload = udpPayloadForFrame(frameBytes);
  const ipBytes = ipPacketForFrame(frameBytes);
  const base = { frameBytes, ipPacketBytes: ipBytes, payloadBytes: payload };
  if (ipBytes > ctx.mode.innerMtu) {
    return { ...base, search: null, skipped: `inner packet ${ipBytes} B exceeds the inner MTU ${ctx.mode.innerMtu} B`, cpuAtPdr: null, cpuSecondsPerMpkt: null, dataplaneCpuSecondsPerMpkt: null };
  }
  let trialNo = 0;
  const search = await searchNdrPdr(
    async (pps) => {
      if (ctx.aborted()) throw new Error('aborted');
      // The first trial, at the top rate, mostly calibrates (the sender may fall far short): keep it short.
      const seconds = trialNo++ === 0 ? p.udpTrialSeconds / 3 : p.udpTrialSeconds;
      const packets = Math.max(100, Math.round(pps * seconds));
      const argv = udpClientArgv({ server: ctx.mode.addrB, port: PORTS.udp, pps, payload, packets });
      const a = await cpuMark(ctx.mode);
      const out = await clientRun(ctx, PORTS.udp, argv, (p.udpTrialSeconds * 4 + 15) * 1000);
      const b = await cpuMark(ctx.mode);
      const r = parseIperfUdp(out);
      // Let the receiver drain before the next trial so queues start empty.
      await sleep(50);
      return { txPackets: r.txPackets, rxPackets: r.rxPackets, seconds: r.seconds, extra: { lostPackets: r.lostPackets, jitterMs: r.jitterMs, sentBps: r.sentBps, cpu: cpuSince(a, b) } };
    },
    {
      minPps: 1000,
      maxPps: p.udpMaxPps,
      precision: p.udpPrecision,
      maxTrials: p.udpMaxTrials,
      budgetMs: (p.udpMaxTrials * (p.udpTrialSeconds + 0.5) + 1) * 1000,
      trialCostMs: (p.udpTrialSeconds + 0.4) * 1000,
    },
  );
  const pdrRate = search.pdr.ratePps;
  const trial = pdrRate !== null ? search.trials.find((t) => t.offeredPps === pdrRate) : undefined;
  const cpu = (trial?.extra?.cpu as CpuSample | undefined) ?? null;
  const mpkt = trial ? trial.rxPackets / 1e6 : 0;
  return {
    ...base,
    search,
    skipped: null,
    cpuAtPdr: cpu,
    cpuSecondsPerMpkt: cpu && mpkt > 0 ? cpu.machine.busySeconds / mpkt : null,
    dataplaneCpuSecondsPerMpkt: cpu && mpkt > 0 ? cpu.dataplaneSeconds / mpkt : null,
  };
}

/** One latency run. */
export interface LatencySample {
  /** 'idle' or 'loaded'. */
  condition: 'idle' | 'loaded';
  /** Description of the background load (null at idle). */
  load: string | null;
  percentiles: LatencyPercentiles;
  transactionsPerSecond: number;
  /** Encoded HDR histogram (microseconds). */
  histogram: string;
  pinning: Pinning;
  /** The tool that measured (--latency-tool); absent in older results (= rr). */
  tool?: LatencyTool;
  error: string | null;
}

/** Request/response latency with `tool` (default the context's); `loadBps` adds a paced TCP stream A->B (bits/s, 0 = unpaced). */
export async function measureLatency(ctx: MeasureContext, condition: 'idle' | 'loaded', loadBps?: number, tool: LatencyTool = ctx.latencyTool ?? 'rr'): Promise<LatencySample> {
  const p = ctx.profile;
  const seconds = condition === 'idle' ? p.latencySeconds : p.latencyLoadedSeconds;
  const port = latencyPort(tool);
  // sockperf runs whole seconds and leaves its first 400 ms out (sockperf.ts): the load covers its whole run.
  const toolSeconds = tool === 'sockperf' ? sockperfRunSeconds(seconds) : seconds;
  let load: BenchProcess | null = null;
  let loadDesc: string | null = null;
  if (condition === 'loaded') {
    await ctx.servers.ready(PORTS.load);
    const bitrate = loadBps && loadBps > 0 ? String(Math.round(loadBps)) : undefined;
    const argv = tcpClientArgv({ server: ctx.mode.addrB, port: PORTS.load, seconds: Math.ceil(toolSeconds + 1), streams: 1, bitrate });
    loadDesc = `iperf3 TCP 1 stream A->B ${bitrate ? `paced at ${(Number(bitrate) / 1e9).toFixed(2)} Gbit/s` : 'unpaced'}`;
    load = ctx.topo.a.spawn(argv);
    await sleep(300);
  }
  try {
    await ctx.servers.ready(port);
    // Both clients print one RrClientOutput line with the same HDR histogram; the sockperf wrapper's child inherits the pinning.
    const script = tool === 'sockperf' ? sockperfScript(ctx.repoRoot) : rrScript(ctx.repoRoot);
    const argv = pinArgv(ctx.pin, 'client', [process.execPath, script, 'client', '--host', ctx.mode.addrB, '--port', String(port), '--seconds', String(seconds)]);
    const r = await ctx.topo.a.exec(argv, { allowFail: true, timeoutMs: (toolSeconds + 15) * 1000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    let out: RrClientOutput;
    try {
      out = JSON.parse(line) as RrClientOutput;
    } catch {
      throw new Error(`latency client (${tool}) printed no JSON (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
    }
    if (out.count === 0) throw new Error(`latency client (${tool}) got no responses: ${out.error ?? 'unknown'}`);
    return {
      condition,
      load: loadDesc,
      percentiles: percentilesOf(out.histogram),
      transactionsPerSecond: out.transactionsPerSecond,
      histogram: out.histogram,
      pinning: ctx.pin,
      tool,
      error: out.error ?? null,
    };
  } finally {
    if (load) await load.stop(1000);
  }
}
