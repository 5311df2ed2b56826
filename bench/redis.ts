/**
 * A database over the overlay ("a few milliseconds between hosts kill
 * database performance"): Debian's `redis-server` on host B, bound to B's
 * overlay address, and `redis-benchmark` on host A through the mode: SET and
 * GET, one connection, pipelining off (-P 1), a request count sized to a time
 * bound from the measured RTT, ops/s and latency percentiles from its CSV
 * output. Idle and under a background iperf3 TCP flow through the same
 * overlay (bounded). Where the kernel has netem and the topology is the local
 * namespace pair, the added underlay RTT is swept (0, 1, 2, 3, 5 ms; half on
 * each end) to show where ops/s falls; where it has not, the result says so
 * and keeps the undelayed figures with the measured RTT beside them. On
 * --hosts the RTT is what it is (the agent starts redis-server on B through
 * the same BenchHost face; B needs redis-server installed).
 *
 * redis-server runs in the foreground with `--save '' --appendonly no`, its
 * directory in the run's state directory, so `vxtap bench --cleanup` finds it;
 * it is stopped at the end of the measurement and with the topology.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BenchHost, BenchProcess } from './host.js';
import type { ActiveMode } from './modes.js';
import type { BenchResult, Claim } from './result.js';
import type { Topology } from './topology.js';
import { tcpClientArgv } from './iperf.js';

/** Port of redis-server on host B. */
export const REDIS_PORT = 6390;
/** Added round-trip times of the netem sweep, ms (0 = the idle figure). */
export const REDIS_RTT_SWEEP_MS = [0, 1, 2, 3, 5] as const;
/** "Kills": ops/s at or below this share of the undelayed figure. */
export const REDIS_KILL_SHARE = 0.5;
/** "A few milliseconds": the largest added RTT the claim is judged at, ms. */
export const REDIS_FEW_MS = 3;

/** One line of `redis-benchmark --csv`. */
export interface RedisBenchLine {
  test: string;
  rps: number;
  avgMs: number;
  minMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Bounds of the redis measurement (per profile). */
export interface RedisPlan {
  /** Target seconds per test (SET, GET): the request count is sized from a short calibration run (`calibrationRequests` GETs). */
  secondsPerTest: number;
  calibrationRequests: number;
  minRequests: number;
  maxRequests: number;
  /** Parallel connections (-c). */
  clients: number;
}

/** The bounds per profile. */
export const REDIS_PLANS: Record<'quick' | 'default' | 'full', RedisPlan> = {
  quick: { secondsPerTest: 0.3, calibrationRequests: 50, minRequests: 100, maxRequests: 20_000, clients: 1 },
  default: { secondsPerTest: 1, calibrationRequests: 100, minRequests: 300, maxRequests: 50_000, clients: 1 },
  full: { secondsPerTest: 5, calibrationRequests: 200, minRequests: 1000, maxRequests: 500_000, clients: 1 },
};

/** One benchmark run (SET and GET) under one condition. */
export interface RedisRun {
  condition: 'idle' | 'loaded' | 'delayed';
  /** Added RTT on the underlay by netem, ms (0 when none). */
  addedRttMs: number;
  /** ping RTT between the overlay addresses just before, ms (average of 10 pings), null if ping failed. */
  rttMs: number | null;
  /** The smallest of those pings, ms (the path without scheduling noise). */
  rttMinMs: number | null;
  /** GET ops/s of the calibration run that sized `requests` (null if it failed). */
  calibrationRps: number | null;
  /** Background load description (loaded only). */
  load: string | null;
  requests: number;
  set: RedisBenchLine | null;
  get: RedisBenchLine | null;
  error: string | null;
}

/** The redis result of one mode. */
export interface RedisResult {
  serverVersion: string | null;
  benchmarkVersion: string | null;
  argv: string[];
  plan: RedisPlan;
  /** Pipelining depth (always 1: off). */
  pipeline: 1;
  runs: RedisRun[];
  /** Why the added-RTT sweep did not run (no netem, --hosts, --delay given), or null when it ran. */
  sweepSkipped: string | null;
  /** Why nothing was measured, or null. */
  skipped: string | null;
  /** Wall time of the whole measurement, s. */
  durationSeconds?: number;
}

function unquote(s: string): string {
  const t = s.trim();
  return t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).replace(/""/g, '"') : t;
}

/**
 * Parse `redis-benchmark --csv` output (redis 7: header
 * "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms").
 * Columns are found by header name; lines that are not data rows are ignored.
 * Throws when no header is found.
 */
