/**
 * CPU contention (`vxtap bench --contention PCT`): the "noisy neighbour" the
 * folklore blames for overlay overhead spikes on shared CPU cores.
 *
 * Method: Debian's stress-ng on each host (`stress-ng --cpu N --cpu-load PCT
 * --cpu-method int64 --timeout Ts`, N = the host's CPU count), started after a
 * mode is set up and stopped (process group SIGTERM, then SIGKILL) when its
 * measurements end. Each worker wants PCT% of one CPU, so the hog wants PCT% of
 * the machine and competes for it as a neighbour would (CFS shares), with the
 * load generators, the userspace dataplanes and the kernel's work in process
 * context alike. A cgroup v2 `cpu.max` quota was the alternative; it was not
 * taken because it needs every bench process (iperf3, `vxtap up`,
 * ovs-vswitchd) moved into a cgroup on each host, and softirq work (where
 * kernel VXLAN spends its time) escapes the quota, which would favour the
 * kernel dataplanes for a reason that is the emulation's, not the claim's.
 * The hog is bounded in time (`--timeout`, the mode-round's estimate plus a
 * margin), recorded in the run state (killed by `--cleanup`), and on --hosts
 * started through the agent (killed at the agent's clean-up).
 *
 * The hog's own CPU (utime + stime of its processes) is moved from `user` to
 * `idle` in the CPU samples, so CPU-seconds per Gbit stay the overlay's; what
 * the hog actually took is kept per mode-round (`sample.contention`). Steal
 * (/proc/stat field 8) is left as measured: real steal on a shared host.
 *
 * Every mode runs twice per round, without and with the hog, interleaved; the
 * contended run is a mode variant named `<mode>@cpu<PCT>` whose ratios are
 * taken against `bare@cpu<PCT>` of the same round.
 */
import { readFile } from 'node:fs/promises';
import { processTicks, readProcStat, type CpuTimes } from '../src/host/procstat.js';
import type { BenchHost, BenchProcess } from './host.js';
import type { ActiveMode } from './modes.js';
import type { BenchResult, Claim, Derived, MetricByMode } from './result.js';

/** How the contention is made (recorded in the result). */
export const CONTENTION_METHOD = 'stress-ng --cpu N --cpu-load PCT --cpu-method int64';

/** The contention options recorded in the result. */
export interface ContentionOptions {
  pct: number;
  method: string;
}

/** What the hog did during one mode-round (sample.contention). */
export interface ContentionSample {
  pct: number;
  method: string;
  /** Workers per host (the host's CPU count). */
  workers: number;
  /** CPU-seconds the hog's processes used on all hosts together. */
  hogCpuSeconds: number;
  /** Wall time the hog ran, seconds. */
  wallSeconds: number;
  /** hogCpuSeconds / (wallSeconds x CPUs): the share of the machine(s) it took. */
  achievedShare: number | null;
}

/**
 * Parse `--contention` ("50" or "50%"): a number with 0 < PCT < 100.
 * Returns the number or an Error naming the option.
 */
export function parseContention(text: string): number | Error {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(text);
  const v = m ? Number(m[1]) : NaN;
  if (!Number.isFinite(v) || v <= 0 || v >= 100) return new TypeError(`--contention must be a CPU share in percent, more than 0 and less than 100, e.g. 50 (got "${text}")`);
  return v;
}

/** The id of a mode's contended variant ("vxtap:workers=2" -> "vxtap:workers=2@cpu50"). */
export function contendedId(modeId: string, pct: number): string {
  return `${modeId}@cpu${pct}`;
}

/** The base mode and contention share of a variant id, or null for a plain mode id. */
export function parseContendedId(id: string): { base: string; pct: number } | null {
  const m = /^(.*)@cpu(\d+(?:\.\d+)?)$/.exec(id);
  return m ? { base: m[1], pct: Number(m[2]) } : null;
}

/** The stress-ng argv for `workers` workers at `pct` for at most `seconds`. */
export function hogArgv(workers: number, pct: number, seconds: number): string[] {
  return ['stress-ng', '--cpu', String(workers), '--cpu-load', String(Math.round(pct)), '--cpu-method', 'int64', '--timeout', `${Math.max(1, Math.ceil(seconds))}s`, '--quiet'];
}

/** One host's hog. */
interface HostHog {
  host: BenchHost;
  proc: BenchProcess;
  workers: number;
  /** Pids of the hog's processes (stress-ng and its workers). */
  pids: number[];
}

/** A running hog on one or two hosts. */
export class Hog {
  private readonly startedAt = Date.now();
  private stoppedAt: number | null = null;
  private endTicks: number | null = null;

  private constructor(
    private readonly hogs: HostHog[],
    readonly pct: number,
    private readonly readTicks: (h: HostHog) => Promise<number>,
  ) {}

