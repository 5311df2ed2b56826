/**
 * Parsers for the kernel's accounting files: `/proc/stat` (machine CPU time),
 * `/proc/<pid>/stat` (process CPU time) and `nstat` output (SNMP/netstat
 * counters such as IpFragCreates). Pure functions over text plus thin readers,
 * so the parsers are tested on captured fixtures.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** Clock ticks per second used by /proc accounting (USER_HZ; 100 on every Linux ABI that matters). */
export const USER_HZ = 100;

/** CPU time of one `cpu` line of /proc/stat, in clock ticks (USER_HZ). */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  /** Time stolen by the hypervisor (field 8): non-zero on shared hosts. */
  steal: number;
  guest: number;
  guestNice: number;
}

/** The aggregate line and the per-CPU lines of /proc/stat. */
export interface ProcStat {
  total: CpuTimes;
  cpus: CpuTimes[];
}

const CPU_FIELDS: (keyof CpuTimes)[] = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal', 'guest', 'guestNice'];

function parseCpuLine(line: string): CpuTimes {
  const parts = line.trim().split(/\s+/).slice(1).map(Number);
  const t = {} as CpuTimes;
  CPU_FIELDS.forEach((f, i) => {
    const v = parts[i];
    t[f] = Number.isFinite(v) ? v : 0;
  });
  return t;
}

/** Parse the text of /proc/stat. Throws if there is no aggregate `cpu` line. */
export function parseProcStat(text: string): ProcStat {
  let total: CpuTimes | undefined;
  const cpus: CpuTimes[] = [];
  for (const line of text.split('\n')) {
    if (/^cpu\s/.test(line)) total = parseCpuLine(line);
    else if (/^cpu\d+\s/.test(line)) cpus.push(parseCpuLine(line));
  }
  if (!total) throw new Error('/proc/stat: no aggregate "cpu" line');
  return { total, cpus };
}

/** Read and parse /proc/stat. */
export async function readProcStat(path = '/proc/stat'): Promise<ProcStat> {
  return parseProcStat(await readFile(path, 'utf8'));
}

/** CPU usage between two /proc/stat samples, in CPU-seconds per category. */
export interface CpuDelta {
  /** Wall-clock CPU-seconds covered (all CPUs: elapsed * cpu count). */
  totalSeconds: number;
  userSeconds: number;
  systemSeconds: number;
  softirqSeconds: number;
  irqSeconds: number;
  stealSeconds: number;
  idleSeconds: number;
  /** Everything but idle and iowait. */
  busySeconds: number;
}

/** The difference `b - a` of two /proc/stat aggregate lines, converted to seconds. */
export function cpuDelta(a: CpuTimes, b: CpuTimes, hz = USER_HZ): CpuDelta {
  const d = (f: keyof CpuTimes) => Math.max(0, b[f] - a[f]) / hz;
  // guest time is already included in user (and guestNice in nice): do not count it twice.
  const total = d('user') + d('nice') + d('system') + d('idle') + d('iowait') + d('irq') + d('softirq') + d('steal');
  const idle = d('idle') + d('iowait');
  return {
    totalSeconds: total,
    userSeconds: d('user') + d('nice'),
    systemSeconds: d('system'),
    softirqSeconds: d('softirq'),
    irqSeconds: d('irq'),
    stealSeconds: d('steal'),
    idleSeconds: idle,
    busySeconds: total - idle,
  };
}

/** CPU time of one process from /proc/<pid>/stat, in clock ticks. */
export interface PidStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  utime: number;
  stime: number;
  /** Threads in the process. */
  numThreads: number;
  /** Start time, clock ticks since boot: a reused pid has another. */
  startTicks: number;
}

/**
 * Parse /proc/<pid>/stat. The command name is in parentheses and may itself
 * contain spaces and parentheses, so fields are counted from the last ')'.
 */
export function parsePidStat(text: string): PidStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error('/proc/<pid>/stat: no "(comm)" field');
  const pid = Number(text.slice(0, open).trim());
  const comm = text.slice(open + 1, close);
  // rest[0] is field 3 (state); utime is field 14, stime 15, num_threads 20, starttime 22.
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const field = (n: number) => Number(rest[n - 3]);
  return { pid, comm, state: rest[0] ?? '?', ppid: field(4), utime: field(14), stime: field(15), numThreads: field(20), startTicks: field(22) };
}

/** Read /proc/<pid>/stat; undefined when the process is gone. */
export async function readPidStat(pid: number): Promise<PidStat | undefined> {
  try {
    return parsePidStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Sum of utime+stime (clock ticks) of the given processes; missing ones count 0. */
export async function processTicks(pids: readonly number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const s = await readPidStat(pid);
    if (s) ticks += s.utime + s.stime;
  }
  return ticks;
}

/**
 * Parse `nstat` output into a flat counter map. Accepts both `nstat --json`
 * (`{"kernel": {"IpFragCreates": 0, ...}}`) and the text table
 * (`#kernel` then `Name  value  rate` lines).
 */
export function parseNstat(text: string): Record<string, number> {
  const trimmed = text.trim();
  const out: Record<string, number> = {};
  if (trimmed.startsWith('{')) {
    const data = JSON.parse(trimmed) as Record<string, Record<string, unknown> | null>;
    for (const group of Object.values(data)) {
      for (const [k, v] of Object.entries(group ?? {})) if (typeof v === 'number') out[k] = v;
    }
    return out;
  }
  for (const line of trimmed.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name, value] = line.trim().split(/\s+/) as [string, string?];
    if (name && value !== undefined && Number.isFinite(Number(value))) out[name] = Number(value);
  }
  return out;
}

/** `b - a` for each counter present in `b` (missing in `a` counts as 0). */
export function counterDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) out[k] = v - (a[k] ?? 0);
  return out;
}

/** True while a process with this pid exists (signal 0); false for pid 0. */
export function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Start time of `pid` (clock ticks since boot), or null when it is gone: it tells a process from a later one with its reused pid. */
export function pidStartTicks(pid: number): number | null {
  try {
    const t = parsePidStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).startTicks;
    return Number.isFinite(t) ? t : null;
  } catch {
    return null;
  }
}

/** The command line of `pid`, arguments joined by spaces, or null when it is gone. */
export function pidCmdline(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return null;
  }
}
