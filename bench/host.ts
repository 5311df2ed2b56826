/**
 * The bench's view of a host: run a command, start a long-running one, read
 * counters. The default implementation is a network namespace on this machine;
 * a real second host over SSH can implement the same interface later without
 * touching the modes or measurements.
 */
import type { ChildProcess } from 'node:child_process';
import { run, start, stop, type RunResult } from '../src/host/exec.js';
import { parseNstat, readProcStat, type CpuTimes } from '../src/host/procstat.js';
import type { RunState } from './state.js';

/** Options of a finished command. */
export interface ExecOptions {
  allowFail?: boolean;
  timeoutMs?: number;
  env?: Record<string, string>;
}

/** A long-running process on a host. */
export interface BenchProcess {
  readonly pid: number;
  readonly argv: string[];
  /** Everything it wrote to stdout so far. */
  stdout(): string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves when the process exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once it exited. */
  done(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Counters of a host at one instant. */
export interface HostCounters {
  /** Wall clock (ms since epoch). */
  atMs: number;
  /** SNMP/netstat counters of the host's network stack (nstat -a). */
  nstat: Record<string, number>;
  /** Machine CPU times (the aggregate line of /proc/stat). */
  cpu: CpuTimes;
}

/** One host of the bench topology. */
export interface BenchHost {
  /** Short label ("A", "B"). */
  readonly label: string;
  /** Network namespace name (local hosts) or a host address (remote ones). */
  readonly where: string;
  exec(argv: string[], opts?: ExecOptions): Promise<RunResult>;
  spawn(argv: string[], opts?: { env?: Record<string, string> }): BenchProcess;
  readCounters(): Promise<HostCounters>;
}

class LocalProcess implements BenchProcess {
  private out = '';
  private err = '';
  private finished = false;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    private readonly child: ChildProcess,
    readonly argv: string[],
    private readonly onExit: () => void,
  ) {
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      if (this.out.length < 16 * 1024 * 1024) this.out += d;
    });
    child.stderr?.on('data', (d: string) => {
      if (this.err.length < 1024 * 1024) this.err += d;
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.finished = true;
        this.onExit();
        resolve({ code, signal });
      });
      child.once('error', () => {
        this.finished = true;
        this.onExit();
        resolve({ code: 127, signal: null });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  stdout(): string {
    return this.out;
  }

  stderr(): string {
    return this.err;
  }

  done(): boolean {
    return this.finished;
  }

  async stop(graceMs = 2000): Promise<void> {
    if (this.finished) return;
    await stop(this.child, graceMs);
    await this.exited;
  }
}

/** A host that is a network namespace on this machine. */
export class NetnsHost implements BenchHost {
  private readonly live = new Set<BenchProcess>();

  constructor(
    readonly label: string,
    readonly where: string,
    private readonly state?: RunState,
  ) {}

  exec(argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    return run(argv, { netns: this.where, allowFail: opts.allowFail, timeoutMs: opts.timeoutMs, env: opts.env });
  }

  spawn(argv: string[], opts: { env?: Record<string, string> } = {}): BenchProcess {
    const child = start(argv, { netns: this.where, env: opts.env });
    const pid = child.pid;
    if (pid) this.state?.addProcess(pid, argv);
    const p: BenchProcess = new LocalProcess(child, argv, () => {
      this.live.delete(p);
      if (pid) this.state?.removeProcess(pid);
    });
    this.live.add(p);
    return p;
  }

  async readCounters(): Promise<HostCounters> {
    const [n, stat] = await Promise.all([this.exec(['nstat', '-asz', '--json'], { allowFail: true }), readProcStat()]);
    let nstat: Record<string, number> = {};
    try {
      nstat = parseNstat(n.stdout);
    } catch {
      /* nstat missing or odd: counters stay empty */
    }
    return { atMs: Date.now(), nstat, cpu: stat.total };
  }

  /** Stop every process this host started that is still running. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.live].map((p) => p.stop(1500).catch(() => undefined)));
  }
}