export function parseRedisCsv(text: string): RedisBenchLine[] {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const hi = lines.findIndex((l) => {
    const cells = l.split(',').map(unquote);
    return cells.includes('test') && cells.includes('rps');
  });
  if (hi < 0) throw new Error(`redis-benchmark --csv: no header line in ${JSON.stringify(text.slice(0, 200))}`);
  const header = lines[hi].split(',').map(unquote);
  const col = (name: string) => header.indexOf(name);
  const idx = {
    test: col('test'),
    rps: col('rps'),
    avg: col('avg_latency_ms'),
    min: col('min_latency_ms'),
    p50: col('p50_latency_ms'),
    p95: col('p95_latency_ms'),
    p99: col('p99_latency_ms'),
    max: col('max_latency_ms'),
  };
  if (idx.rps < 0) throw new Error('redis-benchmark --csv: no rps column');
  const out: RedisBenchLine[] = [];
  for (const line of lines.slice(hi + 1)) {
    const cells = line.split(',').map(unquote);
    if (cells.length !== header.length) continue;
    const n = (i: number) => (i >= 0 && cells[i] !== '' && Number.isFinite(Number(cells[i])) ? Number(cells[i]) : NaN);
    const row: RedisBenchLine = { test: cells[idx.test], rps: n(idx.rps), avgMs: n(idx.avg), minMs: n(idx.min), p50Ms: n(idx.p50), p95Ms: n(idx.p95), p99Ms: n(idx.p99), maxMs: n(idx.max) };
    if (!Number.isFinite(row.rps)) continue;
    out.push(row);
  }
  return out;
}

/** Parse ping's summary "rtt min/avg/max/mdev = a/b/c/d ms" into min and avg, ms; nulls when absent. */
export function parsePingRtt(text: string): { minMs: number | null; avgMs: number | null } {
  const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(text);
  return m ? { minMs: Number(m[1]), avgMs: Number(m[2]) } : { minMs: null, avgMs: null };
}

/**
 * Requests per test to fill `plan.secondsPerTest` at the calibrated rate
 * (ops/s); without one, at one request per `fallbackMs` (pure).
 */
export function requestsFor(plan: RedisPlan, calibratedRps: number | null, fallbackMs = 1): number {
  const rps = calibratedRps !== null && calibratedRps > 0 ? calibratedRps : 1000 / fallbackMs;
  const n = Math.round(plan.secondsPerTest * rps);
  return Math.min(plan.maxRequests, Math.max(plan.minRequests, n));
}

/**
 * The smallest added RTT at which GET ops/s fell to REDIS_KILL_SHARE of the
 * undelayed figure or below, null when it never did in the sweep (pure).
 */