  /**
   * Start the hog on each of `hosts` (one entry per distinct machine) and wait
   * until its workers run. `readTicks(host, pids)` reads CPU ticks of pids on
   * that host (this machine's /proc, or the host's agent).
   */
  static async start(hosts: { host: BenchHost; cpus: number }[], pct: number, maxSeconds: number, readTicks: (host: BenchHost, pids: number[]) => Promise<number>): Promise<Hog> {
    const hogs: HostHog[] = [];
    const hog = new Hog(hogs, pct, (h) => readTicks(h.host, h.pids));
    try {
      for (const { host, cpus } of hosts) {
        const proc = host.spawn(hogArgv(cpus, pct, maxSeconds));
        const entry: HostHog = { host, proc, workers: cpus, pids: [proc.pid] };
        hogs.push(entry);
        // The workers are children of stress-ng; their pids are needed for the CPU accounting.
        const deadline = Date.now() + 3000;
        for (;;) {
          if (proc.done()) throw new Error(`host ${host.label}: stress-ng exited at once: ${(proc.stderr() || proc.stdout()).trim().slice(0, 300) || 'no output'}`);
          const r = await host.exec(['pgrep', '-P', String(proc.pid)], { allowFail: true });
          const kids = r.stdout.split(/\s+/).filter(Boolean).map(Number);
          if (kids.length >= cpus || Date.now() > deadline) {
            entry.pids = [proc.pid, ...kids];
            break;
          }
          await new Promise((res) => setTimeout(res, 50));
        }
      }
    } catch (err) {
      await hog.stop();
      throw err;
    }
    return hog;
  }

  /** CPU ticks the hog used so far on each host (by host label). */
  async ticksByHost(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const h of this.hogs) out.set(h.host.label, (out.get(h.host.label) ?? 0) + (await this.readTicks(h).catch(() => 0)));
    return out;
  }

  /** CPU ticks the hog used so far on all hosts. */
  async ticks(): Promise<number> {
    if (this.endTicks !== null) return this.endTicks;
    let t = 0;
    for (const v of (await this.ticksByHost()).values()) t += v;
    return t;
  }

  /** Stop the hog (process group); idempotent, never throws. */
  async stop(): Promise<void> {
    if (this.stoppedAt !== null) return;
    this.endTicks = await this.ticks().catch(() => 0);
    this.stoppedAt = Date.now();
    await Promise.all(this.hogs.map((h) => h.proc.stop(1000).catch(() => undefined)));
  }

  /** The record for the sample (call after stop). */
  summary(cpusTotal: number, hz = 100): ContentionSample {
    const wall = ((this.stoppedAt ?? Date.now()) - this.startedAt) / 1000;
    const cpuSeconds = (this.endTicks ?? 0) / hz;
    return {
      pct: this.pct,
      method: CONTENTION_METHOD,
      workers: this.hogs.reduce((n, h) => n + h.workers, 0),
      hogCpuSeconds: cpuSeconds,
      wallSeconds: wall,
      achievedShare: wall > 0 && cpusTotal > 0 ? cpuSeconds / (wall * cpusTotal) : null,
    };
  }
}

/** `t` with `ticks` moved from user (then system) to idle: the hog's CPU taken out of a machine sample. */
export function withoutHog(t: CpuTimes, ticks: number): CpuTimes {
  const fromUser = Math.min(t.user, ticks);
  const fromSystem = Math.min(t.system, ticks - fromUser);
  return { ...t, user: t.user - fromUser, system: t.system - fromSystem, idle: t.idle + fromUser + fromSystem };
}

/**
 * Make the mode's CPU samples leave the hog out. Without its own `sampleCpu`
 * (the namespace pair) the sample is taken here as measure.ts would take it.
 */
export function excludeHogCpu(mode: ActiveMode, hog: Hog): ActiveMode {
  const base = mode.sampleCpu?.bind(mode);
  const sampleCpu = async () => {
    const [m, hogTicks] = await Promise.all([
      base
        ? base()
        : (async () => {
            const pids = mode.dataplanePids();
            const [stat, ticks] = await Promise.all([readProcStat(), processTicks(pids)]);
            return { atMs: Date.now(), stat: stat.total, ticks, rssBytes: await maxRss(pids) };
          })(),
      hog.ticks(),
    ]);
    return { ...m, stat: withoutHog(m.stat, hogTicks) };
  };
  return { ...mode, sampleCpu };
}

async function maxRss(pids: number[]): Promise<number> {
  let max = 0;
  for (const pid of pids) {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''));
    if (m) max = Math.max(max, Number(m[1]) * 1024);
  }
  return max;
}

/** Growth of the overhead over bare (in fraction of bare's throughput) from which the contention claim holds. */
export const CONTENTION_GROWTH_HELD = 0.05;

type ByMode = Derived['byMode'];

function pairwise(a: (number | null)[], b: (number | null)[], f: (x: number, y: number) => number | null): (number | null)[] {
  return a.map((x, i) => {
    const y = b.at(i);
    return x !== null && y !== null && y !== undefined ? f(x, y) : null;
  });
}

/** Values per round of metric `key` of mode `id` ([] when the mode or metric is absent). */
export function perRoundOf(byMode: ByMode, id: string, key: string): (number | null)[] {
  const m: Partial<Record<string, Partial<Record<string, MetricByMode>>>> = byMode;
  return m[id]?.[key]?.perRound ?? [];
}

/** Median of the non-null values, or null. */
export function medianOf(v: (number | null)[]): number | null {
  const xs = v.filter((x): x is number => x !== null).sort((p, q) => p - q);
  if (!xs.length) return null;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/**
 * Per round: (1 - mode@cpuP / bare@cpuP) - (1 - mode / bare) on `key` (TCP 1
 * stream by default), i.e. how many points of bare's throughput the mode's
 * overhead grew under contention; null where a value is missing.
 */
export function overheadGrowthPerRound(byMode: ByMode, modeId: string, bareId: string, pct: number, key = 'tcp1Gbps'): (number | null)[] {
  const pr = (id: string) => perRoundOf(byMode, id, key);
  const over = (m: (number | null)[], b: (number | null)[]) => pairwise(m, b, (x, y) => (y > 0 ? 1 - x / y : null));
  const idle = over(pr(modeId), pr(bareId));
  const busy = over(pr(contendedId(modeId, pct)), pr(contendedId(bareId, pct)));
  return pairwise(busy, idle, (x, y) => x - y);
}

/** The plain (uncontended) bare mode of a result, if it ran. */
export function plainBare(r: Pick<BenchResult, 'modes'>): string | null {
  return r.modes.find((m) => m.kind === 'bare' && m.available && !m.variant)?.id ?? null;
}

/** One claim row per overlay mode: "its overhead over bare grows under CPU contention" (only with --contention). */
export function contentionClaims(r: Pick<BenchResult, 'modes' | 'samples' | 'options'>, byMode: ByMode): Claim[] {
  const c = r.options.contention;
  if (!c) return [];
  const bare = plainBare(r);
  const med = (id: string, key: string) => medianOf(perRoundOf(byMode, id, key));
  const pctText = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)}%`);
  const out: Claim[] = [];
  for (const m of r.modes.filter((x) => x.available && !x.variant && x.kind !== 'bare')) {
    const v = contendedId(m.id, c.pct);
    const growth = bare ? medianOf(overheadGrowthPerRound(byMode, m.id, bare, c.pct)) : null;
    const over = (id: string, b: string) => {
      const x = med(id, 'tcp1Gbps');
      const y = med(b, 'tcp1Gbps');
      return x !== null && y !== null && y > 0 ? 1 - x / y : null;
    };
    const lat = (id: string, b: string) => {
      const x = med(id, 'latIdleP50');
      const y = med(b, 'latIdleP50');
      return x !== null && y !== null ? `${x - y >= 0 ? '+' : ''}${(x - y).toFixed(0)} us` : 'n/a';
    };
    const cpu = (id: string) => med(id, 'tcp1CpuPerGbit');
    const steal = med(v, 'tcp1StealShare');
    const hogShares = r.samples.filter((s) => s.mode === v).map((s) => s.contention?.achievedShare ?? null);
    const measured = bare
      ? `TCP 1 stream below bare: ${pctText(over(m.id, bare))} without, ${pctText(over(v, contendedId(bare, c.pct)))} with ${c.pct}% CPU contention (growth ${growth === null ? 'n/a' : `${(growth * 100).toFixed(1)} points`}); idle p50 over bare ${lat(m.id, bare)} -> ${lat(v, contendedId(bare, c.pct))}; machine CPU-s/Gbit ${cpu(m.id)?.toFixed(3) ?? 'n/a'} -> ${cpu(v)?.toFixed(3) ?? 'n/a'}; steal ${pctText(steal)}; hog took ${pctText(medianOf(hogShares))} of the CPUs`
      : 'bare not measured';
    out.push({
      id: `contention-overhead-grows:${m.id}`,
      claim: `On shared CPUs (noisy neighbours), ${m.id}'s overhead over bare grows`,
      measured,
      verdict: growth === null ? 'n/a' : growth >= CONTENTION_GROWTH_HELD ? 'held' : 'not held',
      detail: `each mode and bare run without and with ${c.method} at ${c.pct}% (interleaved, same round); held if the round-by-round median growth of the TCP 1-stream deficit to bare is at least ${CONTENTION_GROWTH_HELD * 100} points`,
    });
  }
  return out;
}