export function killPointMs(runs: Pick<RedisRun, 'condition' | 'addedRttMs' | 'get'>[]): number | null {
  const base = runs.find((x) => x.condition === 'idle')?.get?.rps;
  if (!base) return null;
  const delayed = runs.filter((x) => x.condition === 'delayed' && x.get).sort((a, b) => a.addedRttMs - b.addedRttMs);
  return delayed.find((x) => (x.get as RedisBenchLine).rps <= base * REDIS_KILL_SHARE)?.addedRttMs ?? null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measureRtt(host: BenchHost, dst: string): Promise<{ minMs: number | null; avgMs: number | null }> {
  const r = await host.exec(['ping', '-n', '-q', '-c', '10', '-i', '0.02', '-W', '1', dst], { allowFail: true, timeoutMs: 10_000 });
  return parsePingRtt(r.stdout);
}

/** What the redis measurement needs from the run. */
export interface RedisContext {
  topo: Topology;
  mode: ActiveMode;
  plan: RedisPlan;
  /** A directory for redis-server (local: under the run's state directory; created here). */
  workDir: string;
  /** Null when netem works here, else why not (probed once per run). */
  netemUnavailable: string | null;
  /** The run already delays the underlay (--delay): no sweep. */
  userDelay: string | null;
  /** Another reason not to sweep (the endpoints are pods: the underlay devices are not in their namespaces), or null. */
  noSweep: string | null;
  /** Other netem/tbf arguments of the run to keep during the sweep (loss, rate), or null. */
  baseQdisc: string[] | null;
  /** Background load: the iperf3 server port on B (made ready by the caller) and the pacing, bits/s (0 = unpaced). */
  loadPort: number;
  loadBps: number;
  /** Called before the background load starts (the iperf3 server is ready). */
  loadReady: () => Promise<void>;
  /** taskset prefix of the client (pinning), or []. */
  pinClient: string[];
  /**
   * CPU of redis-server (its own `server_cpulist`, not taskset: redis rewrites its
   * process title to "redis-server ADDR:PORT", and --cleanup recognises a recorded
   * process by its first argv word), or null.
   */
  serverCpu: string | null;
  aborted: () => boolean;
}

/** Measure redis through one mode. Never leaves redis-server or the load running. */
export async function measureRedis(ctx: RedisContext): Promise<RedisResult> {
  const { topo, mode, plan } = ctx;
  const { a, b } = topo;
  const started = Date.now();
  const result: RedisResult = { serverVersion: null, benchmarkVersion: null, argv: [], plan, pipeline: 1, runs: [], sweepSkipped: null, skipped: null };
  const sv = await b.exec(['redis-server', '--version'], { allowFail: true });
  const bv = await a.exec(['redis-benchmark', '--version'], { allowFail: true });
  if (sv.code !== 0 || bv.code !== 0) {
    result.skipped = sv.code !== 0 ? `host B has no redis-server (apt-get install redis-server)` : `host A has no redis-benchmark (apt-get install redis-tools)`;
    return result;
  }
  result.serverVersion = /v=(\S+)/.exec(sv.stdout)?.[1] ?? sv.stdout.trim();
  result.benchmarkVersion = /redis-benchmark (\S+)/.exec(bv.stdout)?.[1] ?? bv.stdout.trim();
  if (!topo.remote) mkdirSync(ctx.workDir, { recursive: true });
  const serverArgv = [
    'redis-server',
    ...(ctx.serverCpu !== null ? ['--server_cpulist', ctx.serverCpu] : []),
    '--port',
    String(REDIS_PORT),
    '--bind',
    mode.addrB,
    '--protected-mode',
    'no',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    ctx.workDir,
    '--logfile',
    '',
    '--daemonize',
    'no',
  ];
  let server: BenchProcess | null = null;
  let swept = false;
  try {
    server = b.spawn(serverArgv);
    const deadline = Date.now() + 5000;
    while (!/Ready to accept connections/.test(server.stdout())) {
      if (server.done()) throw new Error(`redis-server exited: ${(server.stdout() + server.stderr()).trim().split('\n').slice(-2).join(' | ')}`);
      if (Date.now() > deadline) throw new Error('redis-server not ready within 5 s');
      await sleep(20);
    }
    const bench = async (condition: RedisRun['condition'], addedRttMs: number, load: string | null): Promise<RedisRun> => {
      const rtt = await measureRtt(a, mode.addrB);
      const argvFor = (n: number, tests: string) => [
        ...ctx.pinClient,
        'redis-benchmark',
        '-h',
        mode.addrB,
        '-p',
        String(REDIS_PORT),
        '-c',
        String(plan.clients),
        '-n',
        String(n),
        '-P',
        '1',
        '-r',
        '10000',
        '-t',
        tests,
        '--csv',
        '--precision',
        '3',
      ];
      // Calibration: a few GETs under the same condition size the run to the time bound.
      const fallbackMs = (rtt.minMs ?? 1) + addedRttMs + 0.1;
      const cal = await a.exec(argvFor(plan.calibrationRequests, 'get'), { allowFail: true, timeoutMs: Math.round(plan.calibrationRequests * fallbackMs * 20) + 10_000 });
      let calibrationRps: number | null = null;
      try {
        calibrationRps = parseRedisCsv(cal.stdout).find((x) => x.test === 'GET')?.rps ?? null;
      } catch {
        /* sized from the RTT instead */
      }
      const requests = requestsFor(plan, calibrationRps, fallbackMs);
      const argv = argvFor(requests, 'set,get');
      result.argv = argv;
      // Bound: five times the expected time, plus start-up; killed beyond it.
      const expectS = (2 * requests) / (calibrationRps && calibrationRps > 0 ? calibrationRps : 1000 / fallbackMs);
      const r = await a.exec(argv, { allowFail: true, timeoutMs: Math.round(5 * expectS * 1000) + 10_000 });
      const run: RedisRun = { condition, addedRttMs, rttMs: rtt.avgMs, rttMinMs: rtt.minMs, calibrationRps, load, requests, set: null, get: null, error: null };
      try {
        const rows = parseRedisCsv(r.stdout);
        run.set = rows.find((x) => x.test === 'SET') ?? null;
        run.get = rows.find((x) => x.test === 'GET') ?? null;
        if (!run.set || !run.get) run.error = `redis-benchmark printed no ${run.set ? 'GET' : 'SET'} row`;
      } catch (err) {
        run.error = `${(err as Error).message}; exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`;
      }
      return run;
    };
    result.runs.push(await bench('idle', 0, null));
    if (ctx.aborted()) return result;
    // Under background load: one iperf3 TCP flow A -> B through the same overlay, bounded in time.
    {
      await ctx.loadReady();
      const idle = result.runs[0];
      const expectS = idle.get && idle.set ? (2 * idle.requests) / Math.max(1, Math.min(idle.get.rps, idle.set.rps)) : 4;
      const seconds = Math.min(30, Math.ceil(expectS * 2 + 3));
      const bitrate = ctx.loadBps > 0 ? String(Math.round(ctx.loadBps)) : undefined;
      const loadArgv = tcpClientArgv({ server: mode.addrB, port: ctx.loadPort, seconds, streams: 1, bitrate });
      const desc = `iperf3 TCP 1 stream A->B ${bitrate ? `paced at ${(Number(bitrate) / 1e9).toFixed(2)} Gbit/s` : 'unpaced'}, at most ${seconds} s`;
      const load = a.spawn(loadArgv);
      try {
        await sleep(300);
        result.runs.push(await bench('loaded', 0, load.done() ? `${desc} (exited early: ${load.stdout().slice(-200)})` : desc));
      } finally {
        await load.stop(1000);
      }
    }
    if (topo.remote) result.sweepSkipped = "on --hosts the RTT is what it is (the hosts' underlay is never changed)";
    else if (ctx.netemUnavailable) result.sweepSkipped = `no netem on this kernel (${ctx.netemUnavailable}): no added-RTT sweep; undelayed figures with the measured RTT`;
    else if (ctx.userDelay) result.sweepSkipped = `the run already delays the underlay (--delay ${ctx.userDelay})`;
    else if (ctx.noSweep) result.sweepSkipped = ctx.noSweep;
    else {
      swept = true;
      for (const added of REDIS_RTT_SWEEP_MS.filter((x) => x > 0)) {
        if (ctx.aborted()) break;
        const half = `${(added / 2).toFixed(1)}ms`;
        const qdisc = ['netem', 'delay', half, ...stripNetem(ctx.baseQdisc)];
        await a.exec(['tc', 'qdisc', 'replace', 'dev', topo.devA, 'root', ...qdisc]);
        await b.exec(['tc', 'qdisc', 'replace', 'dev', topo.devB, 'root', ...qdisc]);
        result.runs.push(await bench('delayed', added, null));
      }
    }
  } catch (err) {
    result.skipped = (err as Error).message;
  } finally {
    if (swept) {
      for (const [h, dev] of [
        [a, topo.devA],
        [b, topo.devB],
      ] as const) {
        if (ctx.baseQdisc) await h.exec(['tc', 'qdisc', 'replace', 'dev', dev, 'root', ...ctx.baseQdisc], { allowFail: true });
        else await h.exec(['tc', 'qdisc', 'del', 'dev', dev, 'root'], { allowFail: true });
      }
    }
    await server?.stop(2000).catch(() => undefined);
  }
  result.durationSeconds = (Date.now() - started) / 1000;
  return result;
}

/** The run's netem arguments other than the qdisc name and delay (loss, rate), to keep during the sweep. */
function stripNetem(q: string[] | null): string[] {
  if (!q || q[0] !== 'netem') return [];
  const out: string[] = [];
  for (let i = 1; i < q.length; i += 2) if (q[i] !== 'delay') out.push(q[i], q[i + 1]);
  return out;
}

/** Local redis work directory of a mode-round (under the run's state directory, so --cleanup finds the server). */
export function redisWorkDir(runDir: string, modeTag: string): string {
  return path.join(runDir, `redis-${modeTag}`);
}

function opsText(l: RedisBenchLine | null): string {
  return l ? `${l.rps.toFixed(0)} ops/s (p50 ${l.p50Ms.toFixed(3)} / p99 ${l.p99Ms.toFixed(3)} ms)` : 'n/a';
}

/**
 * The claim "a few milliseconds between hosts kill database performance",
 * one row per mode with redis figures: with the netem sweep, held when GET
 * ops/s fell to half or less at an added RTT of at most REDIS_FEW_MS, not held
 * otherwise; without the sweep n/a, with the undelayed figures and RTT.
 */
export function redisClaims(r: Pick<BenchResult, 'modes' | 'samples'>): Claim[] {
  const claims: Claim[] = [];
  const bareId = r.modes.find((m) => m.kind === 'bare' && m.available)?.id;
  const bareGet = bareId ? (r.samples.find((s) => s.mode === bareId && s.redis)?.redis?.runs.find((x) => x.condition === 'idle')?.get?.rps ?? null) : null;
  for (const m of r.modes.filter((x) => x.available)) {
    const rd = r.samples.find((s) => s.mode === m.id && s.redis)?.redis;
    if (!rd) continue;
    const idle = rd.runs.find((x) => x.condition === 'idle');
    const loaded = rd.runs.find((x) => x.condition === 'loaded');
    const delayed = rd.runs.filter((x) => x.condition === 'delayed');
    const kill = killPointMs(rd.runs);
    const parts: string[] = [];
    if (rd.skipped && !idle) parts.push(`not measured: ${rd.skipped}`);
    if (idle)
      parts.push(
        `idle ping RTT min/avg ${idle.rttMinMs?.toFixed(3) ?? 'n/a'}/${idle.rttMs?.toFixed(3) ?? 'n/a'} ms: GET ${opsText(idle.get)}, SET ${opsText(idle.set)}${bareGet && idle.get && m.id !== bareId ? `; GET ${((idle.get.rps / bareGet) * 100).toFixed(0)}% of bare` : ''}`,
      );
    if (loaded) parts.push(`under load: GET ${opsText(loaded.get)}`);
    if (delayed.length) parts.push(`added RTT: ${delayed.map((d) => `+${d.addedRttMs} ms GET ${d.get ? d.get.rps.toFixed(0) : 'n/a'}`).join(', ')}`);
    if (rd.sweepSkipped) parts.push(rd.sweepSkipped);
    const verdict: Claim['verdict'] = delayed.length === 0 || !idle?.get ? 'n/a' : kill !== null && kill <= REDIS_FEW_MS ? 'held' : 'not held';
    claims.push({
      id: `redis-few-ms:${m.id}`,
      claim: `${m.id}: a few milliseconds between hosts kill database performance (redis GET/SET, no pipelining)`,
      measured: parts.join('; '),
      verdict,
      detail: `redis-benchmark -c ${rd.plan.clients} -P 1 -t set,get through the mode; held if GET ops/s falls to ${REDIS_KILL_SHARE * 100}% or less at <= ${REDIS_FEW_MS} ms added RTT (netem sweep ${REDIS_RTT_SWEEP_MS.join(', ')} ms); n/a without the sweep${kill !== null ? `; fell to half at +${kill} ms` : ''}`,
    });
  }
  return claims;
}

/** Markdown lines for summary.md (empty when nothing was measured). */
export function renderRedisMarkdown(r: Pick<BenchResult, 'samples'>, table: (header: string[], rows: string[][]) => string): string[] {
  const rows: string[][] = [];
  const notes = new Set<string>();
  let first: RedisResult | null = null;
  const f = (v: number | undefined, d: number) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
  for (const s of r.samples) {
    const rd = s.redis;
    if (!rd) continue;
    first ??= rd;
    if (rd.skipped) notes.add(`${s.mode}: ${rd.skipped}`);
    if (rd.sweepSkipped) notes.add(rd.sweepSkipped);
    for (const run of rd.runs) {
      rows.push([
        s.mode,
        run.condition === 'delayed' ? `+${run.addedRttMs} ms RTT` : run.condition,
        `${f(run.rttMinMs ?? undefined, 3)} / ${f(run.rttMs ?? undefined, 3)}`,
        f(run.get?.rps, 0),
        `${f(run.get?.p50Ms, 3)} / ${f(run.get?.p95Ms, 3)} / ${f(run.get?.p99Ms, 3)}`,
        f(run.set?.rps, 0),
        `${f(run.set?.p50Ms, 3)} / ${f(run.set?.p95Ms, 3)} / ${f(run.set?.p99Ms, 3)}`,
        String(run.requests),
        run.error ?? '',
      ]);
    }
  }
  if (!rows.length && !notes.size) return [];
  const load = r.samples.flatMap((s) => s.redis?.runs ?? []).find((x) => x.load)?.load;
  return [
    '## Redis over the overlay',
    '',
    rows.length
      ? table(['mode', 'condition', 'ping RTT min / avg (ms)', 'GET ops/s', 'GET p50 / p95 / p99 (ms)', 'SET ops/s', 'SET p50 / p95 / p99 (ms)', 'requests per test', 'error'], rows)
      : 'Not measured.',
    '',
    `redis-server ${first?.serverVersion ?? ''} on host B (no persistence), redis-benchmark ${first?.benchmarkVersion ?? ''} on host A: ${first?.plan.clients ?? 1} connection(s), no pipelining (-P 1), 10000 random keys, 3-byte values, requests sized to ~${first?.plan.secondsPerTest ?? '?'} s per test.${load ? ` Loaded: ${load}.` : ''}${notes.size ? ` ${[...notes].join('. ')}.` : ''}`,
    '',
  ];
}
